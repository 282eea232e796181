"""Full-gradient refinement of the kept learner after the SGD passes
(docs/behaviour.md, "Training: convergence"): Newton's method for small
models, L-BFGS (OWL-QN with L1) for larger ones, one evaluation of the
objective and its derivatives per streamed pass, and sums that add exactly
across shards ("Training: shards")."""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from . import sgd_kernels as KN
from .features import CsrBatch

REFINE_PAIRS = 5  # L-BFGS memory of the refinement
REFINE_TOLERANCE = 1e-8  # estimated gap to the optimum, relative to the objective, that ends refinement
SKIP_TOLERANCE = 2e-4  # the same estimate at the SGD model below which refinement is not started
ARMIJO = 1e-4  # sufficient decrease of a refinement step
NEWTON_MAX_DIM = 4096  # (columns + 1) * outputs up to which refinement is Newton's (a dense Hessian)
PROX_SWEEPS = 20  # coordinate-descent sweeps per round of the L1 Newton direction
PROX_ROUNDS = 10  # rounds of (exact solve on the non-zero set, sweeps) per direction


def refiner_for(loss: int, x: np.ndarray, l1: float, l2: float, period: int, cols: np.ndarray, dim: int,
                memory_budget: int) -> Refiner:
    """Newton's refiner when its dense Hessian (the sums, a combined copy and
    a factor) fits ``NEWTON_MAX_DIM`` and the memory budget, else L-BFGS's."""
    if dim <= NEWTON_MAX_DIM and 3 * 8 * dim * dim <= memory_budget:
        return NewtonRefiner(loss, x, l1, l2, period, cols)
    return Refiner(loss, x, l1, l2, period)


class Refiner:
    """Full-gradient refinement of one learner: L-BFGS, or OWL-QN with L1,
    preconditioned by the diagonal curvature; one evaluation per pass
    (docs/behaviour.md, "Training: convergence").

    The point is a (n_cols + 1, K) float64 table whose last row is the bias.
    Objective, over the training records (the holdout is only scored) with
    total weight C:
    ``sum_i c_i * loss_i + C * (l1 * |w|_1 + l2/2 * |w|^2)``, bias
    unregularised: SGD's per-record penalty summed over the records.
    """

    def __init__(self, loss: int, x: np.ndarray, l1: float, l2: float, period: int):
        self.loss, self.l1, self.l2, self.period = loss, l1, l2, period
        self.x = x  # the accepted point
        self.kept = x  # the model: the last accepted point
        self.point = x  # where this pass evaluates
        self.f = math.nan
        self.g = self.pg = self.h = None  # smooth gradient, pseudo-gradient, diagonal curvature at x
        self.d = None
        self.t = 0.0
        self.pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
        self.evaluations = 0
        self.first_gap = math.nan  # estimated relative gap at the SGD model
        self.evaluated_f = math.nan  # the objective at the last pass's point
        self.done = False
        self.reset_pass()

    def reset_pass(self) -> None:
        self.grad = np.zeros_like(self.x)
        self.curv = np.zeros_like(self.x)
        self.sums = np.zeros(6)  # training rows' [loss, weight, rows], then the holdout's
        self.hist = np.zeros((2, KN.N_BINS)) if self.loss == KN.LOGISTIC else np.zeros((2, 1))
        self.correct = np.zeros(1)

    def run(self, batch: CsrBatch, y, rw, r0: int, r1: int, mask: int, pos: int) -> None:
        K = self.x.shape[1]
        KN.gradient(batch.indptr, batch.indices, batch.data, r0, r1, y, rw, self.point, self.loss, mask,
                    self.period, pos, self.grad, self.curv, self.sums, self.hist, self.correct,
                    np.zeros(K), np.zeros(K))

    # -------------------------------------------------------------- steps
    def _objective(self, P: np.ndarray, C: float) -> tuple[float, np.ndarray]:
        w = P[:-1]
        f = self.sums[0] + C * (self.l1 * np.abs(w).sum() + 0.5 * self.l2 * np.dot(w.ravel(), w.ravel()))
        g = self.grad
        if self.l2 > 0:
            g[:-1] += (C * self.l2) * w
        return float(f), g

    def _pseudo(self, x: np.ndarray, g: np.ndarray, C: float) -> np.ndarray:
        """The objective's steepest-descent (negated) direction: the gradient,
        or with L1 its minimum-norm subgradient (OWL-QN's pseudo-gradient)."""
        if self.l1 == 0:
            return g
        lam = C * self.l1
        pg = g.copy()
        w, gw = x[:-1], g[:-1]
        pg[:-1] = np.where(w > 0, gw + lam, np.where(w < 0, gw - lam,
                           np.where(gw + lam < 0, gw + lam, np.where(gw - lam > 0, gw - lam, 0.0))))
        return pg

    def _direction(self) -> None:
        q = -self.pg
        alphas = []
        for s, yv, rho in reversed(self.pairs):
            a = rho * np.dot(s.ravel(), q.ravel())
            q -= a * yv
            alphas.append(a)
        q /= self.h
        for (s, yv, rho), a in zip(self.pairs, reversed(alphas)):
            q += (a - rho * np.dot(yv.ravel(), q.ravel())) * s
        if self.l1 > 0:  # OWL-QN keeps to the pseudo-gradient's orthant
            q[:-1][q[:-1] * self.pg[:-1] >= 0] = 0.0
        self.d = q
        self.t = 1.0

    def _trial(self) -> np.ndarray:
        P = self.x + self.t * self.d
        if self.l1 > 0:  # no weight crosses zero within a step (OWL-QN's projection)
            w, x = P[:-1], self.x[:-1]
            orthant = np.where(x != 0, np.sign(x), -np.sign(self.pg[:-1]))
            w[np.sign(w) != orthant] = 0.0
        return P

    def _gap(self) -> float:
        """Estimated objective above the optimum: the diagonal Newton decrement."""
        return 0.5 * float(np.sum(self.pg * self.pg / self.h))

    def _slope(self, P: np.ndarray) -> float:
        """The objective's first-order change from the accepted point to P,
        the Armijo condition's reference."""
        return float(np.dot(self.pg.ravel(), (P - self.x).ravel()))

    def _restart(self) -> bool:
        """The step shrank to nothing: start over from the diagonal, once."""
        if not self.pairs:
            return False
        self.pairs.clear()
        self._direction()
        return True

    def _update(self, P: np.ndarray, g: np.ndarray) -> None:
        """A step to P was accepted, with smooth gradient g there: a new L-BFGS pair."""
        s, yv = P - self.x, g - self.g
        sy = float(np.dot(s.ravel(), yv.ravel()))
        if sy > 1e-12 * float(np.dot(yv.ravel(), yv.ravel())):
            self.pairs = (self.pairs + [(s.astype(np.float32), yv.astype(np.float32), 1.0 / sy)])[-REFINE_PAIRS:]

    def _prepare(self, C: float, scale: float) -> float:
        """At the newly accepted point: the curvature for the next direction;
        returns the estimated gap to the optimum."""
        self.h = np.maximum(self.curv + C * self.l2, 1e-8 * C)
        self.h[-1] = max(float(self.curv[-1].min()), 1e-8 * C)
        return self._gap()

    def end_pass(self) -> bool:
        """Take this pass's evaluation; True while another is wanted."""
        C = float(self.sums[1])
        self.evaluations += 1
        if C <= 0:
            self.done = True
            return False
        P = self.point
        f, g = self._objective(P, C)
        self.evaluated_f = f
        scale = max(abs(f), 1e-12 * C)
        first = self.g is None
        if not first:
            pg_step = self._slope(P)
            if not f <= self.f + ARMIJO * pg_step:
                # Backtrack to the minimum of the quadratic through f, its
                # slope and the trial, within [0.1, 0.5] of the step.
                curvature = f - self.f - pg_step
                self.t *= min(0.5, max(0.1, -pg_step / (2 * curvature))) if curvature > 0 else 0.5
                if self.t < 1e-10 and not self._restart():
                    self.done = True
                    return False
                self.point = self._trial()
                return True
            self._update(P, g)
            decrease = self.f - f
        self.kept = P
        self.x, self.f, self.g = P, f, g.copy()
        self.pg = self._pseudo(self.x, self.g, C)
        gap = self._prepare(C, scale) / scale
        if first:
            self.first_gap = gap
        if (gap <= (SKIP_TOLERANCE if first else REFINE_TOLERANCE)
                or (not first and decrease <= REFINE_TOLERANCE * scale / 10)):
            self.done = True
            return False
        self._direction()
        self.point = self._trial()
        return True

    def contribution(self) -> dict[str, np.ndarray]:
        return {"grad": self.grad, "curv": self.curv, "sums": self.sums, "hist": self.hist, "correct": self.correct}

    def set_sums(self, sums: dict[str, np.ndarray]) -> None:
        self.grad, self.curv, self.sums, self.hist, self.correct = (
            sums["grad"], sums["curv"], sums["sums"], sums["hist"], sums["correct"])


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A^-1 b for a symmetric positive semi-definite A, by Cholesky with a
    ridge of 1e-8 of its largest diagonal entry, grown until it factors
    (directions the data leave undetermined, e.g. the softmax's common shift
    of all outputs, then get ~no step instead of an arbitrary one)."""
    B = A.copy()
    ridge = 1e-8 * max(float(np.max(np.diag(A))), 1e-300) if A.size else 0.0
    diag = B.reshape(-1)[:: B.shape[0] + 1]
    for _ in range(8):
        diag += ridge
        try:
            return cho_solve(cho_factor(B, overwrite_a=False, check_finite=False), b, check_finite=False)
        except LinAlgError:
            ridge *= 100
    return np.linalg.lstsq(A, b, rcond=None)[0]


class NewtonRefiner(Refiner):
    """Second-order refinement for models with few columns
    (docs/behaviour.md, "Training: convergence"): each pass also sums the
    exact Hessian of the smooth loss over the training rows
    (``sgd_kernels.hessian``) on the ``cols`` the data uses, a dense
    (D, D) float64 table with D = (len(cols) + 1) * K.  At an accepted point
    the direction is Newton's, solving (H + C*l2 on the weights) d = -g;
    with L1 proximal Newton's, the minimum of the quadratic model plus
    C*l1*|w|_1 by coordinate descent (exact zeros) polished by exact solves
    on its non-zero set.  Then the same sufficient-decrease test and
    shortening as L-BFGS; a full step costs no extra pass.  Columns outside
    ``cols`` (never trained on) have zero gradient and keep their weights.
    """

    def __init__(self, loss: int, x: np.ndarray, l1: float, l2: float, period: int, cols: np.ndarray):
        K = x.shape[1]
        self.cols = cols
        self.local = np.full(x.shape[0] - 1, -1, dtype=np.int64)
        self.local[cols] = np.arange(cols.shape[0])
        self.dim = (cols.shape[0] + 1) * K
        self.pen = np.ones(self.dim, dtype=np.bool_)
        self.pen[-K:] = False  # the bias
        self.hess = None
        self.delta = 0.0  # the model's first-order change along d, L1 included
        super().__init__(loss, x, l1, l2, period)

    def reset_pass(self) -> None:
        super().reset_pass()
        if self.hess is None:
            self.hess = np.zeros((self.dim, self.dim))
        else:
            self.hess.fill(0.0)

    def run(self, batch: CsrBatch, y, rw, r0: int, r1: int, mask: int, pos: int) -> None:
        super().run(batch, y, rw, r0, r1, mask, pos)
        KN.hessian(batch.indptr, batch.indices, batch.data, r0, r1, y, rw, self.point, self.loss, mask,
                   self.period, pos, self.local, self.hess)

    def _vector(self, a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[self.cols].ravel(), a[-1]])

    def _prepare(self, C: float, scale: float) -> float:
        H, K, m = self.hess, self.x.shape[1], self.cols.shape[0]
        if self.l2 > 0:
            weights = np.arange(m * K)
            H[weights, weights] += C * self.l2
        g = self._vector(self.g)
        if self.l1 == 0:
            d = -_solve(H, g)
            self.delta = float(g @ d)
            gap = -0.5 * self.delta
        else:
            w = self._vector(self.x)
            w[-K:] = 0.0
            d, gap = self._proximal(H, g, w, C * self.l1, scale)
        full = np.zeros_like(self.x)
        full[self.cols] = d[: m * K].reshape(m, K)
        full[-1] = d[m * K:]
        self.d = full
        return max(gap, 0.0)

    def _proximal(self, H, g, w, lam, scale) -> tuple[np.ndarray, float]:
        """Minimise q(d) = g.d + d.H.d/2 + lam*(|w+d|_1 - |w|_1) (weights only);
        returns d and -q(d), the estimated gap; sets ``delta``."""
        pen = self.pen
        base = float(np.abs(w[pen]).sum())

        def model(d, Hd):
            return float(g @ d + 0.5 * d @ Hd + lam * (np.abs(w[pen] + d[pen]).sum() - base))

        d, Hd = np.zeros_like(g), np.zeros_like(g)
        tol = 1e-14 * scale
        KN.prox_newton_cd(H, g, w, lam, pen, d, Hd, PROX_SWEEPS, tol)
        q = model(d, Hd)
        for _ in range(PROX_ROUNDS):
            # Coordinate descent is slow along ill-conditioned directions: on
            # its non-zero set with its signs the model is a quadratic whose
            # minimum one solve gives; go towards it as far as no weight
            # changes sign (the first to reach zero stays there).
            u = w + d
            free = ~pen | (u != 0)
            sign = np.where(pen, np.sign(u), 0.0)
            F = np.flatnonzero(free)
            fixed = np.where(free, 0.0, d)
            target = d.copy()
            target[F] = _solve(H[np.ix_(F, F)], -(g + lam * sign + H @ fixed)[F])
            ut = w + target
            crossing = F[pen[F] & (np.sign(ut[F]) != sign[F])]
            step = 1.0
            if crossing.size:
                ratios = u[crossing] / (u[crossing] - ut[crossing])
                step = float(ratios.min())
            trial = d + step * (target - d)
            if crossing.size:
                zero = crossing[np.argmin(ratios)]
                trial[zero] = -w[zero]
            Hd_t = H @ trial
            qt = model(trial, Hd_t)
            if qt < q:
                d, Hd, q = trial, Hd_t, qt
            sweeps = KN.prox_newton_cd(H, g, w, lam, pen, d, Hd, PROX_SWEEPS, tol)
            q_cd = model(d, Hd)
            settled = sweeps == 1 and q - q_cd <= tol
            q = q_cd
            if settled:
                break
        self.delta = float(g @ d + lam * (np.abs(w[pen] + d[pen]).sum() - base))
        return d, -q

    def _slope(self, P: np.ndarray) -> float:
        return self.t * self.delta

    def _restart(self) -> bool:
        return False

    def _update(self, P: np.ndarray, g: np.ndarray) -> None:
        pass

    def _direction(self) -> None:
        self.t = 1.0

    def _trial(self) -> np.ndarray:
        return self.x + self.t * self.d

    def contribution(self) -> dict[str, np.ndarray]:
        return dict(super().contribution(), hess=self.hess)

    def set_sums(self, sums: dict[str, np.ndarray]) -> None:
        super().set_sums(sums)
        self.hess = sums["hess"]
