"""Mergeable, bounded-memory summaries: value counts in compiled tables
(`kernels.table_*`), quantiles in Apache DataSketches' KLL sketch.

Each class can be updated chunk by chunk, merged with another of its kind
(chunks summarised by different workers), and pickled (the KLL sketch is
carried in its own serialized form, since it does not pickle itself).
"""
from __future__ import annotations

import math

import datasketches as ds
import numpy as np
import pyarrow as pa

from treadle.data import kernels

KLL_K = 200  # normalized rank error about 1.3 %
GRID_BINS = 4096  # fine bins of an exact histogram (32 KB of counts)
EXACT_VALUE_LIMIT = 10000
SKETCH_ENTRIES = 1 << 15  # values kept once counting is approximate


class ValueCounter:
    """Counts of string values: exact until `limit` distinct values, heavy hitters after.

    The values live in a compiled table with its own copy of their bytes
    (`kernels.table_*`), so chunks add to it without making a Python string
    per value, and it stays the same table from chunk to chunk.

    Exact counting keeps the common cases (categories, binary classes, small
    vocabularies) exact, including the least frequent values. Past the limit
    the table keeps at most `SKETCH_ENTRIES` values: when it is full, every
    count is lowered by the median count and values left at zero are dropped
    (a Misra-Gries summary with batched decrements, like DataSketches'
    frequent-items sketch). A kept count is then a lower bound, at most
    `offset` (the sum of the decrements) below the true count, which is what
    top values report: for ID-like columns an upper estimate would credit
    every value with the whole offset. The distinct count comes from a
    hyperloglog of the hashes of values entering the table.
    """

    def __init__(self, limit: int = EXACT_VALUE_LIMIT):
        self.limit = limit
        self.total = 0
        self.offset = 0
        self.table = kernels.table_new(256)
        self.arena = np.empty(4096, dtype=np.uint8)
        self.meta = np.zeros(4, dtype=np.int64)
        self.registers: np.ndarray | None = None
        self._settle()

    @property
    def is_exact(self) -> bool:
        return self.registers is None

    @property
    def exact(self) -> dict[str, int] | None:
        if self.registers is not None:
            return None
        _, counts, starts, ends = self._entries()
        return dict(zip(kernels.spans_to_strings(starts, ends, self.arena), counts.tolist()))

    # -- adding ----------------------------------------------------------------

    def _registers(self) -> np.ndarray:
        return self.registers if self.registers is not None else _NO_REGISTERS

    def _start_sketching(self) -> None:
        self.registers = np.zeros(1 << kernels.HLL_P, dtype=np.uint8)
        kernels.hll_update(self.registers, self._entries()[0])

    def _settle(self) -> None:
        """Make room after a kernel stopped (or finished) and set where it stops next."""
        meta = self.meta
        entries = int(meta[kernels.M_ENTRIES])
        if self.registers is None and entries > self.limit:
            self._start_sketching()
        sketching = self.registers is not None
        cap = SKETCH_ENTRIES if sketching else self.limit + 1
        subtract = 0
        if sketching and entries >= cap:
            subtract = max(int(kernels.table_median(self.table)), 1)
            self.offset += subtract
        slots = want = len(self.table) // kernels.TABLE_WIDTH
        while want // 2 <= entries and want // 2 < cap:
            want *= 2
        used, need = int(meta[kernels.M_USED]), int(meta[kernels.M_NEED])
        size = len(self.arena)
        if used + need > size:
            size = max(2 * size, used + 2 * need)
        if subtract or want != slots or size != len(self.arena):
            self.table, self.arena, entries, used = kernels.table_rebuild(self.table, self.arena, want, size, subtract)
            meta[kernels.M_ENTRIES], meta[kernels.M_USED] = entries, used
        meta[kernels.M_NEED] = 0
        meta[kernels.M_STOP] = min(want // 2, cap)

    def update(self, values: list[str], counts: list[int]) -> None:
        offsets, data = kernels.buffers(pa.array(values, pa.string()))
        self.update_spans(offsets[:-1], offsets[1:], data, kernels.hash_values(offsets, data),
                          np.asarray(counts, dtype=np.int64))

    def update_spans(self, starts: np.ndarray, ends: np.ndarray, data: np.ndarray,
                     hashes: np.ndarray, counts: np.ndarray) -> None:
        """Add counts[i] to the value data[starts[i]:ends[i]], whose `kernels` hash is hashes[i]."""
        self.total += int(counts.sum())
        k = 0
        while True:
            k = kernels.table_add(starts, ends, data, hashes, counts, k, self.table, self.arena, self.meta,
                                  self._registers(), self.registers is not None)
            self._settle()
            if k >= len(starts):
                return

    def add_words(self, starts: np.ndarray, ends: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, int, int]:
        """Count the words of the plain-ASCII (`kernels.plain_ascii`) values data[starts[i]:ends[i]]:
        words per value and the shortest and longest word (0, 0 without words)."""
        n = len(starts)
        per_value = np.zeros(n, dtype=np.int64)
        lengths = np.array([np.iinfo(np.int64).max, 0], dtype=np.int64)
        cursor = np.zeros(3, dtype=np.int64)
        while True:
            i = kernels.table_add_words(starts, ends, data, cursor, per_value, lengths, self.table, self.arena,
                                        self.meta, self._registers(), self.registers is not None)
            self._settle()
            if i >= n:
                break
        self.total += int(per_value.sum())
        if lengths[1] == 0:
            return per_value, 0, 0
        return per_value, int(lengths[0]), int(lengths[1])

    def merge(self, other: ValueCounter) -> None:
        if other.registers is not None:
            if self.registers is None:
                self._start_sketching()
                self._settle()
            np.maximum(self.registers, other.registers, out=self.registers)
            self.offset += other.offset
        hashes, counts, starts, ends = other._entries()
        self.update_spans(starts, ends, other.arena, hashes, counts)
        self.total += other.total - int(counts.sum())

    # -- results ---------------------------------------------------------------

    def _entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        slots = self.table.reshape(-1, kernels.TABLE_WIDTH)
        live = slots[slots[:, 3] >= 0]
        return live[:, 0].view(np.uint64), live[:, 1].copy(), live[:, 2].copy(), live[:, 2] + live[:, 3]

    def distinct(self) -> int:
        if self.registers is None:
            return int(self.meta[kernels.M_ENTRIES])
        return int(round(kernels.hll_estimate(self.registers)))

    def _ranked(self, k: int, largest: bool) -> list[tuple[str, int]]:
        _, counts, starts, ends = self._entries()
        if not len(counts) or k <= 0:
            return []
        # Only values that can make the first k (ties included) become strings.
        key = -counts if largest else counts
        bound = np.partition(key, min(k, len(key)) - 1)[min(k, len(key)) - 1]
        pick = np.flatnonzero(key <= bound)
        names = kernels.spans_to_strings(starts[pick], ends[pick], self.arena)
        items = list(zip(names, counts[pick].tolist()))
        sign = -1 if largest else 1
        return sorted(items, key=lambda kv: (sign * kv[1], kv[0]))[:k]

    def top(self, k: int) -> list[tuple[str, int]]:
        """Most frequent values, count descending then value ascending (ties are stable)."""
        return self._ranked(k, True)

    def least(self, k: int) -> list[tuple[str, int]] | None:
        """Least frequent values; only known while counting is exact."""
        if self.registers is not None:
            return None
        return self._ranked(k, False)

    def count_of(self, value: str) -> int:
        """The value's count (a lower bound once counting is approximate)."""
        hashes, counts, starts, ends = self._entries()
        for i in np.flatnonzero(hashes == kernels.strings_hashes([value])[0]).tolist():
            if kernels.spans_to_strings(starts[i:i + 1], ends[i:i + 1], self.arena)[0] == value:
                return int(counts[i])
        return 0


_NO_REGISTERS = np.zeros(1, dtype=np.uint8)


class DistinctNumbers:
    """Distinct valid numbers: an exact sorted set up to `limit` values, then a
    hyperloglog of the values' hashes (`kernels.hll_update`)."""

    def __init__(self, limit: int = EXACT_VALUE_LIMIT):
        self.limit = limit
        self.exact: np.ndarray | None = np.empty(0)
        self.registers: np.ndarray | None = None

    @property
    def is_exact(self) -> bool:
        return self.exact is not None

    def update(self, values: np.ndarray, ordered: bool = False) -> None:
        """Add `values`; `ordered` says they are sorted already."""
        if not len(values):
            return
        values = values + 0.0  # -0.0 and 0.0 are one value
        if self.exact is not None:
            if ordered:
                # Distinct values of a sorted array without sorting it again.
                keep = np.empty(len(values), dtype=bool)
                keep[0] = True
                np.not_equal(values[1:], values[:-1], out=keep[1:])
                values = values[keep]
            self.exact = np.union1d(self.exact, values)
            if len(self.exact) > self.limit:
                self._to_sketch()
            return
        kernels.hll_update(self.registers, kernels.hash_numbers(values))

    def _to_sketch(self) -> None:
        self.registers = np.zeros(1 << kernels.HLL_P, dtype=np.uint8)
        kernels.hll_update(self.registers, kernels.hash_numbers(self.exact))
        self.exact = None

    def merge(self, other: DistinctNumbers) -> None:
        if other.exact is not None:
            self.update(other.exact)
            return
        if self.exact is not None:
            self._to_sketch()
        np.maximum(self.registers, other.registers, out=self.registers)

    def distinct(self) -> int:
        if self.exact is not None:
            return len(self.exact)
        return int(round(kernels.hll_estimate(self.registers)))


class BinGrid:
    """Exact counts of numbers in equal bins, with bounded memory.

    Bin k holds the values x with k * 2**exponent <= x < (k + 1) * 2**exponent,
    for at most `GRID_BINS` consecutive k. When values need more room the
    width doubles: pairs of bins merge, so every count stays exact. The
    scaling by a power of two is exact in floating point, and the exponent is
    never so small that a bin index passes 2**53, so index and comparison
    with a bin's edges always agree. Histograms of about N bins group whole
    bins (`histogram`), so theirs are exact too.
    """

    def __init__(self):
        self.exponent: int | None = None
        self.start = 0  # bin index of counts[0]
        self.counts = np.zeros(0, dtype=np.int64)

    def _index(self, value: float, exponent: int) -> int:
        return math.floor(math.ldexp(value, -exponent))

    def _fit(self, low: float, high: float, at_least: int | None = None) -> tuple[int, int]:
        """Widen the bins (to 2**at_least at least) until they hold [low, high]
        and what is counted already; the bin indices of low and high."""
        # Below this exponent |value| / 2**exponent could pass 2**53.
        finest = max(_binary_exponent(low), _binary_exponent(high), -1074 + 53) - 53
        exponent = max(e for e in (finest, self.exponent, at_least) if e is not None)
        while True:
            first, last = self._index(low, exponent), self._index(high, exponent)
            if len(self.counts):
                shift = exponent - self.exponent
                first = min(first, self.start >> shift)
                last = max(last, (self.start + len(self.counts) - 1) >> shift)
            if last - first < GRID_BINS:
                break
            exponent += 1
        self._regrid(exponent, first, last)
        return self._index(low, exponent), self._index(high, exponent)

    def _regrid(self, exponent: int, first: int, last: int) -> None:
        if (exponent, first, last) == (self.exponent, self.start, self.start + len(self.counts) - 1):
            return
        counts = np.zeros(last - first + 1, dtype=np.int64)
        if len(self.counts):
            moved = (self.start + np.arange(len(self.counts))) >> (exponent - self.exponent)
            np.add.at(counts, moved - first, self.counts)
        self.exponent, self.start, self.counts = exponent, first, counts

    def update(self, ordered: np.ndarray) -> None:
        """Count sorted values."""
        if not len(ordered):
            return
        first, last = self._fit(float(ordered[0]), float(ordered[-1]))
        edges = np.ldexp(np.arange(first + 1, last + 1, dtype=np.float64), self.exponent)
        below = np.searchsorted(ordered, edges, side="left")
        self.counts[first - self.start:last - self.start + 1] += np.diff(below, prepend=0, append=len(ordered))

    def merge(self, other: BinGrid) -> None:
        if not len(other.counts):
            return
        top = other.start + len(other.counts) - 1
        self._fit(math.ldexp(other.start, other.exponent), math.ldexp(top, other.exponent), other.exponent)
        moved = (other.start + np.arange(len(other.counts))) >> (self.exponent - other.exponent)
        np.add.at(self.counts, moved - self.start, other.counts)

    def histogram(self, bins: int) -> dict | None:
        """At most `bins` equal bins from the lowest to the highest value:
        each groups the same whole number of grid bins, as few as fit (of a
        whole width when the values look like integers)."""
        used = np.flatnonzero(self.counts)
        if not len(used):
            return None
        counts = self.counts[used[0]:used[-1] + 1]
        group = -(-len(counts) // bins)
        per_unit = 1 << -self.exponent if -62 < self.exponent < 0 else 0
        if per_unit and not ((self.start + used) % per_unit).any():
            # Every value lies in a bin that starts at an integer (integer
            # data, mostly): bins of a whole width, else they alternate
            # between holding one integer and two.
            group = -(-group // per_unit) * per_unit
        return {"start": math.ldexp(self.start + int(used[0]), self.exponent),
                "width": math.ldexp(group, self.exponent),
                "counts": np.add.reduceat(counts, np.arange(0, len(counts), group)).tolist()}


def _binary_exponent(value: float) -> int:
    """e with |value| < 2**e (zero has none: the smallest)."""
    return math.frexp(value)[1] if value else -1074


class NumericSummary:
    """Exact count/missing/invalid/min/max/mean/variance plus a KLL quantile sketch."""

    def __init__(self):
        self.count = 0
        self.missing = 0
        self.invalid = 0
        self.min = math.inf
        self.max = -math.inf
        self.sum = 0.0
        self.sum_sq = 0.0
        self.kll = ds.kll_doubles_sketch(KLL_K)
        self.grid = BinGrid()

    def update(self, values: np.ndarray, missing: int = 0, invalid: int = 0, ordered: bool = False) -> None:
        """Add valid `values`; `ordered` says they are sorted already."""
        self.missing += int(missing)
        self.invalid += int(invalid)
        if not len(values):
            return
        self.count += len(values)
        # No np.dot: it calls BLAS, whose idle threads then spin and took
        # about as much CPU as the whole ingest, competing with its workers.
        # Sorted input also makes the sketch's own sorting cheaper.
        ordered = values if ordered else np.sort(values)
        self.min = min(self.min, float(ordered[0]))
        self.max = max(self.max, float(ordered[-1]))
        total, squares = kernels.sum_and_squares(values)
        self.sum += total
        self.sum_sq += squares
        self.kll.update(ordered)
        self.grid.update(ordered)

    def merge(self, other: NumericSummary) -> None:
        self.count += other.count
        self.missing += other.missing
        self.invalid += other.invalid
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.sum += other.sum
        self.sum_sq += other.sum_sq
        self.kll.merge(other.kll)
        self.grid.merge(other.grid)

    def result(self, bins: int = 20, exact_bins: tuple[int, ...] = ()) -> dict:
        """`exact_bins`: the bin counts of the exact histograms (`BinGrid.histogram`) to add."""
        out = {"count": self.count, "missing": self.missing, "invalid": self.invalid}
        if not self.count:
            return out | {"min": None, "max": None, "mean": None, "stddev": None, "median": None,
                          "quantiles": {}, "histogram": [], "histograms": {}}
        mean = self.sum / self.count
        variance = max(self.sum_sq / self.count - mean * mean, 0.0)
        levels = [i / 10 for i in range(1, 10)]
        quantiles = self.kll.get_quantiles(levels)
        return out | {
            "min": self.min,
            "max": self.max,
            "mean": mean,
            "stddev": math.sqrt(variance),
            "median": float(self.kll.get_quantile(0.5)),
            "quantiles": {f"{level:.1f}": float(q) for level, q in zip(levels, quantiles)},
            "quantile_rank_error": self.kll.normalized_rank_error(False),
            "histogram": self.histogram(bins),
            "histograms": {str(n): self.grid.histogram(n) for n in exact_bins},
        }

    def histogram(self, bins: int) -> list[dict]:
        """Equal-width bins from min to max; counts come from the sketch, so are approximate."""
        if self.min == self.max:
            return [{"lower": self.min, "upper": self.max, "count": self.count}]
        edges = np.linspace(self.min, self.max, bins + 1)
        # pmf() puts values equal to a split point in the bin above it, so
        # the last split point is nudged up to keep max inside the last bin.
        splits = list(edges[1:-1]) + [np.nextafter(self.max, math.inf)]
        mass = self.kll.get_pmf(splits)[:bins]
        counts = np.round(np.asarray(mass) * self.count).astype(np.int64)
        return [{"lower": float(edges[i]), "upper": float(edges[i + 1]), "count": int(counts[i])}
                for i in range(bins)]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["kll"] = self.kll.serialize()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.kll = ds.kll_doubles_sketch.deserialize(self.kll)
