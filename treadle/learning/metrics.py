"""Evaluation metrics (docs/behaviour.md, "Evaluations") and the console's
insights, all streaming.

Each accumulator has ``update(...)`` per batch, ``merge(other)`` (so
partitions can be evaluated in parallel), ``to_dict()/from_dict()`` for the
stored insights, and the headline metric.

BinaryAUC is exact.  Scores are kept as float32 (what the model and the
batch output carry) in a table of *distinct* scores with the weighted
positive and negative totals of each: exact AUC with ties counted half,
exact ROC, exact counts at any threshold.  The table has an entry per
distinct score, close to one per record for a model with continuous
features, so memory holds at most ``MAX_RESIDENT_SCORES`` of them (20 bytes
each).  Past that, the table and the records after it are dealt to files by
score range, in arrival order; the first result asked for compacts the
files one at a time, in range order, into one sorted table on disk, and
every result reads that table block by block, repeating the in-memory
formulas' arithmetic piece by piece (numpy's pairwise sums, running sums,
bincounts).  All the records of a score land in one file, in their order,
so its sums are the very ones memory would have made: the results are the
same bits whether or not anything went to disk.  ``BinaryScores.coarsen``
keeps a bounded table for the stored insights, exact at the kept
thresholds.
"""
from __future__ import annotations

import math
import os
import tempfile
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Self, Sequence

import numpy as np

from .numfmt import java_double

_COMPACT_EVERY = 1 << 20
MAX_RESIDENT_SCORES = 1 << 21  # distinct scores a BinaryScores holds in memory; past it, records go to disk
_BUCKETS = 256  # score ranges records are dealt to once on disk
_READ_BLOCK = 1 << 16  # entries read from disk at a time
_PAIRWISE_LEAF = 1 << 16  # the longest piece of a streamed sum handed to np.sum at once
_ENTRY = np.dtype([("score", "<f4"), ("neg", "<f8"), ("pos", "<f8")])  # one entry on disk, 20 bytes

Block = tuple[np.ndarray, np.ndarray, np.ndarray]  # (float32 scores, weight of negatives, of positives)


def _weights(w, n: int) -> np.ndarray:
    return np.ones(n) if w is None else np.asarray(w, dtype=np.float64)


def _empty() -> Block:
    return np.zeros(0, dtype=np.float32), np.zeros(0), np.zeros(0)


def _slices(table: Block, size: int | None = None) -> Iterator[Block]:
    size = size or _READ_BLOCK
    for start in range(0, len(table[0]), size):
        yield tuple(a[start:start + size] for a in table)


def _pending_limit() -> int:
    # Records waiting for a compaction: never more than the resident cap, so a
    # compaction sorts at most the cap plus one such batch.
    return max(1, min(_COMPACT_EVERY, MAX_RESIDENT_SCORES))


def _fold(table: Block, pending: list[Block]) -> Block:
    """The table with the pending records added: one entry per distinct
    score, whose weights are the sums in order, the table's first."""
    s = np.concatenate([table[0]] + [p[0] for p in pending])
    neg = np.concatenate([table[1]] + [p[1] for p in pending])
    pos = np.concatenate([table[2]] + [p[2] for p in pending])
    scores, inverse = np.unique(s, return_inverse=True)
    return scores, np.bincount(inverse, neg, len(scores)), np.bincount(inverse, pos, len(scores))


# ------------------------------------------------------ binary: on disk
# Past the cap, records are dealt by score range to bucket files, in
# arrival order.  Every record of a score lands in one bucket, so compacting
# the buckets one at a time, in range order, makes the very table (the same
# sums, added in the same order) that memory would have held; a bucket that
# outgrows the cap is dealt out again over narrower ranges.
def _records(block: Block) -> bytes:
    rec = np.empty(len(block[0]), dtype=_ENTRY)
    rec["score"], rec["neg"], rec["pos"] = block
    return rec.tobytes()


def _append(path: str, block: Block) -> None:
    # Opened per write: hundreds of buckets would hold as many descriptors.
    with open(path, "ab") as f:
        f.write(_records(block))


def _read(path: str, size: int | None = None) -> Iterator[Block]:
    size = size or _READ_BLOCK
    if not os.path.exists(path):  # a bucket nothing was dealt to
        return
    # Read, not memory-mapped: mapped pages would count as the job's memory.
    with open(path, "rb") as f:
        while True:
            rec = np.frombuffer(f.read(size * _ENTRY.itemsize), dtype=_ENTRY)
            if not len(rec):
                return
            yield rec["score"].copy(), rec["neg"].copy(), rec["pos"].copy()


def _bounds(picks: np.ndarray) -> np.ndarray:
    """Bucket boundaries: the picked scores, each once, ascending."""
    return np.unique(np.asarray(picks, dtype=np.float32))


def _picks(n: int) -> np.ndarray:
    """Positions at equal steps of n sorted entries, to pick _BUCKETS - 1
    boundaries from: about as many of the entries in each range."""
    return np.arange(1, _BUCKETS) * n // _BUCKETS


def _deal(paths: list[str], bounds: np.ndarray, block: Block) -> None:
    """Append each entry to the file of its range, keeping their order."""
    which = np.searchsorted(bounds, block[0], side="right")  # range [bounds[i-1], bounds[i]); NaN last
    order = np.argsort(which, kind="stable")
    which = which[order]
    cuts = np.searchsorted(which, np.arange(len(paths) + 1))
    for b in np.flatnonzero(np.diff(cuts)):
        _append(paths[b], tuple(a[order[cuts[b]:cuts[b + 1]]] for a in block))


def _scores_at(path: str, entries: np.ndarray) -> np.ndarray:
    with open(path, "rb") as f:
        out = []
        for i in entries:
            f.seek(int(i) * _ENTRY.itemsize)
            out.append(np.frombuffer(f.read(4), dtype=np.float32)[0])
    return np.array(out, dtype=np.float32)


def _spread_picks(path: str) -> np.ndarray:
    """Scores at equal steps of a sorted sample of records from all over a
    file: ranges of about as many of its records each, in whatever order
    they came (records sorted by score would all pass the first ranges)."""
    n, k = os.path.getsize(path) // _ENTRY.itemsize, 16 * _BUCKETS
    return np.sort(_scores_at(path, np.arange(k) * n // k))[_picks(k)]


def _compact_file(path: str) -> Block:
    """A bucket's table; past the cap, only as much as was read by then."""
    table = _empty()
    for block in _read(path, _pending_limit()):
        table = _fold(table, [block])
        if len(table[0]) > MAX_RESIDENT_SCORES:
            break
    return table


@dataclass
class _Sorted:
    """The whole table in one file, ascending; with the length and the total
    weight (cumsum(neg + pos)[-1]) that np.sum's pieces and coarsen need."""

    path: str
    size: int = 0
    total: Any = 0.0

    def write(self, f, table: Block) -> None:
        for block in _slices(table):
            f.write(_records(block))
            self.size += len(block[0])
            self.total = _running(self.total, block[1] + block[2])[-1]

    def picks(self) -> np.ndarray:
        return _scores_at(self.path, _picks(self.size))


# ------------------------------------------------ binary: streamed formulas
class _Reader:
    """A stream of blocks handed out in pieces of any length."""

    def __init__(self, blocks: Iterable[Block]):
        self.blocks, self.buf = iter(blocks), _empty()

    def take(self, m: int) -> Block:
        parts = []
        while m > 0:
            if not len(self.buf[0]):
                self.buf = next(self.blocks)
            k = min(m, len(self.buf[0]))
            parts.append(tuple(a[:k] for a in self.buf))
            self.buf = tuple(a[k:] for a in self.buf)
            m -= k
        if len(parts) == 1:
            return parts[0]
        return tuple(np.concatenate(c) for c in zip(*parts)) if parts else _empty()


def _pairwise(n: int, leaf: Callable[[int], tuple]) -> tuple:
    """np.sum of n float64 values, bit for bit, a piece at a time:
    ``leaf(m)`` returns np.sum of each quantity over the next m values.
    np.sum sums pairwise, halving a length at a multiple of 8 until at most
    128 are left; any length halves the same way wherever it stands, so
    np.sum of a whole half is that half's part of the full sum."""
    if n <= max(_PAIRWISE_LEAF, 128):  # numpy splits only past 128
        return leaf(n)
    half = n // 2 - (n // 2) % 8
    return tuple(a + b for a, b in zip(_pairwise(half, leaf), _pairwise(n - half, leaf)))


def _running(carry, values: np.ndarray) -> np.ndarray:
    """The block's part of np.cumsum over the whole table: the carry goes
    first, so each addition is the one a single cumsum makes."""
    return np.cumsum(np.concatenate([[carry], values]))[1:]


def _coarsened(blocks: Iterable[Block], total, max_points: int) -> Block:
    """BinaryScores.coarsen of a streamed table (``total``: its last
    cumulative weight): the same cumulative weights, group numbers and
    per-group sums, the group still open at a block's end going first into
    the next block's bincount."""
    carry, last_group = 0.0, None
    open_score, open_neg, open_pos = None, 0.0, 0.0
    out: list[Block] = []
    for s, neg, pos in blocks:
        cum = _running(carry, neg + pos)
        carry = cum[-1]
        group = np.minimum((cum / total * max_points).astype(np.int64), max_points - 1)
        new = np.diff(np.concatenate([[group[0] if last_group is None else last_group], group])) > 0
        last_group = group[-1]
        if open_score is None:
            open_score = s[0]
        local = np.concatenate([[0], np.cumsum(new)])  # 0: the open group
        heads = np.concatenate([np.array([open_score], dtype=np.float32), s[new]])  # a group's lowest score
        gneg = np.bincount(local, np.concatenate([[open_neg], neg]))
        gpos = np.bincount(local, np.concatenate([[open_pos], pos]))
        out.append((heads[:-1], gneg[:-1], gpos[:-1]))
        open_score, open_neg, open_pos = heads[-1], gneg[-1], gpos[-1]
    out.append((np.array([open_score], dtype=np.float32), np.array([open_neg]), np.array([open_pos])))
    return tuple(np.concatenate(c) for c in zip(*out))


# ------------------------------------------------------------------ binary
class BinaryScores:
    """Mergeable table: distinct float32 score -> (weight of negatives, positives).

    At most ``MAX_RESIDENT_SCORES`` distinct scores stay in memory, with at
    most as many records waiting to be added.  Past that the records go to
    files in a temporary directory (in ``spill_dir``), and the first result
    asked for turns them into one sorted table on disk that every result
    then reads block by block.  ``coarsen`` leaves only its result, in
    memory, and removes the files; ``close()`` (or leaving a ``with``
    block) removes them in any case."""

    def __init__(self, spill_dir: str | None = None) -> None:
        self.scores = np.zeros(0, dtype=np.float32)
        self.neg = np.zeros(0)
        self.pos = np.zeros(0)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_n = 0
        self._spill_dir = spill_dir
        self._dir: tempfile.TemporaryDirectory | None = None
        self._files = 0
        self._bounds: np.ndarray | None = None  # set while records are dealt to buckets
        self._buckets: list[str] = []
        self._sorted: _Sorted | None = None  # the whole table, once sorted on disk
        self._discarded = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove the files.  The memory table stays usable (all of a
        coarsened one); a table partly on disk does not."""
        self._discarded = self._discarded or self._on_disk()
        self._drop_files()

    def update(self, scores, labels, weights=None) -> None:
        # + 0 turns -0.0 into 0.0: np.unique would keep either one for the pair.
        s = np.asarray(scores, dtype=np.float32).ravel() + np.float32(0.0)
        y = np.asarray(labels).ravel().astype(bool)
        w = _weights(weights, s.shape[0])
        self._add((s, np.where(y, 0.0, w), np.where(y, w, 0.0)))

    def merge(self, other: "BinaryScores") -> "BinaryScores":
        for block in other._stream():  # other's table, after ours: as one table adds them
            self._add(block)
        self._compact()
        return self

    def _add(self, rows: Block) -> None:
        if self._sorted is not None and len(rows[0]):
            self._reopen()
        # In pieces that fill the pending batch exactly: a compaction then
        # sorts at most the cap plus one batch, whatever the caller's batch
        # size.  Compacting more often changes no sum: each stays the
        # table's sum so far plus the records in arrival order.
        limit, start, n = _pending_limit(), 0, len(rows[0])
        while start < n:
            stop = min(n, start + limit - self._pending_n)
            self._pending.append(tuple(a[start:stop] for a in rows))
            self._pending_n += stop - start
            if self._pending_n >= limit:
                self._compact()
            start = stop

    def _compact(self) -> None:
        if self._discarded:
            raise ValueError("BinaryScores was closed while part of its table was on disk")
        if self._pending:
            if self._bounds is not None:
                _deal(self._buckets, self._bounds, tuple(np.concatenate(c) for c in zip(*self._pending)))
            else:
                self.scores, self.neg, self.pos = _fold((self.scores, self.neg, self.pos), self._pending)
            self._pending, self._pending_n = [], 0
        if len(self.scores) > MAX_RESIDENT_SCORES:
            self._spill()

    # ----------------------------------------------------------- disk
    def _on_disk(self) -> bool:
        return self._bounds is not None or self._sorted is not None

    def _new_path(self) -> str:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="treadle-scores-", dir=self._spill_dir)
        self._files += 1
        return os.path.join(self._dir.name, f"{self._files}.scores")

    def _deal_out(self, picks: np.ndarray, blocks: Iterable[Block]) -> tuple[np.ndarray, list[str]]:
        """New buckets ranged by ``picks``, and the blocks dealt to them."""
        bounds = _bounds(picks)
        paths = [self._new_path() for _ in range(len(bounds) + 1)]
        for block in blocks:
            _deal(paths, bounds, block)
        return bounds, paths

    def _spill(self) -> None:
        """The memory table goes first into buckets ranged by its own
        scores; later records follow it there."""
        table = (self.scores, self.neg, self.pos)
        self._bounds, self._buckets = self._deal_out(self.scores[_picks(len(self.scores))], _slices(table))
        self.scores, self.neg, self.pos = _empty()

    def _reopen(self) -> None:
        """Records after the table was sorted: it is dealt out again first."""
        done, self._sorted = self._sorted, None
        self._bounds, self._buckets = self._deal_out(done.picks(), _read(done.path))
        os.remove(done.path)

    def _finish(self) -> None:
        """Compact bucket after bucket, in range order, into one sorted file."""
        self._compact()
        if self._bounds is None:
            return
        done, queue = _Sorted(self._new_path()), deque(self._buckets)
        with open(done.path, "wb") as f:
            while queue:
                path = queue.popleft()
                table = _compact_file(path)
                if len(table[0]) <= MAX_RESIDENT_SCORES:
                    done.write(f, table)
                else:
                    # Dealt out again over narrower ranges.  Picks from the
                    # distinct scores read leave each range fewer of them, so
                    # this ends; picks from the whole file keep the ranges even.
                    picks, table = np.concatenate([table[0][_picks(len(table[0]))], _spread_picks(path)]), None
                    queue.extendleft(reversed(self._deal_out(picks, _read(path))[1]))
                if os.path.exists(path):
                    os.remove(path)
        self._sorted, self._bounds, self._buckets = done, None, []

    def _drop_files(self) -> None:
        self._bounds, self._buckets, self._sorted = None, [], None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def _stream(self) -> Iterator[Block]:
        """The whole table in ascending blocks: one pass."""
        self._finish()
        if self._sorted is not None:
            return _read(self._sorted.path)
        return _slices((self.scores, self.neg, self.pos))

    def _table(self) -> Block:
        """The whole table in memory, for results as long as it (to_dict, roc)."""
        self._finish()
        if self._sorted is None:
            return self.scores, self.neg, self.pos
        return tuple(np.concatenate(c) for c in zip(*self._stream()))

    # --------------------------------------------------------- results
    def coarsen(self, max_points: int) -> "BinaryScores":
        """Keep at most ``max_points`` thresholds (equal-weight groups).  Of
        a table on disk only the result stays, in memory."""
        self._finish()
        if self._sorted is not None:
            done = self._sorted
            table = self._table() if done.size <= max_points else _coarsened(self._stream(), done.total, max_points)
            self._drop_files()
            self.scores, self.neg, self.pos = table
            return self
        if len(self.scores) <= max_points:
            return self
        cum = np.cumsum(self.neg + self.pos)
        group = np.minimum((cum / cum[-1] * max_points).astype(np.int64), max_points - 1)
        group = np.concatenate([[0], np.cumsum(np.diff(group) > 0)])
        first = np.searchsorted(group, np.arange(group[-1] + 1))
        self.scores = self.scores[first]  # a group's lowest score: counts at its threshold stay exact
        self.neg = np.bincount(group, self.neg)
        self.pos = np.bincount(group, self.pos)
        return self

    def _totals(self) -> tuple[Any, Any]:
        """(neg.sum(), pos.sum()) of the whole table."""
        self._finish()
        if self._sorted is None:
            return self.neg.sum(), self.pos.sum()
        reader = _Reader(self._stream())
        return _pairwise(self._sorted.size, lambda m: tuple(a.sum() for a in reader.take(m)[1:]))

    @property
    def positives(self) -> float:
        return float(self._totals()[1])

    @property
    def negatives(self) -> float:
        return float(self._totals()[0])

    def auc(self) -> float:
        """Weighted ROC AUC; ties between a positive and a negative count 1/2.
        NaN when a class is absent."""
        self._finish()
        if self._sorted is not None:
            P, N, area = self._streamed_auc()
        else:
            P, N = self.pos.sum(), self.neg.sum()
            below = np.cumsum(self.neg) - self.neg
            area = np.sum(self.pos * (below + 0.5 * self.neg))
        if P <= 0 or N <= 0:
            return math.nan
        return float(area / (P * N))

    def _streamed_auc(self) -> tuple:
        """(pos.sum(), neg.sum(), the area's sum) as auc() makes them from
        the whole table in memory."""
        reader, carry = _Reader(self._stream()), 0.0

        def leaf(m: int) -> tuple:
            nonlocal carry
            _, neg, pos = reader.take(m)
            cum = _running(carry, neg)
            carry = cum[-1] if m else carry
            return pos.sum(), neg.sum(), np.sum(pos * ((cum - neg) + 0.5 * neg))

        return _pairwise(self._sorted.size, leaf)

    def roc(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fpr, tpr, thresholds), thresholds descending, starting at (0, 0)
        with threshold +inf; predicted positive means score >= threshold.
        As long as the table: coarsen one on disk first."""
        scores, neg_w, pos_w = self._table()
        P, N = max(pos_w.sum(), 1e-300), max(neg_w.sum(), 1e-300)
        tp = np.concatenate([[0.0], np.cumsum(pos_w[::-1])])
        fp = np.concatenate([[0.0], np.cumsum(neg_w[::-1])])
        thr = np.concatenate([[np.inf], scores[::-1].astype(np.float64)])
        return fp / N, tp / P, thr

    def histograms(self, bins: int = 100) -> dict[str, list[float]]:
        """Weighted score histograms of actual positives and negatives over
        [0, 1] in ``bins`` equal bins (the console's two distributions)."""
        pos_h, neg_h, every = np.zeros(bins), np.zeros(bins), np.arange(bins)
        for s, neg, pos in self._stream():
            k = np.minimum((s.astype(np.float64) * bins).astype(np.int64), bins - 1).clip(0)
            # The running totals go first: each bin adds its weights in score
            # order, as one bincount over the whole table does.
            pos_h = np.bincount(np.concatenate([every, k]), np.concatenate([pos_h, pos]), bins)
            neg_h = np.bincount(np.concatenate([every, k]), np.concatenate([neg_h, neg]), bins)
        return {
            "edges": list(np.linspace(0.0, 1.0, bins + 1)),
            "positives": list(pos_h),
            "negatives": list(neg_h),
        }

    def _split_at(self, threshold: float) -> tuple[float, float, float, float]:
        """(positives at or above ``threshold``, below it, negatives at or
        above, below): a float32 score compared exactly with the float64
        threshold, each sum as np.sum over that part of the table makes it."""
        self._finish()
        if self._sorted is None:
            cut = int(np.searchsorted(self.scores.astype(np.float64), threshold, side="left"))
            return (float(self.pos[cut:].sum()), float(self.pos[:cut].sum()),
                    float(self.neg[cut:].sum()), float(self.neg[:cut].sum()))
        cut = sum(int(np.searchsorted(s.astype(np.float64), threshold, side="left")) for s, _, _ in self._stream())
        reader = _Reader(self._stream())

        def sums(m: int) -> tuple:
            return tuple(a.sum() for a in reader.take(m)[1:])

        neg_below, pos_below = _pairwise(cut, sums)
        neg_above, pos_above = _pairwise(self._sorted.size - cut, sums)
        return float(pos_above), float(pos_below), float(neg_above), float(neg_below)

    def to_dict(self) -> dict[str, Any]:
        scores, neg, pos = self._table()
        return {"scores": scores.tolist(), "neg": neg.tolist(), "pos": pos.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BinaryScores":
        out = cls()
        out.scores = np.asarray(d["scores"], dtype=np.float32)
        out.neg = np.asarray(d["neg"], dtype=np.float64)
        out.pos = np.asarray(d["pos"], dtype=np.float64)
        return out


@dataclass(frozen=True)
class ThresholdMetrics:
    threshold: float
    tp: float
    fp: float
    tn: float
    fn: float

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fp + self.tn + self.fn
        return (self.tp + self.tn) / total if total else math.nan

    @property
    def precision(self) -> float:
        d = self.tp + self.fp
        return self.tp / d if d else math.nan

    @property
    def recall(self) -> float:
        d = self.tp + self.fn
        return self.tp / d if d else math.nan

    @property
    def false_positive_rate(self) -> float:
        d = self.fp + self.tn
        return self.fp / d if d else math.nan

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else math.nan


def threshold_metrics(summary: BinaryScores | dict, threshold: float) -> ThresholdMetrics:
    """Counts at a cut-off from the stored summary alone: a score >=
    threshold is predicted "1" (docs/behaviour.md, "Training"), the float32 score
    compared exactly with the float64 threshold, as the model does."""
    s = summary if isinstance(summary, BinaryScores) else BinaryScores.from_dict(summary)
    tp, fn, fp, tn = s._split_at(float(threshold))
    return ThresholdMetrics(float(threshold), tp, fp, tn, fn)


# -------------------------------------------------------------- multiclass
class ConfusionMatrix:
    """Weighted confusion matrix over class numbers 0..K-1 (rows = true)."""

    def __init__(self, n_classes: int, labels: Sequence[str] | None = None):
        self.k = n_classes
        self.labels = list(labels) if labels is not None else [str(i) for i in range(n_classes)]
        self.matrix = np.zeros((n_classes, n_classes))

    def update(self, true, predicted, weights=None) -> None:
        t = np.asarray(true, dtype=np.int64).ravel()
        p = np.asarray(predicted, dtype=np.int64).ravel()
        w = _weights(weights, t.shape[0])
        self.matrix += np.bincount(t * self.k + p, w, self.k * self.k).reshape(self.k, self.k)

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        self.matrix += other.matrix
        return self

    def per_class(self) -> dict[str, np.ndarray]:
        m = self.matrix
        tp = np.diag(m)
        true_freq, pred_freq = m.sum(axis=1), m.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            denom = true_freq + pred_freq
            f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
        return {"f1": f1, "true_frequency": true_freq, "predicted_frequency": pred_freq}

    def present(self) -> np.ndarray:
        """Classes that occur as true or predicted class (sklearn's default label set)."""
        return (self.matrix.sum(axis=1) + self.matrix.sum(axis=0)) > 0

    def macro_f1(self) -> float:
        present = self.present()
        return float(self.per_class()["f1"][present].mean()) if present.any() else math.nan

    def accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else math.nan

    def top(self, n: int = 10) -> dict[str, Any]:
        """The console view: the n most frequent true classes; beyond n the
        first n-1 plus an "others" row and column."""
        order = np.argsort(-self.matrix.sum(axis=1), kind="stable")
        if self.k <= n:
            keep, rest = order, np.zeros(0, dtype=np.int64)
        else:
            keep, rest = order[: n - 1], order[n - 1:]
        m = self.matrix[np.ix_(keep, keep)]
        names = [self.labels[i] for i in keep]
        if rest.size:
            col = self.matrix[np.ix_(keep, rest)].sum(axis=1, keepdims=True)
            row = np.concatenate([self.matrix[np.ix_(rest, keep)].sum(axis=0), [self.matrix[np.ix_(rest, rest)].sum()]])
            m = np.vstack([np.hstack([m, col]), row])
            names.append("others")
        f1 = self.per_class()["f1"]
        return {"labels": names, "matrix": m.tolist(), "f1": [float(f1[i]) for i in keep]}

    def to_dict(self) -> dict[str, Any]:
        return {"labels": self.labels, "matrix": self.matrix.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ConfusionMatrix":
        out = cls(len(d["labels"]), d["labels"])
        out.matrix = np.asarray(d["matrix"], dtype=np.float64)
        return out


def baseline_macro_f1(confusion: ConfusionMatrix, majority_class: int) -> float:
    """Macro F1 of always predicting the most frequent training class on the
    evaluation data summarised by ``confusion``."""
    true_freq = confusion.matrix.sum(axis=1)
    n = true_freq.sum()
    if n <= 0:
        return math.nan
    present = true_freq > 0
    present[majority_class] = True
    f1 = np.zeros(confusion.k)
    f1[majority_class] = 2 * true_freq[majority_class] / (n + true_freq[majority_class])
    return float(f1[present].mean())


# -------------------------------------------------------------- regression
MAX_RESIDUAL_BINS = 1024


class RegressionErrors:
    """Weighted RMSE, the baseline RMSE and a residual histogram (actual -
    predicted).  Residuals are kept as a sparse histogram of ``bin_width``
    buckets chosen at the first update (range / 200 of that batch). Past
    ``MAX_RESIDUAL_BINS`` bins (residuals far outside the first batch's
    range) the width doubles and neighbouring bins merge, so the summary
    stays small whatever the data size."""

    def __init__(self, baseline_mean: float | None = None, bin_width: float | None = None):
        self.baseline_mean = baseline_mean
        self.bin_width = bin_width
        self.sse = 0.0
        self.base_sse = 0.0
        self.weight = 0.0
        self.bins: dict[int, float] = {}

    def update(self, actual, predicted, weights=None) -> None:
        a = np.asarray(actual, dtype=np.float64).ravel()
        p = np.asarray(predicted, dtype=np.float64).ravel()
        w = _weights(weights, a.shape[0])
        r = a - p
        self.sse += float(np.sum(w * r * r))
        if self.baseline_mean is not None:
            self.base_sse += float(np.sum(w * (a - self.baseline_mean) ** 2))
        self.weight += float(w.sum())
        if r.size:
            if not self.bin_width:
                span = float(r.max() - r.min())
                self.bin_width = span / 200 if span > 0 else 1.0
            keys, inv = np.unique(np.floor(r / self.bin_width).astype(np.int64), return_inverse=True)
            for k, v in zip(keys.tolist(), np.bincount(inv, w).tolist()):
                self.bins[k] = self.bins.get(k, 0.0) + v
            self._cap()

    def _coarsen(self) -> None:
        # floor(floor(r / w) / 2) == floor(r / 2w): bin k of width w lies in bin k // 2 of width 2w.
        self.bin_width *= 2
        merged: dict[int, float] = {}
        for k, v in self.bins.items():
            merged[k // 2] = merged.get(k // 2, 0.0) + v
        self.bins = merged

    def _cap(self) -> None:
        while len(self.bins) > MAX_RESIDUAL_BINS:
            self._coarsen()

    def merge(self, other: "RegressionErrors") -> "RegressionErrors":
        if other.bin_width and self.bin_width and other.bin_width != self.bin_width:
            other = RegressionErrors.from_dict(other.to_dict())  # coarsened here, not in the caller's
            for finer, coarser in ((self, other), (other, self)):
                while finer.bin_width < coarser.bin_width:
                    finer._coarsen()
            if other.bin_width != self.bin_width:
                raise ValueError("cannot merge residual histograms whose bin widths differ by other than 2^k")
        self.bin_width = self.bin_width or other.bin_width
        self.sse += other.sse
        self.base_sse += other.base_sse
        self.weight += other.weight
        for k, v in other.bins.items():
            self.bins[k] = self.bins.get(k, 0.0) + v
        self._cap()
        return self

    def rmse(self) -> float:
        return math.sqrt(self.sse / self.weight) if self.weight > 0 else math.nan

    def baseline_rmse(self) -> float:
        if self.baseline_mean is None or self.weight <= 0:
            return math.nan
        return math.sqrt(self.base_sse / self.weight)

    def residual_histogram(self) -> dict[str, list[float]]:
        keys = sorted(self.bins)
        return {"lower_edges": [k * self.bin_width for k in keys], "bin_width": self.bin_width,
                "weights": [self.bins[k] for k in keys]}

    def to_dict(self) -> dict[str, Any]:
        return {"baseline_mean": self.baseline_mean, "bin_width": self.bin_width, "sse": self.sse,
                "base_sse": self.base_sse, "weight": self.weight,
                "bins": [[k, v] for k, v in sorted(self.bins.items())]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RegressionErrors":
        out = cls(d["baseline_mean"], d["bin_width"])
        out.sse, out.base_sse, out.weight = d["sse"], d["base_sse"], d["weight"]
        out.bins = {int(k): float(v) for k, v in d["bins"]}
        return out


# ------------------------------------------------------ PerformanceMetrics
BASELINE_AUC = 0.5


__all__ = [
    "BASELINE_AUC",
    "BinaryScores",
    "ConfusionMatrix",
    "RegressionErrors",
    "ThresholdMetrics",
    "baseline_macro_f1",
    "java_double",
    "threshold_metrics",
]
