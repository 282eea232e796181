"""Numba inner loops of the SGD learners (see ``sgd`` for the maths).

State layout, chosen for memory locality: every hashed column owns one
contiguous block ``S[j] = [learner][slot]`` with ``slot 0..K-1`` the weights
of the K outputs and slot K the AdaGrad accumulator of that learner.  A row
touches ~20-30 scattered columns, so much of the cost is cache misses;
keeping all learners of a column in the same block (40 bytes for five
binary learners) makes the side-by-side learners cheap next to one, and the
training job numbers columns densely (``columns.ColumnMap``) so the table
is only as large as the columns in use.

Lazy regularisation: ``last[j]`` is the training clock (cumulative row
weight) at which column j's penalties were last applied.  With AdaGrad a
column's step ``rate / sqrt(G_j)`` cannot change while the column is not
touched, so the penalties it missed meanwhile are applied exactly when it is
next touched (and for all columns by ``settle``).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

BINARY, REGRESSION, MULTICLASS = 0, 1, 2
N_BINS = 1024  # progressive-AUC resolution of the training log only
_ZMAX = 35.0  # exp(35) ~ 1.6e15: logistic is saturated well before


@njit(nogil=True, cache=True, inline="always")
def _catch_up(w, eta, l1, l2, dt):
    if l1 > 0.0:
        a = abs(w) - eta * l1 * dt
        w = 0.0 if a <= 0.0 else (a if w > 0.0 else -a)
    if l2 > 0.0 and w != 0.0:
        w *= math.exp(-dt * math.log1p(eta * l2))
    return w


@njit(nogil=True, cache=True)
def train_scalar(indptr, indices, data, r0, r1, y, rw, S, B, rates, kind, l1, l2, last, clock, mask,
                 period, pos0, xsq, track_x, tr_loss, ho_loss, totals, hist, z, g, seen):
    """Binary logistic (kind 0) or squared loss (kind 1) for rows r0..r1.

    S: (n_cols, L, 2) float32; B: (L, 2) float64 bias [w, G]; tr_loss/ho_loss:
    (L,) weighted loss sums; totals: [train w, holdout w, train n, holdout n];
    hist: (L, 2, N_BINS) weighted score histogram per true class (binary);
    seen: (n_cols,) uint8, set to 1 for every column a step touches.
    """
    L = rates.shape[0]
    reg = l1 > 0.0 or l2 > 0.0
    for i in range(r0, r1):
        c = rw[i]
        a = indptr[i]
        b = indptr[i + 1]
        held = period > 0 and (pos0 + i - r0) % period == period - 1
        T = clock[0]
        for l in range(L):
            z[l] = B[l, 0]
        for p in range(a, b):
            j = indices[p] & mask
            x = data[p]
            if reg:
                dt = T - last[j]
                if dt > 0.0:
                    for l in range(L):
                        G = S[j, l, 1]
                        if G > 0.0:
                            S[j, l, 0] = _catch_up(S[j, l, 0], rates[l] / math.sqrt(G), l1, l2, dt)
                    last[j] = T
            for l in range(L):
                z[l] += S[j, l, 0] * x
        yi = y[i]
        for l in range(L):
            if kind == BINARY:
                zz = min(max(z[l], -_ZMAX), _ZMAX)
                pr = 1.0 / (1.0 + math.exp(-zz))
                # log-loss in a form that stays finite for saturated scores
                loss = math.log1p(math.exp(-abs(zz))) + max(-zz, 0.0) if yi > 0.5 else \
                    math.log1p(math.exp(-abs(zz))) + max(zz, 0.0)
                g[l] = pr - yi
                if not held:
                    k = min(int(pr * N_BINS), N_BINS - 1)
                    hist[l, 1 if yi > 0.5 else 0, k] += c
            else:
                d = z[l] - yi
                loss = d * d
                g[l] = d
            if held:
                ho_loss[l] += c * loss
            else:
                tr_loss[l] += c * loss
        if held:
            totals[1] += c
            totals[3] += 1.0
            continue
        totals[0] += c
        totals[2] += 1.0
        if c <= 0.0:
            continue
        Tn = T + c
        for p in range(a, b):
            j = indices[p] & mask
            x = data[p]
            seen[j] = 1
            first = True
            if reg:
                first = last[j] < Tn
                last[j] = Tn
            for l in range(L):
                gx = g[l] * x
                G = S[j, l, 1] + c * gx * gx
                if G <= 0.0:
                    continue
                S[j, l, 1] = G
                eta = rates[l] / math.sqrt(G)
                w = S[j, l, 0] - eta * c * gx
                if reg and first:
                    w = _catch_up(w, eta, l1, l2, c)
                S[j, l, 0] = w
            if track_x:
                xsq[j] += c * x * x
        for l in range(L):
            G = B[l, 1] + c * g[l] * g[l]
            if G > 0.0:
                B[l, 1] = G
                B[l, 0] -= rates[l] / math.sqrt(G) * c * g[l]
        clock[0] = Tn


@njit(nogil=True, cache=True)
def train_multiclass(indptr, indices, data, r0, r1, y, rw, S, B, rates, l1, l2, last, clock, mask,
                     period, pos0, xsq, track_x, tr_loss, ho_loss, totals, correct, z, g, seen):
    """Multinomial logistic regression for rows r0..r1.

    S: (n_cols, L, K+1) float32, slot K = AdaGrad accumulator shared by the
    K outputs of a column (it sees the squared norm of the column's softmax
    gradient); B: (L, K+1) float64; z, g: (L, K) scratch; correct: (L,)
    weighted count of progressive argmax hits; seen as in train_scalar.
    """
    L = rates.shape[0]
    K = z.shape[1]
    reg = l1 > 0.0 or l2 > 0.0
    gsq = np.empty(L)
    for i in range(r0, r1):
        c = rw[i]
        a = indptr[i]
        b = indptr[i + 1]
        held = period > 0 and (pos0 + i - r0) % period == period - 1
        T = clock[0]
        for l in range(L):
            for k in range(K):
                z[l, k] = B[l, k]
        for p in range(a, b):
            j = indices[p] & mask
            x = data[p]
            if reg:
                dt = T - last[j]
                if dt > 0.0:
                    for l in range(L):
                        G = S[j, l, K]
                        if G > 0.0:
                            eta = rates[l] / math.sqrt(G)
                            for k in range(K):
                                S[j, l, k] = _catch_up(S[j, l, k], eta, l1, l2, dt)
                    last[j] = T
            for l in range(L):
                for k in range(K):
                    z[l, k] += S[j, l, k] * x
        yi = y[i]
        for l in range(L):
            m = z[l, 0]
            best = 0
            for k in range(1, K):
                if z[l, k] > m:
                    m = z[l, k]
                    best = k
            s = 0.0
            for k in range(K):
                e = math.exp(z[l, k] - m)
                g[l, k] = e
                s += e
            loss = math.log(s) - (z[l, yi] - m)
            q = 0.0
            for k in range(K):
                gk = g[l, k] / s - (1.0 if k == yi else 0.0)
                g[l, k] = gk
                q += gk * gk
            gsq[l] = q
            if held:
                ho_loss[l] += c * loss
            else:
                tr_loss[l] += c * loss
                if best == yi:
                    correct[l] += c
        if held:
            totals[1] += c
            totals[3] += 1.0
            continue
        totals[0] += c
        totals[2] += 1.0
        if c <= 0.0:
            continue
        Tn = T + c
        for p in range(a, b):
            j = indices[p] & mask
            x = data[p]
            seen[j] = 1
            first = True
            if reg:
                first = last[j] < Tn
                last[j] = Tn
            for l in range(L):
                G = S[j, l, K] + c * x * x * gsq[l]
                if G <= 0.0:
                    continue
                S[j, l, K] = G
                step = rates[l] / math.sqrt(G)
                for k in range(K):
                    w = S[j, l, k] - step * c * g[l, k] * x
                    if reg and first:
                        w = _catch_up(w, step, l1, l2, c)
                    S[j, l, k] = w
            if track_x:
                xsq[j] += c * x * x
        for l in range(L):
            G = B[l, K] + c * gsq[l]
            if G > 0.0:
                B[l, K] = G
                step = rates[l] / math.sqrt(G)
                for k in range(K):
                    B[l, k] -= step * c * g[l, k]
        clock[0] = Tn


@njit(nogil=True, cache=True)
def settle(S, learner, K, l1, l2, rate, last, now, out):
    """Weights of one learner with every pending lazy penalty applied."""
    for j in range(S.shape[0]):
        G = S[j, learner, K]
        dt = now - last[j]
        eta = rate / math.sqrt(G) if G > 0.0 else 0.0
        for k in range(K):
            w = S[j, learner, k]
            if dt > 0.0 and eta > 0.0:
                w = _catch_up(w, eta, l1, l2, dt)
            out[j, k] = w


@njit(nogil=True, cache=True)
def add_snapshot(S, K, cols, l1, l2, rates, last, now, A):
    """A[c, l, :] += the weights of column ``cols[c]`` for every learner l,
    with pending lazy penalties applied as of ``now`` (S is not changed)."""
    reg = l1 > 0.0 or l2 > 0.0
    for c in range(cols.shape[0]):
        j = cols[c]
        dt = now - last[j] if reg else 0.0
        for l in range(S.shape[1]):
            G = S[j, l, K]
            eta = rates[l] / math.sqrt(G) if G > 0.0 else 0.0
            for k in range(K):
                w = S[j, l, k]
                if dt > 0.0 and eta > 0.0:
                    w = _catch_up(w, eta, l1, l2, dt)
                A[c, l, k] += w


@njit(nogil=True, cache=True)
def count_weights(S, K, seen, out):
    """out[l] = non-zero weights of learner l among the columns ever stepped
    on (``seen``: no other column can hold a weight).  Scanning the whole
    state instead cost more than training at every log checkpoint, and so
    did listing the seen columns with numpy first."""
    for l in range(out.shape[0]):
        out[l] = 0
    for j in range(seen.shape[0]):
        if seen[j] == 0:
            continue
        for l in range(S.shape[1]):
            for k in range(K):
                if S[j, l, k] != 0.0:
                    out[l] += 1
