"""Linear learners trained by streaming SGD (spec section 4).

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
    * Shuffle.  SGD assumes records arrive in random order; sorted data (all
      positives first) trains badly.  Shuffle once before training when
      ``sgd.shuffleType=auto`` and present the *same* order in every pass:
      the holdout below is chosen by position within a pass.
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

Regularisation per record of weight c: ``c * (l1 * |w| + l2/2 * w**2)``,
applied as a proximal step after each gradient step, lazily for columns not
in the record.  The bias is not regularised.  L1 yields exact zeros.

Regression targets are standardised internally (mean/std from the config or
the first batch); the result is mapped back to target units.

Memory: ``L * n_cols * (K + 1) * 4`` bytes of state, ``n_cols * 5`` of
per-column bookkeeping, plus ``n_cols * 12`` when regularised (``n_cols = 2**weight_bits``, K = 1 unless multiclass).
When that exceeds ``memory_budget`` the hashed columns are folded onto
fewer bits (``column & (2**weight_bits - 1)``), which is the same as hashing
with fewer bits; the model records ``weight_bits`` and folds identically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import sgd_kernels as KN
from .features import CsrBatch

MODEL_TYPES = ("BINARY", "MULTICLASS", "REGRESSION")
DEFAULT_RATES = (0.03, 0.1, 0.3, 1.0, 3.0)
MAX_CLASSES = 100
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

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}")
        if self.l1 < 0 or self.l2 < 0 or not self.learning_rates or self.max_passes < 1:
            raise ValueError("invalid SGD configuration")


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
    averaged: int = 0  # weight snapshots averaged into the model (0: the last iterate)
    column_ids: np.ndarray | None = None  # weights row i is column column_ids[i] (set by columns.ColumnMap)
    checkpoints: list[list[LearnerMetrics]] = field(default_factory=list)
    pass_reports: list[PassReport] = field(default_factory=list)


def _choose_bits(n_features: int, learners: int, k: int, budget: int, regularised: bool) -> int:
    bits = max(int(n_features - 1).bit_length(), 1)
    while bits > 10:
        per_col = learners * (k + 1) * 4 + 5 + (12 if regularised else 0)  # + xsq, seen
        if (1 << bits) * per_col <= budget:
            break
        bits -= 1
    return bits


class SGDTrainer:
    def __init__(self, config: SGDConfig, n_features: int):
        self.config = config
        self.kind = {"BINARY": KN.BINARY, "REGRESSION": KN.REGRESSION, "MULTICLASS": KN.MULTICLASS}[config.model_type]
        self.rates = np.asarray(config.learning_rates, dtype=np.float64)
        L = len(self.rates)
        self.learner_ids = np.arange(L)
        self.k = max(2, min(config.n_classes, MAX_CLASSES)) if self.kind == KN.MULTICLASS else 1
        self.regularised = config.l1 > 0 or config.l2 > 0
        self.weight_bits = _choose_bits(n_features, L, self.k, config.memory_budget, self.regularised)
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
        self._reset_pass()

    # ------------------------------------------------------------ training
    def _reset_pass(self) -> None:
        L = len(self.rates)
        self.tr_loss = np.zeros(L)
        self.ho_loss = np.zeros(L)
        self.totals = np.zeros(4)
        self.hist = np.zeros((L, 2, KN.N_BINS)) if self.kind == KN.BINARY else np.zeros((1, 2, 1))
        self.correct = np.zeros(L)
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

    def partial_fit(self, batch: CsrBatch, y: np.ndarray, weight: np.ndarray | None = None) -> None:
        """Score then train every learner on each row of ``batch`` in order.

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
        if self.kind == KN.MULTICLASS:
            y = y.astype(np.int64)
            if n and (y.min() < 0 or y.max() >= MAX_CLASSES):
                raise ValueError(f"class numbers must be in 0..{MAX_CLASSES - 1}")
            if n and y.max() >= self.k:
                self._grow(int(y.max()) + 1)
        else:
            y = y.astype(np.float64)
            if self.kind == KN.REGRESSION:
                if self.t_mean is None or self.t_std is None:
                    self.t_mean = float(np.average(y, weights=rw)) if rw.sum() > 0 else 0.0
                    sd = float(np.sqrt(np.average((y - self.t_mean) ** 2, weights=rw))) if rw.sum() > 0 else 1.0
                    self.t_std = sd
                y = (y - self.t_mean) / (self.t_std or 1.0)
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
        track = self.passes == 0
        c = self.config
        if self.kind == KN.MULTICLASS:
            KN.train_multiclass(batch.indptr, batch.indices, batch.data, r0, r1, y, rw, self.S, self.B, self.rates,
                                c.l1, c.l2, self.last, self.clock, self.mask, self.period, self.pos, self.xsq, track,
                                self.tr_loss, self.ho_loss, self.totals, self.correct,
                                np.zeros((L, self.k)), np.zeros((L, self.k)), self.seen)
        else:
            KN.train_scalar(batch.indptr, batch.indices, batch.data, r0, r1, y, rw, self.S, self.B, self.rates,
                            self.kind, c.l1, c.l2, self.last, self.clock, self.mask, self.period, self.pos,
                            self.xsq, track, self.tr_loss, self.ho_loss, self.totals, self.hist,
                            np.zeros(L), np.zeros(L), self.seen)

    def _grow(self, k: int) -> None:
        """Widen the class dimension; new classes start at zero weight."""
        n, L, old = self.S.shape[0], len(self.rates), self.k
        S = np.zeros((n, L, k + 1), dtype=np.float32)
        S[:, :, :old] = self.S[:, :, :old]
        S[:, :, k] = self.S[:, :, old]
        B = np.zeros((L, k + 1))
        B[:, :old] = self.B[:, :old]
        B[:, k] = self.B[:, old]
        self.S, self.B, self.k = S, B, k

    # ------------------------------------------------------------- metrics
    def metrics(self) -> list[LearnerMetrics]:
        """Progressive metrics of every learner so far in this pass."""
        w_tr, w_ho = self.totals[0], self.totals[1]
        scale = (self.t_std or 1.0) ** 2 if self.kind == KN.REGRESSION else 1.0
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
            if self.kind == KN.BINARY:
                neg, pos = self.hist[l, 0], self.hist[l, 1]
                m.auc = _hist_auc(pos, neg)
                half = KN.N_BINS // 2
                tp, fn = pos[half:].sum(), pos[:half].sum()
                fp, tn = neg[half:].sum(), neg[:half].sum()
                m.confusion = (float(tp), float(fp), float(tn), float(fn))
                m.accuracy = float((tp + tn) / w_tr) if w_tr > 0 else math.nan
            elif self.kind == KN.MULTICLASS:
                m.accuracy = float(self.correct[l] / w_tr) if w_tr > 0 else math.nan
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
        if self.avg_cols is not None:
            if self.pos > self.next_snapshot - self.snapshot_every:  # rows since the last snapshot
                self._snapshot()
            self.average_of_last_pass = (self.A, self.B_sum, self.snapshots)
        elif self.averaging and self.passes == 1:
            self.avg_cols = np.flatnonzero(self.seen)
            self.snapshot_every = max(1, -(-self.pos // SNAPSHOTS))
        more = not converged and self.passes < self.config.max_passes
        if more and self.passes == 1 and len(self.rates) > KEEP_AFTER_FIRST_PASS:
            self._keep_learners(ms)
        self._reset_pass()
        self.pos = 0
        return more

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

    @property
    def best_learner(self) -> int:
        return self.pass_reports[-1].best if self.pass_reports else self._best(self.metrics())

    def finish(self) -> TrainedLinear:
        if self.totals[2] + self.totals[3] > 0 or not self.pass_reports:
            self.end_pass()
        self.stopped = True
        best = self.best_learner
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
        if self.kind == KN.REGRESSION:
            std = self.t_std or 1.0
            W *= np.float32(std)
            bias = bias * std + (self.t_mean or 0.0)
        first_weight = self.pass_reports[0].learners[0].weight if self.pass_reports else 0.0
        scale = np.sqrt(self.xsq / first_weight) if first_weight > 0 else np.zeros_like(self.xsq)
        return TrainedLinear(self.config.model_type, W, bias, scale.astype(np.float32), self.weight_bits, k, best,
                             float(self.rates[best]), self.passes, self.records, averaged=averaged,
                             checkpoints=self.checkpoints, pass_reports=self.pass_reports)


def _hist_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    P, N = pos.sum(), neg.sum()
    if P <= 0 or N <= 0:
        return math.nan
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (P * N))


__all__ = ["DEFAULT_RATES", "FeatureCounts", "LearnerMetrics", "PassReport", "SGDConfig", "SGDTrainer", "TrainedLinear"]
