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

# The learner's per-record losses (``model_types.ModelType.loss`` names one).
LOGISTIC, SQUARED, SOFTMAX = 0, 1, 2
LOSSES = {"logistic": LOGISTIC, "squared": SQUARED, "softmax": SOFTMAX}
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


@njit(nogil=True, cache=True, inline="always")
def _loss_grad(loss, z, yi, g):
    """The loss of margins z (K,) for target yi; g <- its derivative in z.

    LOGISTIC (K = 1, yi 0/1), SQUARED (K = 1, loss (z - yi)**2 / 2, whose
    derivative is the residual) and SOFTMAX (K classes, yi a class number).
    """
    if loss == LOGISTIC:
        zz = min(max(z[0], -_ZMAX), _ZMAX)
        g[0] = 1.0 / (1.0 + math.exp(-zz)) - yi
        # log-loss in a form that stays finite for saturated scores
        return math.log1p(math.exp(-abs(zz))) + (max(-zz, 0.0) if yi > 0.5 else max(zz, 0.0))
    if loss == SQUARED:
        d = z[0] - yi
        g[0] = d
        return 0.5 * d * d
    K = z.shape[0]
    m = z[0]
    for k in range(1, K):
        m = max(m, z[k])
    s = 0.0
    for k in range(K):
        e = math.exp(z[k] - m)
        g[k] = e
        s += e
    c = int(yi)
    for k in range(K):
        g[k] = g[k] / s - (1.0 if k == c else 0.0)
    return math.log(s) - (z[c] - m)


@njit(nogil=True, cache=True, inline="always")
def _score(loss, z, yi, g, c, hist, correct):
    """Progressive metrics of one record: the score histogram of LOGISTIC
    (by true class), the weighted argmax hits of SOFTMAX."""
    if loss == LOGISTIC:
        k = min(int((g[0] + yi) * N_BINS), N_BINS - 1)
        hist[1 if yi > 0.5 else 0, k] += c
    elif loss == SOFTMAX:
        best = 0
        for k in range(1, z.shape[0]):
            if z[k] > z[best]:
                best = k
        if best == int(yi):
            correct[0] += c


@njit(nogil=True, cache=True)
def train(indptr, indices, data, r0, r1, y, rw, S, B, rates, loss, l1, l2, last, clock, mask,
          period, pos0, xsq, track_x, tr_loss, ho_loss, totals, hist, correct, z, g, seen):
    """Score, then train every learner on rows r0..r1 in order.

    S: (n_cols, L, K+1) float32, slots 0..K-1 the weights of the K outputs
    and slot K the AdaGrad accumulator shared by a column's outputs (it sees
    the squared norm of the column's gradient); B: (L, K+1) float64 bias
    [w.., G]; tr_loss/ho_loss: (L,) weighted loss sums; totals: [train w,
    holdout w, train n, holdout n]; hist: (L, 2, N_BINS) weighted score
    histogram per true class (LOGISTIC); correct: (L, 1) weighted argmax hits
    (SOFTMAX); z, g: (L, K) scratch; seen: (n_cols,) uint8, set to 1 for
    every column a step touches.
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
            f = _loss_grad(loss, z[l], yi, g[l])
            q = 0.0
            for k in range(K):
                q += g[l, k] * g[l, k]
            gsq[l] = q
            if held:
                ho_loss[l] += c * f
            else:
                tr_loss[l] += c * f
                _score(loss, z[l], yi, g[l], c, hist[l], correct[l])
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


@njit(nogil=True, cache=True, inline="always")
def _margins(indices, data, a, b, W, mask, z):
    """z <- the margins of the row in entries a..b at W (last row the bias)."""
    bias = W.shape[0] - 1
    for k in range(W.shape[1]):
        z[k] = W[bias, k]
    for p in range(a, b):
        j = indices[p] & mask
        x = data[p]
        for k in range(W.shape[1]):
            z[k] += W[j, k] * x


@njit(nogil=True, cache=True)
def gradient(indptr, indices, data, r0, r1, y, rw, W, loss, mask, period, pos0, grad, curv, sums, hist, correct, z, g):
    """Loss, gradient and diagonal curvature of rows r0..r1 at weights W.

    W: (n_cols + 1, K) float64, the last row the bias; grad, curv: the same
    shape, += the weighted loss gradient and the diagonal of its Gauss-Newton
    curvature (the preconditioner of ``refinement.Refiner``); sums: [weighted loss,
    weight, rows] of the training rows then the same of the holdout rows
    (every ``period``-th row of the pass, as in ``train``: only scored);
    hist, correct as one learner's in ``train``.  Additive over rows, so
    shards' results sum to the whole data's.
    """
    K = W.shape[1]
    bias = W.shape[0] - 1
    for i in range(r0, r1):
        c = rw[i]
        held = period > 0 and (pos0 + i - r0) % period == period - 1
        o = 3 if held else 0
        sums[o + 2] += 1.0
        if c <= 0.0:
            continue
        a = indptr[i]
        b = indptr[i + 1]
        _margins(indices, data, a, b, W, mask, z)
        yi = y[i]
        sums[o] += c * _loss_grad(loss, z, yi, g)
        sums[o + 1] += c
        if held:
            continue
        _score(loss, z, yi, g, c, hist, correct)
        for k in range(K):
            if loss == SQUARED:
                h = 1.0
            else:  # p (1 - p) of the output's probability p = g + [target]
                pk = g[k] + (yi if loss == LOGISTIC else (1.0 if k == int(yi) else 0.0))
                h = pk * (1.0 - pk)
            grad[bias, k] += c * g[k]
            curv[bias, k] += c * h
            for p in range(a, b):
                j = indices[p] & mask
                x = data[p]
                grad[j, k] += c * g[k] * x
                curv[j, k] += c * h * x * x


@njit(nogil=True, cache=True, inline="always")
def _settled(S, j, l, k, K, l1, l2, rate, dt):
    """Weight k of learner l in column j with ``dt`` of pending lazy penalties applied."""
    w = S[j, l, k]
    G = S[j, l, K]
    if dt > 0.0 and G > 0.0:
        w = _catch_up(w, rate / math.sqrt(G), l1, l2, dt)
    return w


@njit(nogil=True, cache=True)
def settle(S, learner, K, l1, l2, rate, last, now, out):
    """Weights of one learner with every pending lazy penalty applied."""
    for j in range(S.shape[0]):
        for k in range(K):
            out[j, k] = _settled(S, j, learner, k, K, l1, l2, rate, now - last[j])


@njit(nogil=True, cache=True)
def settle_all(S, K, l1, l2, rates, last, now):
    """Apply every pending lazy penalty of every learner in place (last <- now)."""
    for j in range(S.shape[0]):
        dt = now - last[j]
        if dt <= 0.0:
            continue
        for l in range(S.shape[1]):
            for k in range(K):
                S[j, l, k] = _settled(S, j, l, k, K, l1, l2, rates[l], dt)
        last[j] = now


@njit(nogil=True, cache=True)
def add_snapshot(S, K, cols, l1, l2, rates, last, now, A):
    """A[c, l, :] += the weights of column ``cols[c]`` for every learner l,
    with pending lazy penalties applied as of ``now`` (S is not changed)."""
    reg = l1 > 0.0 or l2 > 0.0
    for c in range(cols.shape[0]):
        j = cols[c]
        dt = now - last[j] if reg else 0.0
        for l in range(S.shape[1]):
            for k in range(K):
                A[c, l, k] += _settled(S, j, l, k, K, l1, l2, rates[l], dt)


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


@njit(nogil=True, cache=True)
def hessian(indptr, indices, data, r0, r1, y, rw, W, loss, mask, period, pos0, local, H):
    """H += the exact Hessian of the weighted loss of the training rows
    r0..r1 at W (holdout rows as in ``gradient``: not part of the objective).

    H: (D, D) float64 with D = (m + 1) * K over the m columns numbered by
    ``local`` (hashed column -> 0..m-1, or -1 for a column left out) and the
    bias as number m; entry (a * K + k, b * K + k') belongs to columns a, b
    and outputs k, k'.  A row's share is its sparse outer product:
    c p (1 - p) x x^T (LOGISTIC), c x x^T (SQUARED), c (diag(p) - p p^T)
    (x) x x^T (SOFTMAX).  Both triangles are written.  Additive over rows,
    so shards' results sum to the whole data's (docs/behaviour.md,
    "Training: shards").
    """
    K = W.shape[1]
    m = H.shape[0] // K - 1
    longest = 0
    for i in range(r0, r1):
        longest = max(longest, indptr[i + 1] - indptr[i])
    loc = np.empty(longest + 1, dtype=np.int64)
    val = np.empty(longest + 1, dtype=np.float64)
    z = np.empty(K)
    g = np.empty(K)
    pk = np.empty(K)
    for i in range(r0, r1):
        c = rw[i]
        if (period > 0 and (pos0 + i - r0) % period == period - 1) or c <= 0.0:
            continue
        a = indptr[i]
        b = indptr[i + 1]
        _margins(indices, data, a, b, W, mask, z)
        n = 0
        for p in range(a, b):
            q = local[indices[p] & mask]
            x = data[p]
            if q >= 0 and x != 0.0:
                loc[n] = q * K
                val[n] = x
                n += 1
        loc[n] = m * K
        val[n] = 1.0
        n += 1
        yi = y[i]
        _loss_grad(loss, z, yi, g)
        if loss == SQUARED:
            h = c
        elif loss == LOGISTIC:
            h = c * (g[0] + yi) * (1.0 - g[0] - yi)
        else:
            for k in range(K):
                pk[k] = g[k] + (1.0 if k == int(yi) else 0.0)
        for s in range(n):
            rs = loc[s]
            for t in range(n):
                rt = loc[t]
                xx = val[s] * val[t]
                if loss != SOFTMAX:
                    H[rs, rt] += h * xx
                    continue
                xx *= c
                for k in range(K):
                    pkx = pk[k] * xx
                    for k2 in range(K):
                        H[rs + k, rt + k2] -= pkx * pk[k2]
                    H[rs + k, rt + k] += pkx


@njit(nogil=True, cache=True)
def prox_newton_cd(H, g, w, lam, pen, d, Hd, sweeps, tol):
    """Cyclic coordinate descent on the proximal Newton model
    ``g.d + d.H.d / 2 + lam * sum(|w + d| over pen)`` from d (Hd = H d kept
    up to date; H symmetric).  A coordinate's minimum is a soft threshold,
    so penalised weights land on exact zeros.  Stops after ``sweeps`` or
    when no coordinate's move lowers the model by more than ``tol``.
    Returns the sweeps run."""
    D = g.shape[0]
    s = 0
    while s < sweeps:
        s += 1
        biggest = 0.0
        for j in range(D):
            a = H[j, j]
            if a <= 0.0:
                continue
            u0 = w[j] + d[j]
            u = u0 - (g[j] + Hd[j]) / a
            if pen[j]:
                thr = lam / a
                u = u - thr if u > thr else (u + thr if u < -thr else 0.0)
            step = u - u0
            if step != 0.0:
                d[j] += step
                for i in range(D):
                    Hd[i] += step * H[j, i]
                biggest = max(biggest, 0.5 * a * step * step)
        if biggest <= tol:
            break
    return s
