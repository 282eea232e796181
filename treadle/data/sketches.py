"""Mergeable, bounded-memory summaries built on Apache DataSketches.

Each class can be updated chunk by chunk, merged with another of its kind
(chunks summarised by different Dask workers), and pickled (the sketches are
carried in their own serialized form, since they do not pickle themselves).
"""
from __future__ import annotations

import math

from collections.abc import Callable

import datasketches as ds
import numpy as np

from treadle.data import kernels

KLL_K = 200  # normalized rank error about 1.3 %
FREQ_LG_MAX_K = 12  # up to 3072 tracked items
EXACT_VALUE_LIMIT = 10000
# Per update, only this many of the update's most frequent values reach the
# frequent-items sketch. Feeding every value of a high-cardinality column
# costs a Python call each; skipping the tail undercounts a value by at most
# the FEED-th largest count of each update it was skipped in (1 per chunk for
# ID-like columns), which is below the sketch's own error bound.
FEED = 4096


class ValueCounter:
    """Counts of string values: exact until `limit` distinct values, sketched after.

    Exact counting keeps the common cases (categories, binary classes, small
    vocabularies) exact, including the least frequent values. Past the limit
    the exact table is replayed into a frequent-items sketch (top values with
    error bounds) and a hyperloglog of the values' hashes (distinct count,
    `kernels.hll_update`), and dropped.
    """

    def __init__(self, limit: int = EXACT_VALUE_LIMIT):
        self.limit = limit
        self.total = 0
        self.exact: dict[str, int] | None = {}
        self.frequent: ds.frequent_strings_sketch | None = None
        self.registers: np.ndarray | None = None

    @property
    def is_exact(self) -> bool:
        return self.exact is not None

    def update(self, values: list[str], counts: list[int]) -> None:
        hashes = kernels.strings_hashes(values) if self.exact is None else None
        self.update_distinct(hashes, np.asarray(counts, dtype=np.int64), lambda idx: [values[i] for i in idx])

    def update_distinct(self, hashes: np.ndarray | None, counts: np.ndarray,
                        labels: Callable[[np.ndarray], list[str]]) -> None:
        """Count distinct values given by hash (`kernels` hashing) and count.

        `labels(indices)` returns the strings of the values at those indices;
        it is only asked for what is needed, since making Python strings is
        what costs most for high-cardinality columns. `hashes` may be None
        while counting is exact.
        """
        self.total += int(counts.sum())
        if self.exact is not None:
            exact = self.exact
            for value, count in zip(labels(np.arange(len(counts))), counts.tolist()):
                exact[value] = exact.get(value, 0) + count
            if len(exact) > self.limit:
                self._to_sketches()
            return
        if hashes is None:
            hashes = kernels.strings_hashes(labels(np.arange(len(counts))))
        kernels.hll_update(self.registers, hashes)
        if len(counts) > FEED:
            order = np.argpartition(-counts, FEED - 1)[:FEED]
            order.sort()
        else:
            order = np.arange(len(counts))
        update_frequent = self.frequent.update
        for value, count in zip(labels(order), counts[order].tolist()):
            update_frequent(value, count)

    def _to_sketches(self) -> None:
        self.frequent = ds.frequent_strings_sketch(FREQ_LG_MAX_K)
        self.registers = np.zeros(1 << kernels.HLL_P, dtype=np.uint8)
        self._replay(self.exact)
        self.exact = None

    def _replay(self, exact: dict[str, int]) -> None:
        for value, count in exact.items():
            self.frequent.update(value, count)
        if exact:
            kernels.hll_update(self.registers, kernels.strings_hashes(list(exact)))

    def merge(self, other: ValueCounter) -> None:
        self.total += other.total
        if self.exact is not None and other.exact is not None:
            for value, count in other.exact.items():
                self.exact[value] = self.exact.get(value, 0) + count
            if len(self.exact) > self.limit:
                self._to_sketches()
            return
        if self.exact is not None:
            self._to_sketches()
        if other.exact is not None:
            self._replay(other.exact)
            return
        self.frequent.merge(other.frequent)
        np.maximum(self.registers, other.registers, out=self.registers)

    def distinct(self) -> int:
        if self.exact is not None:
            return len(self.exact)
        return int(round(kernels.hll_estimate(self.registers)))

    def top(self, k: int) -> list[tuple[str, int]]:
        """Most frequent values, count descending then value ascending (ties are stable)."""
        if self.exact is not None:
            items = self.exact.items()
        else:
            found = self.frequent.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
            items = [(item[0], item[1]) for item in found]
        return sorted(items, key=lambda kv: (-kv[1], kv[0]))[:k]

    def least(self, k: int) -> list[tuple[str, int]] | None:
        """Least frequent values; only known while counting is exact."""
        if self.exact is None:
            return None
        return sorted(self.exact.items(), key=lambda kv: (kv[1], kv[0]))[:k]

    def __getstate__(self):
        state = self.__dict__.copy()
        if self.frequent is not None:
            state["frequent"] = self.frequent.serialize()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if isinstance(self.frequent, bytes):
            self.frequent = ds.frequent_strings_sketch.deserialize(self.frequent)

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

    def update(self, values: np.ndarray) -> None:
        if not len(values):
            return
        values = values + 0.0  # -0.0 and 0.0 are one value
        if self.exact is not None:
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

    def update(self, values: np.ndarray, missing: int = 0, invalid: int = 0) -> None:
        self.missing += int(missing)
        self.invalid += int(invalid)
        if not len(values):
            return
        self.count += len(values)
        # No np.dot: it calls BLAS, whose idle threads then spin and took
        # about as much CPU as the whole ingest, competing with its workers.
        # Sorted input also makes the sketch's own sorting cheaper.
        ordered = np.sort(values)
        self.min = min(self.min, float(ordered[0]))
        self.max = max(self.max, float(ordered[-1]))
        total, squares = kernels.sum_and_squares(values)
        self.sum += total
        self.sum_sq += squares
        self.kll.update(ordered)

    def merge(self, other: NumericSummary) -> None:
        self.count += other.count
        self.missing += other.missing
        self.invalid += other.invalid
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.sum += other.sum
        self.sum_sq += other.sum_sq
        self.kll.merge(other.kll)

    def result(self, bins: int = 20) -> dict:
        out = {"count": self.count, "missing": self.missing, "invalid": self.invalid}
        if not self.count:
            return out | {"min": None, "max": None, "mean": None, "stddev": None, "median": None,
                          "quantiles": {}, "histogram": []}
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
