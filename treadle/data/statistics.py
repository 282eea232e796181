"""Datasource statistics (docs/behaviour.md, "Datasource statistics") in one
streaming, mergeable pass.

Exact: record counts, missing/invalid counts, min, max, mean, stddev,
`histograms` (at most N equal bins for each N in `HISTOGRAM_LEVELS`, from
`sketches.BinGrid`), binary class counts, word totals and ranges, and --
while an attribute has at most `sketches.EXACT_VALUE_LIMIT` distinct values --
value counts, distinct counts, most and least frequent values. Approximate:
quantiles, median and the counts of `histogram` (KLL sketch, rank error in
`quantile_rank_error`), value counts and
distinct counts of high-cardinality attributes (heavy-hitter table and
hyperloglog, `sketches.ValueCounter`, flagged with `"exact": false`), and correlation to the target
(mutual information over bounded buckets, see `mutual_info`).

With a target, each NUMERIC input also gets `"distinct"` (valid values;
exact up to `sketches.EXACT_VALUE_LIMIT`, then a hyperloglog estimate) and
`"binned_mutual_information"`: plug-in MI in nats between the target and
equal-frequency binning into N bins, for N in `mutual_info.BIN_LEVELS`, keyed
by str(N) -- what the suggested recipe chooses its bin counts from. Target
levels are the BINARY classes, the CATEGORICAL values (the first
`TARGET_CLASSES`, then one "other"), or for a NUMERIC target the
`mutual_info.TARGET_BINS` (10) equal-frequency bins of the first chunk.
The fine binning behind it is approximate; see `mutual_info`.

Parallel use: feed one builder the first chunk, then `fork()` it for each
worker so that all share the numeric bin layout, and `merge` the results.
Workers can split either the chunks (forks of all attributes, merged) or the
attributes (forks of a few attributes each, fed every chunk, then `join`ed).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from treadle.data import cells, kernels
from treadle.data import mutual_info as mi
from treadle.data.records import RecordChunk
from treadle.data.schema import DataSchema
from treadle.data.sketches import DistinctNumbers, NumericSummary, ValueCounter

TOP_VALUES = 10
TARGET_CLASSES = 100
HISTOGRAM_BINS = 20
# The console's histograms: exact counts in at most this many equal bins.
HISTOGRAM_LEVELS = (500, 200, 100, 50, 20)
TARGET_KEY = "\x00target"
GRID_KEY = "\x00grid:"


@dataclass
class BinarySummary:
    true: int = 0
    false: int = 0
    missing: int = 0
    invalid: int = 0

    def merge(self, other: BinarySummary) -> None:
        self.true += other.true
        self.false += other.false
        self.missing += other.missing
        self.invalid += other.invalid

    def result(self) -> dict:
        valid = self.true + self.false
        counts = sorted([("1", self.true), ("0", self.false)], key=lambda kv: (-kv[1], kv[0]))
        present = [kv for kv in counts if kv[1]]
        return {
            "count": valid, "missing": self.missing, "invalid": self.invalid,
            "true": self.true, "false": self.false,
            "percent_true": (100.0 * self.true / valid) if valid else None,
            "distinct": len(present),
            "value_counts": [{"value": v, "count": c} for v, c in counts],
            "most_frequent": _value(present[0]) if present else None,
            "least_frequent": _value(present[-1]) if present else None,
        }


@dataclass
class TextSummary:
    records: int = 0
    empty: int = 0
    total_words: int = 0
    min_words: int | None = None
    max_words: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    words: ValueCounter = field(default_factory=ValueCounter)

    def merge(self, other: TextSummary) -> None:
        self.records += other.records
        self.empty += other.empty
        self.total_words += other.total_words
        self.min_words = _opt(min, self.min_words, other.min_words)
        self.max_words = _opt(max, self.max_words, other.max_words)
        self.min_length = _opt(min, self.min_length, other.min_length)
        self.max_length = _opt(max, self.max_length, other.max_length)
        self.words.merge(other.words)

    def result(self) -> dict:
        top = self.words.top(TOP_VALUES)
        return {
            "count": self.records, "empty": self.empty,
            "total_words": self.total_words,
            "unique_words": self.words.distinct(), "exact": self.words.is_exact,
            "words_per_record": {
                "min": self.min_words, "max": self.max_words,
                "mean": (self.total_words / self.records) if self.records else None,
            },
            "word_length": {"min": self.min_length, "max": self.max_length},
            # Ranked by frequency; Amazon ranked by correlation to the target.
            "prominent_words": [
                {"word": w, "count": c, "percent": 100.0 * c / self.total_words} for w, c in top
            ],
        }


def _opt(fn, a, b):
    if a is None:
        return b
    if b is None:
        return a
    return fn(a, b)


def _value(kv) -> dict:
    return {"value": kv[0], "count": int(kv[1])}


def _categorical_result(counter: ValueCounter) -> dict:
    top = counter.top(TOP_VALUES)
    least = counter.least(1)
    return {
        "count": counter.total,
        "distinct": counter.distinct(),
        "exact": counter.is_exact,
        "top_values": [_value(kv) for kv in top],
        "other_count": counter.total - sum(c for _, c in top),
        "most_frequent": _value(top[0]) if top else None,
        "least_frequent": _value(least[0]) if least else None,
    }


def _bin_counts(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of sorted values per bin, bins split at `edges` (as searchsorted(side="right"))."""
    return np.diff(np.searchsorted(ordered, edges, side="left"), prepend=0, append=len(ordered))


def _sorted_by_code(values: np.ndarray, codes: np.ndarray, ordered: np.ndarray,
                    n: int) -> tuple[int, dict[int, np.ndarray]] | None:
    """The values of each target code but the most frequent one, sorted, and that code.

    Sorting and then placing bin edges among the sorted values costs a
    fraction of a binary search per value, which waits on memory at every
    step. When `values` are all of `ordered` (every valid value has a valid
    target), the most frequent code's bin counts are the rest of `ordered`'s,
    so only the other codes' values are sorted. None otherwise, or for more
    than 8 codes.
    """
    if len(values) != len(ordered):
        return None
    sizes = np.bincount(codes, minlength=n)
    present = np.flatnonzero(sizes)
    if len(present) > 8:
        return None
    biggest = int(present[np.argmax(sizes[present])])
    return biggest, {code: np.sort(values[codes == code]) for code in present.tolist() if code != biggest}


def _bin_counts_by_code(split, ordered: np.ndarray, edges: np.ndarray, n: int) -> np.ndarray:
    """`_bin_counts` per target code (a column each) from `_sorted_by_code`'s result."""
    biggest, groups = split
    out = np.zeros((len(edges) + 1, n), dtype=np.int64)
    out[:, biggest] = _bin_counts(ordered, edges)
    for code, group in groups.items():
        out[:, code] = _bin_counts(group, edges)
        out[:, biggest] -= out[:, code]
    return out


def _joint_counts(split, ordered: np.ndarray, edges: np.ndarray, valid: np.ndarray, t_codes: np.ndarray,
                  n: int) -> np.ndarray:
    """Counts per (`mi.numeric_codes` bucket, target code) from values sorted by target code."""
    joint = np.zeros((len(edges) + 2, n), dtype=np.int64)
    joint[:-1] = _bin_counts_by_code(split, ordered, edges, n)
    if not valid.all():
        joint[-1] = np.bincount(t_codes[~valid], minlength=n)
    return joint


def _encode(column: pa.Array) -> tuple[np.ndarray, list[str]]:
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


@dataclass
class _Distinct:
    """A string column's distinct values: a code per record, then hash and count per value."""

    codes: np.ndarray
    hashes: np.ndarray
    counts: np.ndarray
    starts: np.ndarray  # each value's first occurrence, data[starts[k]:ends[k]]
    ends: np.ndarray
    data: np.ndarray


def _distinct(chunk: RecordChunk, name: str, expect: int = 64) -> _Distinct:
    starts, ends, data = chunk.value_spans(name)
    codes, hashes, counts, first = kernels.distinct(starts, ends, data, expect)
    return _Distinct(codes, hashes, counts, starts[first], ends[first], data)


class StatisticsBuilder:
    def __init__(self, schema: DataSchema, layout: dict[str, np.ndarray] | None = None,
                 attributes: frozenset[str] | None = None):
        self.schema = schema
        # The attributes this builder updates; the others stay empty.
        self.owned = frozenset(schema.names) if attributes is None else frozenset(attributes)
        self.layout: dict[str, np.ndarray] = dict(layout or {})
        self.records = 0
        self.summaries: dict[str, object] = {}
        for name, kind in schema.attributes:
            self.summaries[name] = {
                "NUMERIC": NumericSummary, "BINARY": BinarySummary,
                "CATEGORICAL": ValueCounter, "TEXT": TextSummary,
            }[kind]()
        self.target = schema.target
        self.joint: dict[str, mi.Contingency] = {
            name: mi.Contingency() for name in schema.names if self.target and name != self.target
        }
        # Binned MI for the suggested recipe: grid counts per target level.
        self.distinct_numbers: dict[str, DistinctNumbers] = {
            name: DistinctNumbers() for name in self.joint if schema.type_of(name) == "NUMERIC"}
        self.binned: dict[str, np.ndarray] = {}
        self.expect: dict[str, int] = {}  # distinct values per CATEGORICAL attribute in the last chunk
        self.levels: dict = {}  # target level label -> column of the binned tables

    def fork(self, attributes: frozenset[str] | None = None) -> StatisticsBuilder:
        """An empty builder with this one's bin layout, for a parallel worker; with
        `attributes`, one that updates only those."""
        return StatisticsBuilder(self.schema, self.layout, attributes)

    # -- updating ------------------------------------------------------------

    def update(self, chunk: RecordChunk) -> None:
        n = len(chunk)
        if not n:
            return
        self.records += n
        word_counts: dict[str, np.ndarray] = {}
        categories: dict[str, _Distinct] = {}
        ordered_values: dict[str, np.ndarray] = {}
        for name, kind in self.schema.attributes:
            if name not in self.owned:
                continue
            summary = self.summaries[name]
            if kind == "NUMERIC":
                column = chunk.typed(name)
                values = column.values[column.valid]
                # Sorted once for the sketch, the range and the distinct values.
                ordered = ordered_values[name] = np.sort(values)
                summary.update(ordered, column.missing.sum(), column.invalid.sum(), ordered=True)
                if name in self.distinct_numbers:
                    self.distinct_numbers[name].update(ordered, ordered=True)
            elif kind == "BINARY":
                column = chunk.typed(name)
                ones = int(np.count_nonzero(column.values == 1.0))
                zeros = int(np.count_nonzero(column.values == 0.0))
                summary.merge(BinarySummary(ones, zeros, int(column.missing.sum()), int(column.invalid.sum())))
            elif kind == "CATEGORICAL":
                table = self.joint.get(name)
                if table is not None and table.full:
                    # Neither the counter nor the full correlation table needs
                    # the chunk's distinct values: each record is added by hash.
                    starts, ends, data = chunk.value_spans(name)
                    hashes = categories[name] = kernels.hash_spans(starts, ends, data)
                    summary.update_spans(starts, ends, data, hashes, np.ones(len(hashes), dtype=np.int64))
                    continue
                # Sized for the last chunk's distinct values, an ID column's
                # table does not rehash its way up from a few slots each time.
                found = categories[name] = _distinct(chunk, name, self.expect.get(name, 64))
                self.expect[name] = len(found.counts)
                summary.update_spans(found.starts, found.ends, found.data, found.hashes, found.counts)
            else:
                word_counts[name] = self._update_text(summary, chunk, name)
        if self.target and not self.owned.isdisjoint(self.joint):
            self._update_joint(chunk, word_counts, categories, ordered_values)

    def _update_text(self, summary: TextSummary, chunk: RecordChunk, name: str) -> np.ndarray:
        starts, ends, data, plain = chunk.spans(name)
        if not plain:
            return self._update_text_unicode(summary, chunk, name)
        counts, shortest, longest = summary.words.add_words(starts, ends, data)
        summary.records += len(counts)
        summary.empty += int(np.count_nonzero(counts == 0))
        summary.total_words += int(counts.sum())
        summary.min_words = _opt(min, summary.min_words, int(counts.min()))
        summary.max_words = _opt(max, summary.max_words, int(counts.max()))
        if longest:
            summary.min_length = _opt(min, summary.min_length, shortest)
            summary.max_length = _opt(max, summary.max_length, longest)
        return counts

    def _update_text_unicode(self, summary: TextSummary, chunk: RecordChunk, name: str) -> np.ndarray:
        tokens = chunk.tokens(name)
        counts = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
        summary.records += len(counts)
        summary.empty += int(np.count_nonzero(counts == 0))
        summary.total_words += int(counts.sum())
        summary.min_words = _opt(min, summary.min_words, int(counts.min()))
        summary.max_words = _opt(max, summary.max_words, int(counts.max()))
        words = pc.list_flatten(tokens)
        if len(words):
            lengths = pc.min_max(pc.utf8_length(words)).as_py()
            summary.min_length = _opt(min, summary.min_length, lengths["min"])
            summary.max_length = _opt(max, summary.max_length, lengths["max"])
            counted = pc.value_counts(words)
            summary.words.update(counted.field("values").to_pylist(), counted.field("counts").to_pylist())
        return counts

    def _edges(self, key: str, values: np.ndarray, bins: int) -> np.ndarray | None:
        if key not in self.layout:
            if not len(values):
                return None
            self.layout[key] = mi.quantile_edges(values, bins)
        return self.layout[key]

    def _target_codes(self, chunk: RecordChunk):
        kind = self.schema.type_of(self.target)
        if kind == "NUMERIC":
            column = chunk.typed(self.target)
            edges = self.layout.get(TARGET_KEY)
            if edges is None:
                edges = self._edges(TARGET_KEY, column.values[column.valid], mi.TARGET_BINS)
            if edges is None:
                return None
            codes = np.searchsorted(edges, column.values, side="right")
            return codes, list(range(len(edges) + 1)), column.valid
        if kind == "BINARY":
            column = chunk.typed(self.target)
            codes = np.where(column.valid, column.values, 0).astype(np.int64)
            return codes, ["0", "1"], column.valid
        values = cells.trim(chunk.column(self.target))
        codes, labels = _encode(values)
        valid = pc.binary_length(values).to_numpy(zero_copy_only=False) > 0
        return codes, labels, valid

    def _update_joint(self, chunk: RecordChunk, word_counts: dict[str, np.ndarray],
                      categories: dict[str, _Distinct], ordered_values: dict[str, np.ndarray]) -> None:
        target = self._target_codes(chunk)
        if target is None:
            return
        t_codes, t_labels, t_valid = target
        if not t_valid.any():
            return
        # Records without a valid target are left out; usually there are none.
        every = bool(t_valid.all())
        pick = (lambda a: a) if every else (lambda a: a[t_valid])
        t_codes = pick(t_codes)
        # Only labels that occur take a level, so that an empty (invalid)
        # target label does not use up one of the TARGET_CLASSES levels.
        level_of = np.zeros(len(t_labels), dtype=np.int64)
        for code in np.unique(t_codes).tolist():
            level_of[code] = self._level(t_labels[code])
        for name, table in self.joint.items():
            if name not in self.owned:
                continue
            kind = self.schema.type_of(name)
            if kind == "NUMERIC":
                column = chunk.typed(name)
                edges = self.layout.get(name)
                if edges is None:
                    edges = self._edges(name, column.values[column.valid], mi.NUMERIC_BINS)
                if edges is None:
                    edges = np.empty(0)
                ordered = ordered_values[name]
                split = self._update_binned(name, column, pick, t_codes, level_of, ordered)
                if split is not None:
                    table.add_counts(_joint_counts(split, ordered, edges, pick(column.valid), t_codes, len(t_labels)),
                                     mi.numeric_labels(edges), t_labels)
                    continue
                codes, labels = mi.numeric_codes(column.values, column.valid, edges)
            elif kind == "BINARY":
                column = chunk.typed(name)
                codes = np.where(column.valid, column.values, 2).astype(np.int64)
                labels = [0, 1, mi.MISSING]
            elif kind == "CATEGORICAL":
                # Rows are keyed by the value's hash, so no strings are made.
                found = categories.get(name)
                if isinstance(found, np.ndarray):
                    table.add_keys(pick(found), t_codes, t_labels)
                    continue
                found = found or _distinct(chunk, name)
                codes, labels = found.codes, found.hashes
            else:
                codes, labels = mi.word_count_codes(word_counts[name])
            table.add(pick(codes), labels, t_codes, t_labels)

    def _level(self, label) -> int:
        found = self.levels.get(label)
        if found is None:
            if len(self.levels) >= TARGET_CLASSES and label != mi.OTHER:
                return self._level(mi.OTHER)
            found = self.levels[label] = len(self.levels)
        return found

    def _binned_table(self, name: str, rows: int) -> np.ndarray:
        table = self.binned.get(name)
        if table is None or table.shape[1] < len(self.levels):
            grown = np.zeros((rows, len(self.levels)), dtype=np.int64)
            if table is not None:
                grown[:, :table.shape[1]] = table
            self.binned[name] = table = grown
        return table

    def _update_binned(self, name: str, column, pick, t_codes: np.ndarray, level_of: np.ndarray,
                       ordered: np.ndarray) -> tuple[int, dict[int, np.ndarray]] | None:
        """Grid counts per target level. `pick` keeps the records with a valid target
        (`t_codes` are theirs, `level_of` their levels), `ordered` is the chunk's valid
        values, sorted. Returns the values sorted by target code (`_sorted_by_code`)
        when it made them."""
        keep = pick(column.valid)
        values = pick(column.values)[keep]
        if not len(values):
            return None
        key = GRID_KEY + name
        if key not in self.layout:
            self.layout[key] = mi.grid_edges(values)
        edges = self.layout[key]
        table = self._binned_table(name, len(edges) + 1)
        codes = t_codes[keep]
        split = _sorted_by_code(values, codes, ordered, len(level_of))
        if split is not None:
            by_code = _bin_counts_by_code(split, ordered, edges, len(level_of))
            for code in [split[0], *split[1]]:
                table[:, level_of[code]] += by_code[:, code]
            return split
        levels = level_of[codes]
        present = np.flatnonzero(np.bincount(levels, minlength=len(self.levels)))
        if len(present) > 8:
            np.add.at(table, (np.searchsorted(edges, values, side="right"), levels), 1)
            return None
        for level in present.tolist():
            table[:, level] += _bin_counts(np.sort(values[levels == level] if len(present) > 1 else values), edges)
        return None

    def _binned_mutual_information(self, name: str) -> dict:
        table = self.binned.get(name)
        if table is None:
            return {}
        found = mi.mutual_information_by_level(mi.fine_table(table), mi.BIN_LEVELS)
        return {str(level): found[level] for level in mi.BIN_LEVELS if level in found}

    # -- merging and results --------------------------------------------------

    def merge(self, other: StatisticsBuilder) -> None:
        for key, edges in other.layout.items():
            mine = self.layout.get(key)
            if mine is None:
                self.layout[key] = edges
            elif not np.array_equal(mine, edges):
                raise ValueError(
                    "statistics built with different bin layouts cannot be merged; "
                    "create parallel builders with fork() after the first chunk")
        self.records += other.records
        for name, summary in self.summaries.items():
            summary.merge(other.summaries[name])
        for name, table in self.joint.items():
            table.merge(other.joint[name])
        for name, distinct in self.distinct_numbers.items():
            distinct.merge(other.distinct_numbers[name])
        self._add_binned(other, other.binned)

    def join(self, other: StatisticsBuilder) -> None:
        """Take over the attributes `other` updated, from the same records as this builder's
        (forks of one builder for different attributes, fed the same chunks)."""
        if not self.owned.isdisjoint(other.owned):
            raise ValueError("only builders of different attributes can be joined")
        for key, edges in other.layout.items():
            self.layout.setdefault(key, edges)
        for name in other.owned:
            self.summaries[name] = other.summaries[name]
            if name in self.joint:
                self.joint[name] = other.joint[name]
            if name in self.distinct_numbers:
                self.distinct_numbers[name] = other.distinct_numbers[name]
        self._add_binned(other, [name for name in other.binned if name in other.owned])
        self.owned |= other.owned

    def _add_binned(self, other: StatisticsBuilder, names) -> None:
        # Target levels are numbered in the order each builder met them.
        by_column = sorted(other.levels.items(), key=lambda kv: kv[1])
        columns = [self._level(label) for label, _ in by_column]
        for name in names:
            theirs = other.binned[name]
            mine = self._binned_table(name, theirs.shape[0])
            for j in range(theirs.shape[1]):
                mine[:, columns[j]] += theirs[:, j]

    def result(self) -> dict:
        attributes = []
        for name, kind in self.schema.attributes:
            summary = self.summaries[name]
            if kind == "NUMERIC":
                body = summary.result(HISTOGRAM_BINS, HISTOGRAM_LEVELS)
            elif kind == "CATEGORICAL":
                body = _categorical_result(summary)
            else:
                body = summary.result()
            entry = {"name": name, "type": kind, **body}
            if name in self.joint:
                entry["correlation_to_target"] = self.joint[name].mutual_information()
            if name in self.distinct_numbers:
                entry["distinct"] = self.distinct_numbers[name].distinct()
                entry["binned_mutual_information"] = self._binned_mutual_information(name)
            if name == self.schema.row_id:
                entry["row_id"] = True
            if name in self.schema.excluded:
                entry["excluded"] = True
            attributes.append(entry)
        return {
            "records": self.records,
            "target": self._target_result(),
            "attributes": attributes,
        }

    def _target_result(self) -> dict | None:
        if not self.target:
            return None
        kind = self.schema.type_of(self.target)
        summary = self.summaries[self.target]
        if kind == "NUMERIC":
            return {"name": self.target, "type": kind, "summary": summary.result(HISTOGRAM_BINS, HISTOGRAM_LEVELS)}
        if kind == "BINARY":
            classes = [("0", summary.false), ("1", summary.true)]
            missing = summary.missing + summary.invalid
        else:
            classes = summary.top(TARGET_CLASSES)
            missing = summary.count_of("") if summary.is_exact else 0
        return {
            "name": self.target, "type": kind,
            "distribution": [{"value": v, "count": int(c)} for v, c in classes],
            "missing_or_invalid": missing,
        }
