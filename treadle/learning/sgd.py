"""Linear learners trained by streaming SGD, then refined to the regularised
optimum (docs/behaviour.md, "Training: convergence").

BINARY = logistic regression on labels 0/1, MULTICLASS = multinomial
logistic regression on labels 0..K-1, REGRESSION = squared loss.

Use (the caller owns the data and the passes)::

    trainer = SGDTrainer(SGDConfig("BINARY", l2=1e-6, max_passes=10), pipeline.n_features)
    for _ in range(trainer.config.max_passes):
        for chunk in reader:                  # same record order every pass
            trainer.partial_fit(pipeline.transform(chunk), y, row_weights)
        if not trainer.end_pass():
            break
    result = trainer.finish()                 # -> TrainedLinear, for model.build_model

What the caller must do
    * Present the *same* order in every pass (shuffled once when
      ``sgd.shuffleType=auto``): the holdout below is chosen by position
      within a pass.  Ordered data is fine: the refinement below does not
      depend on the order.
    * Pass batches of any size; nothing is kept between calls except the
      weights, so data larger than memory trains.

Update rule: AdaGrad, per column, ``w -= rate * c * g / sqrt(G)`` with
``G += c * g**2`` (c = the record weight, so weight 2 accumulates like two
copies of the record).  Chosen over VW's normalized-invariant default
because (a) the feature pipeline already standardises numeric values and
one-hot encodes everything else, so the per-feature scale invariance VW buys
with extra state is mostly given, (b) a column's step only changes when the
column is touched, which makes lazy L1/L2 exact (see ``sgd_kernels``), and
(c) it is one accumulator per column and learner.

Learning rates: ``DEFAULT_RATES`` = 0.03 .. 3 in half-decades.  AdaGrad's
first step on a column is ``rate`` in weight units whatever the gradient
scale, so useful rates sit around 0.1-1 for standardised features; Amazon ML's
0.01..100 grid was for a non-adaptive step.  All learners see every record
in the same loop.

Learners kept: after the first pass only the ``KEEP_AFTER_FIRST_PASS``
learners with the lowest holdout loss train on (their state is copied into
smaller arrays); the others rarely win later and would cost their share of
every further pass.  Learner ids in metrics and the log stay those of
``learning_rates``.

Progressive validation: every record is scored by every learner before it
is trained on.  With more than one pass, every ``holdout_period``-th record
of a pass (by position, VW's ``--holdout_period`` idea) is never trained on;
its loss is an honest validation loss even in later passes.  It decides
early stopping (relative improvement of the best learner below
``tolerance`` between passes) and which learner is kept.  With one pass
there is no holdout and the progressive loss decides.

Averaging: from the second pass on, the weights of every learner are
summed at ``SNAPSHOTS`` evenly spaced points of each pass (the last at its
end) and the kept learner's average over the last pass is the model
(tail-averaged SGD).  A final iterate keeps the noise of its last steps: on
the tests' 6,000-row multiclass data, macro F1 over 40 shuffles ranged
0.630-0.657 from the last iterate and 0.643-0.655 averaged.  Only columns
seen in the first pass are averaged, which with the same records every pass
is all of them.  Not with L1: its point is exact zeros, which an average of
iterates would blur, so an L1 model is the last iterate.

Refinement: SGD with AdaGrad's shrinking steps keeps a bias towards the
last records of a pass, which averaging does not remove on time-ordered
data.  So SGD gets at most ``SGDConfig.sgd_passes`` (about half of
``max_passes`` from four on) and the passes left evaluate the exact
regularised objective's loss, gradient and diagonal curvature of the kept
learner at one point per pass (``refinement.Refiner``: L-BFGS, OWL-QN with L1).  When
(columns trained on + 1) * K is at most ``refinement.NEWTON_MAX_DIM`` and three dense
Hessians fit ``memory_budget``, each pass also sums the exact Hessian and
the step is Newton's (``refinement.NewtonRefiner``; proximal Newton with L1), which
converges in a handful of passes where L-BFGS needs most of 100 on
ill-conditioned data.  The first such pass measures the SGD model's estimated gap to the optimum and
stops when it is below ``refinement.SKIP_TOLERANCE``; the holdout rows are only scored,
and the last accepted point is the model (a holdout-selected point stops
short of the optimum in weakly determined directions that can matter on
later, time-ordered data).

Data-parallel passes: ``contribution`` and ``combine`` (docs/behaviour.md,
"Training: shards").

Regularisation per record of weight c: ``c * (l1 * |w| + l2/2 * w**2)``,
applied as a proximal step after each gradient step, lazily for columns not
in the record.  The bias is not regularised.  L1 yields exact zeros.

Regression targets are standardised internally (mean/std from the config or
the first batch); the result is mapped back to target units.

Memory: ``L * n_cols * (K + 1) * 4`` bytes of state, ``n_cols * 5`` of
per-column bookkeeping, plus ``n_cols * 12`` when regularised (``n_cols = 2**weight_bits``, K = 1 unless multiclass).
Newton's refinement adds ``8 * D**2`` bytes of Hessian sums, D = (columns
trained on + 1) * K <= ``refinement.NEWTON_MAX_DIM`` (128 MB at the limit), and as much
again for the combined sums of shards and for the Cholesky factor.
When that exceeds ``memory_budget`` the hashed columns are folded onto
fewer bits (``column & (2**weight_bits - 1)``), which is the same as hashing
with fewer bits; the model records ``weight_bits`` and folds identically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import refinement
from . import sgd_kernels as KN
from .features import CsrBatch
from .model_types import MODEL_TYPES as _TYPES
from .targets import MAX_CLASSES

MODEL_TYPES = tuple(_TYPES)
DEFAULT_RATES = (0.03, 0.1, 0.3, 1.0, 3.0)
FIRST_CHECKPOINT = 64
SNAPSHOTS = 32  # weight snapshots averaged per pass
KEEP_AFTER_FIRST_PASS = 2


@dataclass(frozen=True)
class SGDConfig:
    model_type: str
    l1: float = 0.0
    l2: float = 0.0
    max_passes: int = 10
    learning_rates: tuple[float, ...] = DEFAULT_RATES
    n_classes: int = 2  # multiclass: initial class capacity; grows as labels appear
    holdout_period: int = 10
    tolerance: float = 1e-3
    memory_budget: int = 1 << 30
    target_mean: float | None = None  # regression
    target_std: float | None = None
    average: bool = True  # tail-average the weights over the last pass (not with L1)
    refine: bool = True  # full-gradient refinement after the SGD passes

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}")
        if self.l1 < 0 or self.l2 < 0 or not self.learning_rates or self.max_passes < 1:
            raise ValueError("invalid SGD configuration")

    @property
    def sgd_passes(self) -> int:
        """Passes SGD may use: at least two of every four are left to the
        refinement once there are four, when the objective is regularised
        (docs/behaviour.md, "Training: convergence")."""
        if not self.refine or self.max_passes < 4 or (self.l1 == 0 and self.l2 == 0):
            # Without a penalty the optimum over sparse features lies at
            # unbounded weights for any feature that separates the classes:
            # SGD's early stopping on the holdout is the regularisation then.
            return self.max_passes
        return self.max_passes - max(2, self.max_passes // 2)


@dataclass
class LearnerMetrics:
    """Progressive metrics of one learner over part of a pass."""

    learner: int  # index into SGDConfig.learning_rates
    rate: float
    records: int  # training records seen so far in total (all passes)
    weight: float
    loss: float  # mean progressive loss: log-loss, or squared error (regression)
    holdout_loss: float | None = None
    auc: float | None = None  # binary
    confusion: tuple[float, float, float, float] | None = None  # binary at 0.5: tp, fp, tn, fn
    accuracy: float | None = None  # binary, multiclass
    params: int = 0  # non-zero weights of the learner
    features: "FeatureCounts | None" = None

    @property
    def rmse(self) -> float:
        return math.sqrt(self.loss)


@dataclass
class FeatureCounts:
    """Active features per training record so far (all passes), for the log."""

    updates: int
    minimum: int
    maximum: int
    mean: float
    total: int
    quantiles: tuple[int, int, int]  # 10 %, 50 %, 90 %


@dataclass
class PassReport:
    pass_number: int
    records: int
    holdout_records: int
    learners: list[LearnerMetrics]
    best: int  # position in ``learners``
    converged: bool
    objective: float | None = None  # refinement passes: the regularised objective per unit of weight


@dataclass
class TrainedLinear:
    """The kept learner, ready for ``model.build_model``."""

    model_type: str
    weights: np.ndarray  # (2**weight_bits, K) float32, dense
    bias: np.ndarray  # (K,) float64
    feature_scale: np.ndarray  # (2**weight_bits,) RMS of each column's value over training
    weight_bits: int
    n_classes: int
    learner: int  # position of the kept learner in the last pass report's ``learners``
    rate: float
    passes: int
    records: int  # training records x passes (holdout included)
    averaged: int = 0  # weight snapshots averaged into the SGD model (0: the last iterate)
    refined: int = 0  # full-gradient passes after the SGD passes
    column_ids: np.ndarray | None = None  # weights row i is column column_ids[i] (set by columns.ColumnMap)
    checkpoints: list[list[LearnerMetrics]] = field(default_factory=list)
    pass_reports: list[PassReport] = field(default_factory=list)


@dataclass
class PassContribution:
    """What one shard's pass adds to the model (``SGDTrainer.contribution``).

    ``mean`` arrays are averaged over the shards (SGD weights: parameter
    averaging), ``sums`` are added (metrics, and the refinement's loss,
    gradient and curvature, which add exactly)."""

    refining: bool
    classes: int
    records: int  # rows of this pass on the shard
    mean: dict[str, np.ndarray]
    sums: dict[str, np.ndarray]
    target: tuple[float | None, float | None] = (None, None)


def _choose_bits(n_features: int, learners: int, k: int, budget: int, regularised: bool, refine: bool) -> int:
    bits = max(int(n_features - 1).bit_length(), 1)
    while bits > 10:
        per_col = learners * (k + 1) * 4 + 5 + (12 if regularised else 0)  # + xsq, seen
        if refine:  # the refinement's state replaces the SGD state (Refiner)
            per_col = max(per_col, k * (6 * 8 + 2 * refinement.REFINE_PAIRS * 4) + 4)
        if (1 << bits) * per_col <= budget:
            break
        bits -= 1
    return bits


def _widen(a: np.ndarray, old: int, new: int, accumulator: bool) -> np.ndarray:
    """``a`` with its last axis grown from ``old`` to ``new`` classes (zero
    weights); with ``accumulator`` the slot after the classes moves along."""
    out = np.zeros(a.shape[:-1] + (new + accumulator,), dtype=a.dtype)
    out[..., :old] = a[..., :old]
    if accumulator:
        out[..., new] = a[..., old]
    return out


class SGDTrainer:
    def __init__(self, config: SGDConfig, n_features: int):
        self.config = config
        self.type = _TYPES[config.model_type]
        self.loss = KN.LOSSES[self.type.loss]
        self.rates = np.asarray(config.learning_rates, dtype=np.float64)
        L = len(self.rates)
        self.learner_ids = np.arange(L)
        self.k = self.type.outputs(max(2, min(config.n_classes, MAX_CLASSES)))
        self.regularised = config.l1 > 0 or config.l2 > 0
        self.refines = config.sgd_passes < config.max_passes
        self.weight_bits = _choose_bits(n_features, L, self.k, config.memory_budget, self.regularised, self.refines)
        n = 1 << self.weight_bits
        self.mask = n - 1
        self.S = np.zeros((n, L, self.k + 1), dtype=np.float32)
        self.B = np.zeros((L, self.k + 1), dtype=np.float64)
        self.last = np.zeros(n if self.regularised else 1, dtype=np.float64)
        self.xsq = np.zeros(n, dtype=np.float32)
        self.seen = np.zeros(n, dtype=np.uint8)  # columns ever stepped on; see metrics()
        self.clock = np.zeros(1, dtype=np.float64)
        self.period = config.holdout_period if config.max_passes > 1 else 0
        self.passes = 0
        self.records = 0  # rows seen, all passes
        self.pos = 0  # rows seen in this pass
        self.next_checkpoint = FIRST_CHECKPOINT
        self.checkpoints: list[list[LearnerMetrics]] = []
        self.pass_reports: list[PassReport] = []
        self.stopped = False
        self.row_len_hist = np.zeros(64, dtype=np.int64)  # grows to the longest row
        self.t_mean = config.target_mean
        self.t_std = config.target_std
        self.averaging = config.average and config.l1 == 0 and config.max_passes > 1
        self.avg_cols: np.ndarray | None = None  # set at the end of the first pass
        self.snapshot_every = 0
        self.average_of_last_pass: tuple[np.ndarray, np.ndarray, int] | None = None
        self.refiner: refinement.Refiner | None = None
        self.sgd_best = 0  # the kept SGD learner, once refining
        self.averaged = 0
        self._reset_pass()

    # ------------------------------------------------------------ training
    def _reset_pass(self) -> None:
        if self.refiner is not None:
            self.refiner.reset_pass()
            return
        L = len(self.rates)
        self.tr_loss = np.zeros(L)
        self.ho_loss = np.zeros(L)
        self.totals = np.zeros(4)
        self.hist = np.zeros((L, 2, KN.N_BINS)) if self.loss == KN.LOGISTIC else np.zeros((L, 2, 1))
        self.correct = np.zeros((L, 1))
        if self.avg_cols is not None:
            self.A = np.zeros((self.avg_cols.shape[0], L, self.k), dtype=np.float32)
            self.B_sum = np.zeros((L, self.k))
            self.snapshots = 0
            self.next_snapshot = self.snapshot_every

    def _snapshot(self) -> None:
        now = float(self.clock[0])
        KN.add_snapshot(self.S, self.k, self.avg_cols, self.config.l1, self.config.l2, self.rates,
                        self.last, now, self.A)
        self.B_sum += self.B[:, : self.k]
        self.snapshots += 1

    def _targets(self, y: np.ndarray, rw: np.ndarray) -> np.ndarray:
        """y as the kernels take it (float64): class numbers (growing the
        outputs to the largest seen), 0/1, or standardised targets."""
        n = y.shape[0]
        if self.loss == KN.SOFTMAX:
            y = y.astype(np.int64)
            if n and (y.min() < 0 or y.max() >= MAX_CLASSES):
                raise ValueError(f"class numbers must be in 0..{MAX_CLASSES - 1}")
            if n and y.max() >= self.k:
                self._grow(int(y.max()) + 1)
            return y.astype(np.float64)
        y = y.astype(np.float64)
        if self.loss == KN.SQUARED:
            if self.t_mean is None or self.t_std is None:
                self.t_mean = float(np.average(y, weights=rw)) if rw.sum() > 0 else 0.0
                sd = float(np.sqrt(np.average((y - self.t_mean) ** 2, weights=rw))) if rw.sum() > 0 else 1.0
                self.t_std = sd
            y = (y - self.t_mean) / (self.t_std or 1.0)
        return y

    def partial_fit(self, batch: CsrBatch, y: np.ndarray, weight: np.ndarray | None = None) -> None:
        """Score then train every learner on each row of ``batch`` in order
        (while refining: add the rows' loss and gradient at the evaluated point).

        y: 0/1 (BINARY), class numbers 0..K-1 (MULTICLASS), real (REGRESSION);
        weight: non-negative per-row weights (``rowWeight``), default 1.
        """
        if self.stopped:
            raise RuntimeError("training already finished")
        n = batch.n_rows
        y = np.asarray(y)
        if y.shape[0] != n:
            raise ValueError("y length differs from the batch's rows")
        rw = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
        if rw.shape[0] != n or (n and (not np.all(np.isfinite(rw)) or rw.min() < 0)):
            raise ValueError("row weights must be finite, non-negative, one per row")
        if self.refiner is not None:
            if self.loss == KN.SOFTMAX and n and int(np.max(y)) >= self.k:
                raise ValueError("a class first seen after the SGD passes")
            self.refiner.run(batch, self._targets(y, rw), rw, 0, n, self.mask, self.pos)
            self.records += n
            self.pos += n
            return
        y = self._targets(y, rw)
        lens = np.diff(batch.indptr)
        if n:
            top = int(lens.max())
            if top >= self.row_len_hist.shape[0]:
                self.row_len_hist = np.concatenate([self.row_len_hist, np.zeros(top + 1 - self.row_len_hist.shape[0], np.int64)])
        r = 0
        while r < n:
            # stop at power-of-two record counts so the log can report there
            end = min(n, r + self.next_checkpoint - self.records)
            if self.avg_cols is not None:
                end = min(end, r + self.next_snapshot - self.pos)
            self._run(batch, y, rw, r, end)
            if end > r:
                counts = np.bincount(lens[r:end])
                self.row_len_hist[: counts.shape[0]] += counts
            self.records += end - r
            self.pos += end - r
            r = end
            if self.records == self.next_checkpoint:
                self.checkpoints.append(self.metrics())
                self.next_checkpoint *= 2
            if self.avg_cols is not None and self.pos == self.next_snapshot:
                self._snapshot()
                self.next_snapshot += self.snapshot_every

    def _run(self, batch: CsrBatch, y, rw, r0: int, r1: int) -> None:
        L = len(self.rates)
        c = self.config
        KN.train(batch.indptr, batch.indices, batch.data, r0, r1, y, rw, self.S, self.B, self.rates, self.loss,
                 c.l1, c.l2, self.last, self.clock, self.mask, self.period, self.pos, self.xsq, self.passes == 0,
                 self.tr_loss, self.ho_loss, self.totals, self.hist, self.correct,
                 np.zeros((L, self.k)), np.zeros((L, self.k)), self.seen)

    def _grow(self, k: int) -> None:
        """Widen the class dimension; new classes start at zero weight."""
        self.S = _widen(self.S, self.k, k, True)
        self.B = _widen(self.B, self.k, k, True)
        if self.avg_cols is not None:
            self.A = _widen(self.A, self.k, k, False)
            self.B_sum = _widen(self.B_sum, self.k, k, False)
        self.k = k

    # ------------------------------------------------------------- metrics
    def _performance(self, m: LearnerMetrics, hist: np.ndarray, correct: float, weight: float) -> None:
        """AUC, confusion and accuracy (LOGISTIC) or accuracy (SOFTMAX) into m."""
        if self.loss == KN.LOGISTIC:
            neg, pos = hist[0], hist[1]
            m.auc = _hist_auc(pos, neg)
            half = KN.N_BINS // 2
            tp, fn = pos[half:].sum(), pos[:half].sum()
            fp, tn = neg[half:].sum(), neg[:half].sum()
            m.confusion = (float(tp), float(fp), float(tn), float(fn))
            m.accuracy = float((tp + tn) / weight) if weight > 0 else math.nan
        elif self.loss == KN.SOFTMAX:
            m.accuracy = float(correct / weight) if weight > 0 else math.nan

    @property
    def _loss_scale(self) -> float:
        """Mean kernel loss -> the reported loss: log-loss, or mean squared
        error in target units (the kernel's squared loss is halved)."""
        return 2 * (self.t_std or 1.0) ** 2 if self.loss == KN.SQUARED else 1.0

    def metrics(self) -> list[LearnerMetrics]:
        """Progressive metrics of every learner so far in this pass."""
        w_tr, w_ho = self.totals[0], self.totals[1]
        scale = self._loss_scale
        out = []
        feats = self.feature_counts()
        params = np.zeros(len(self.rates), dtype=np.int64)
        KN.count_weights(self.S, self.k, self.seen, params)
        for l, rate in enumerate(self.rates):
            m = LearnerMetrics(int(self.learner_ids[l]), float(rate), self.records, float(w_tr),
                               float(self.tr_loss[l] / w_tr * scale) if w_tr > 0 else math.nan,
                               params=int(params[l]), features=feats)
            if w_ho > 0:
                m.holdout_loss = float(self.ho_loss[l] / w_ho * scale)
            self._performance(m, self.hist[l], float(self.correct[l, 0]), w_tr)
            out.append(m)
        return out

    def feature_counts(self) -> FeatureCounts:
        h = self.row_len_hist
        n = int(h.sum())
        if n == 0:
            return FeatureCounts(0, 0, 0, 0.0, 0, (0, 0, 0))
        present = np.flatnonzero(h)
        cum = np.cumsum(h)
        q = tuple(int(np.searchsorted(cum, f * n)) for f in (0.1, 0.5, 0.9))
        total = int(np.dot(h, np.arange(h.shape[0])))
        return FeatureCounts(n, int(present[0]), int(present[-1]), total / n, total, q)

    @staticmethod
    def _keys(ms: list[LearnerMetrics]) -> list[float]:
        """What decides between learners: holdout loss, else progressive loss; NaN last."""
        keys = [m.holdout_loss if m.holdout_loss is not None else m.loss for m in ms]
        return [k if k == k else math.inf for k in keys]

    def _best(self, ms: list[LearnerMetrics]) -> int:
        return int(np.argmin(self._keys(ms)))

    def end_pass(self) -> bool:
        """Close a pass; True when another pass should run."""
        if self.refiner is not None:
            return self._end_refinement_pass()
        ms = self.metrics()
        keys = self._keys(ms)
        best = int(np.argmin(keys))
        key = keys[best]
        converged = False
        if self.pass_reports:
            prev = self.pass_reports[-1]
            pkey = self._keys(prev.learners)[prev.best]
            converged = not (pkey - key > self.config.tolerance * abs(pkey))
        self.passes += 1
        self.pass_reports.append(PassReport(self.passes, int(self.totals[2]), int(self.totals[3]), ms, best, converged))
        self._close_snapshots()
        if self.avg_cols is not None:
            self.average_of_last_pass = (self.A, self.B_sum, self.snapshots)
        elif self.averaging and self.passes == 1:
            self.avg_cols = np.flatnonzero(self.seen)
            self.snapshot_every = max(1, -(-self.pos // SNAPSHOTS))
        more = not converged and self.passes < self.config.sgd_passes
        if not more and self.refines and self.config.max_passes - self.passes >= 2:
            self._start_refinement(best)
            self.pos = 0
            return True
        if more and self.passes == 1 and len(self.rates) > KEEP_AFTER_FIRST_PASS:
            self._keep_learners(ms)
        self._reset_pass()
        self.pos = 0
        return more

    def _close_snapshots(self) -> None:
        """Snapshot the rows since the last snapshot of this pass, once."""
        if self.avg_cols is not None and self.pos > self.next_snapshot - self.snapshot_every:
            self._snapshot()
            self.next_snapshot = self.pos + self.snapshot_every

    def _keep_learners(self, ms: list[LearnerMetrics]) -> None:
        keep = np.sort(np.argsort(self._keys(ms), kind="stable")[:KEEP_AFTER_FIRST_PASS])
        # Only columns stepped on hold state; copying just those (into
        # lazily zeroed pages) costs nothing next to a copy of the whole table.
        cols = self.avg_cols if self.avg_cols is not None else np.flatnonzero(self.seen)
        S = np.zeros((self.S.shape[0], keep.shape[0], self.S.shape[2]), dtype=self.S.dtype)
        S[cols] = self.S[cols][:, keep, :]
        self.S = S
        self.B = self.B[keep].copy()
        self.rates = self.rates[keep]
        self.learner_ids = self.learner_ids[keep]

    def _sgd_model(self, best: int) -> tuple[np.ndarray, np.ndarray, int]:
        """The kept SGD learner's weights (n, K), bias (K,) and snapshots averaged."""
        n, k = self.S.shape[0], self.k
        W = np.empty((n, k), dtype=np.float32)
        last = self.last if self.regularised else np.zeros(n)
        now = float(self.clock[0]) if self.regularised else 0.0
        KN.settle(self.S, best, k, self.config.l1, self.config.l2, float(self.rates[best]), last, now, W)
        bias = self.B[best, :k].copy()
        averaged = 0
        if self.average_of_last_pass is not None and self.average_of_last_pass[2] > 0:
            A, B_sum, averaged = self.average_of_last_pass
            W[self.avg_cols] = A[:, best, :] / averaged
            bias = B_sum[best] / averaged
        return W, bias, averaged

    # ---------------------------------------------------------- refinement
    def _start_refinement(self, best: int) -> None:
        """Hand the kept learner to the full-gradient refinement; the SGD
        state is dropped (docs/behaviour.md, "Training: convergence")."""
        W, bias, self.averaged = self._sgd_model(best)
        x = np.empty((W.shape[0] + 1, self.k))
        x[:-1] = W
        x[-1] = bias
        self.sgd_best = best
        c = self.config
        cols = np.flatnonzero(self.seen)  # columns trained on: the only ones with a gradient
        dim = (cols.shape[0] + 1) * self.k
        self.refiner = refinement.refiner_for(self.loss, x, c.l1, c.l2, self.period, cols, dim, c.memory_budget)
        self.S = self.A = self.average_of_last_pass = None
        self.last = np.zeros(1)

    def _end_refinement_pass(self) -> bool:
        r = self.refiner
        evaluated, weight, rows = r.point, float(r.sums[1]), int(r.sums[2])
        m = LearnerMetrics(int(self.learner_ids[self.sgd_best]), float(self.rates[self.sgd_best]), self.records,
                           weight, float(r.sums[0] / weight * self._loss_scale) if weight > 0 else math.nan,
                           params=int(np.count_nonzero(evaluated[:-1])), features=self.feature_counts())
        if r.sums[4] > 0:
            m.holdout_loss = float(r.sums[3] / r.sums[4] * self._loss_scale)
        self._performance(m, r.hist, float(r.correct[0]), weight)
        more = r.end_pass()
        self.passes += 1
        more = more and self.passes < self.config.max_passes
        objective = r.evaluated_f / weight if weight > 0 else None
        self.pass_reports.append(PassReport(self.passes, rows, int(r.sums[5]), [m], 0, not more and r.done, objective))
        r.reset_pass()
        self.pos = 0
        return more

    @property
    def best_learner(self) -> int:
        return self.pass_reports[-1].best if self.pass_reports else self._best(self.metrics())

    def finish(self) -> TrainedLinear:
        pending = self.refiner.sums[2] > 0 if self.refiner is not None else self.totals[2] + self.totals[3] > 0
        if pending or not self.pass_reports:
            self.end_pass()
        self.stopped = True
        best = self.best_learner
        if self.refiner is not None:
            W = self.refiner.kept[:-1].astype(np.float32)
            bias = self.refiner.kept[-1].copy()
            averaged, refined, rate = self.averaged, self.refiner.evaluations, float(self.rates[self.sgd_best])
        else:
            W, bias, averaged = self._sgd_model(best)
            refined, rate = 0, float(self.rates[best])
        if self.loss == KN.SQUARED:
            std = self.t_std or 1.0
            W *= np.float32(std)
            bias = bias * std + (self.t_mean or 0.0)
        first_weight = self.pass_reports[0].learners[0].weight if self.pass_reports else 0.0
        scale = np.sqrt(self.xsq / first_weight) if first_weight > 0 else np.zeros_like(self.xsq)
        return TrainedLinear(self.config.model_type, W, bias, scale.astype(np.float32), self.weight_bits, self.k,
                             best, rate, self.passes, self.records, averaged=averaged, refined=refined,
                             checkpoints=self.checkpoints, pass_reports=self.pass_reports)

    # ------------------------------------------------- data-parallel passes
    def contribution(self) -> PassContribution:
        """This trainer's share of the current pass, once its shard's rows
        have been given to ``partial_fit`` (docs/behaviour.md, "Training:
        shards").  Every shard's trainer, built from the same config, then
        calls ``combine`` with all the shards' contributions in the same
        order, and ``end_pass``: they take the same decisions and stay equal."""
        if self.refiner is not None:
            return PassContribution(True, self.k, self.pos, {}, dict(self.refiner.contribution()),
                                    (self.t_mean, self.t_std))
        self._close_snapshots()
        if self.regularised:  # weights as of the shard's clock, so that they average
            KN.settle_all(self.S, self.k, self.config.l1, self.config.l2, self.rates, self.last, float(self.clock[0]))
        mean = {"S": self.S, "B": self.B, "clock": self.clock}
        sums = {"tr_loss": self.tr_loss, "ho_loss": self.ho_loss, "totals": self.totals, "hist": self.hist,
                "correct": self.correct, "seen": self.seen.astype(np.int64), "row_len_hist": self.row_len_hist}
        if self.passes == 0:
            sums["xsq"] = self.xsq  # only the first pass adds to it
        if self.avg_cols is not None:
            sums.update(A=self.A, B_sum=self.B_sum, snapshots=np.array([self.snapshots]))
        return PassContribution(False, self.k, self.pos, mean, sums, (self.t_mean, self.t_std))

    def combine(self, contributions: Sequence[PassContribution]) -> None:
        """Make this trainer's pass the combination of the shards' passes
        (`merge_contributions`). Never writes into the contributions' arrays."""
        if any(c.refining != (self.refiner is not None) for c in contributions):
            raise ValueError("contributions from different stages of training")
        merged = merge_contributions(contributions)
        combined = {**merged.mean, **merged.sums}
        self.t_mean, self.t_std = merged.target
        if merged.classes > self.k and self.refiner is None:
            self._grow(merged.classes)
        before = self.records - self.pos
        self.pos = merged.records
        self.records = before + self.pos
        while self.next_checkpoint <= self.records:
            self.next_checkpoint *= 2
        if self.refiner is not None:
            self.refiner.set_sums(combined)
            return
        self.S = combined["S"].astype(np.float32)
        self.B = combined["B"]
        self.clock = combined["clock"]
        if self.regularised:
            self.last = np.full(self.last.shape[0], float(self.clock[0]))
        self.tr_loss, self.ho_loss, self.totals = combined["tr_loss"], combined["ho_loss"], combined["totals"]
        self.hist, self.correct, self.row_len_hist = combined["hist"], combined["correct"], combined["row_len_hist"]
        self.seen = (combined["seen"] > 0).astype(np.uint8)
        if "xsq" in combined:
            self.xsq = combined["xsq"].astype(np.float32)
        if "A" in combined:
            self.A, self.B_sum = combined["A"].astype(np.float32), combined["B_sum"]
            self.snapshots = int(combined["snapshots"][0])
            self.next_snapshot = self.pos + self.snapshot_every  # closed: see _close_snapshots


def merge_contributions(contributions: Sequence[PassContribution]) -> PassContribution:
    """The shards' passes as one contribution: SGD weights, accumulators and
    bias averaged, metrics and tail averages added; while refining, loss,
    gradient, curvature (and Newton's Hessian) sums added. A trainer
    combining the merged contribution alone ends in the same state as one
    combining them all, so a cluster's job merges once and sends each shard
    the one result: a pass's traffic grows with the shards, not with their
    square. Never writes into the contributions' arrays."""
    if not contributions:
        raise ValueError("no contributions")
    if len({c.refining for c in contributions}) > 1:
        raise ValueError("contributions from different stages of training")
    if len({c.target for c in contributions}) > 1:
        raise ValueError("shards standardised the target differently: give target_mean and target_std")
    k = max(c.classes for c in contributions)
    widen = {"S": True, "B": True, "A": False, "B_sum": False}
    first = contributions[0]
    top = max(c.sums["row_len_hist"].shape[0] for c in contributions) if "row_len_hist" in first.sums else 0

    def fit(name: str, a: np.ndarray, classes: int) -> np.ndarray:
        if name in widen and classes < k:
            return _widen(a, classes, k, widen[name])
        if name == "row_len_hist" and a.shape[0] < top:
            return np.concatenate([a, np.zeros(top - a.shape[0], a.dtype)])
        return a

    mean, sums = {}, {}
    for name in first.mean:
        total = fit(name, first.mean[name], first.classes).astype(np.float64)
        for c in contributions[1:]:
            total += fit(name, c.mean[name], c.classes)
        mean[name] = total / len(contributions)
    for name in first.sums:
        total = fit(name, first.sums[name], first.classes).copy()
        for c in contributions[1:]:
            total += fit(name, c.sums[name], c.classes)
        sums[name] = total
    return PassContribution(first.refining, k, sum(c.records for c in contributions), mean, sums, first.target)


def _hist_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    P, N = pos.sum(), neg.sum()
    if P <= 0 or N <= 0:
        return math.nan
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (P * N))


__all__ = ["DEFAULT_RATES", "FeatureCounts", "LearnerMetrics", "PassContribution", "PassReport", "SGDConfig",
           "SGDTrainer", "TrainedLinear", "merge_contributions"]
