"""Attribute-to-target correlation as mutual information, in bounded memory.

Both sides are reduced to a bounded set of buckets and a joint count table is
kept per attribute; MI is computed from that table. The approximation:

* CATEGORICAL values keep their own bucket for the first `CATEGORY_BUCKETS`
  distinct values seen; later new values share one "other" bucket. Exact for
  attributes with at most that many values.
* NUMERIC values fall into quantile bins whose edges are fixed from the first
  chunk that has values (`Layout`); missing and invalid values get a bucket of
  their own, because missingness itself can predict the target.
* BINARY values are 0 / 1 / missing-or-invalid.
* TEXT is represented by its word count, in power-of-two buckets
  (0, 1, 2-3, 4-7, ...), a deliberately simple stand-in for the text itself.
* The target is bucketed the same way (numeric targets into
  `TARGET_BINS` quantile bins); records without a valid target are skipped.

Tables merge by bucket label; numeric edges must be the same on both sides,
which `Layout` sharing (see `StatisticsBuilder.fork`) guarantees.

Binned MI for the suggested recipe (`binned_mutual_information`) needs
`FINE_BINS` equal-frequency bins over the *whole* data, which one streaming
pass cannot place exactly. Each NUMERIC attribute instead counts valid values
per target level on a provisional grid (`grid_edges`): `GRID_BINS`
equal-frequency bins of the first chunk with values, plus `OVERFLOW_BINS`
geometrically widening bins on each side for values outside the first
chunk's range, plus one open bin each way. At the end the grid's own
cumulative counts, which are exact at grid edges, group grid bins into
`FINE_BINS` rows by the rank of each bin's middle (`fine_table`). A row
boundary can be off by at most one grid bin's records: about 1/4096 of the
data when later chunks look like the first, more where they do not (a sorted
column puts most values in the coarser overflow bins). Ties are never split,
as quantile binning would not split them either. Missing and invalid values
are left out.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from treadle.data import kernels

CATEGORY_BUCKETS = 256
NUMERIC_BINS = 20
TARGET_BINS = 10
GRID_BINS = 4096
OVERFLOW_BINS = 512  # per side
OVERFLOW_PER_DOUBLING = 32  # so the overflow reaches 2**16 times the first chunk's range
FINE_BINS = 500
# The bin counts the suggested recipe chooses from (docs/behaviour.md, "Recipes").
BIN_LEVELS = (10, 20, 50, 100, 200, 500)
OTHER = "\x00other"
MISSING = "\x00missing"


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    if not len(values):
        return np.empty(0)
    inner = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(inner)


def grid_edges(values: np.ndarray) -> np.ndarray:
    """Provisional grid edges for `fine_table` (see the module docstring)."""
    core = np.unique(np.quantile(values, np.linspace(0.0, 1.0, GRID_BINS + 1)))
    lo, hi = float(core[0]), float(core[-1])
    width = hi - lo
    if not width > 0:
        # A constant first chunk says nothing about spread; a relative step
        # still separates nearby values.
        width = max(abs(lo), 1.0) * 1e-3
    steps = width * (np.exp2(np.arange(1, OVERFLOW_BINS + 1) / OVERFLOW_PER_DOUBLING) - 1.0)
    edges = np.unique(np.concatenate([lo - steps[::-1], core, hi + steps]))
    return edges[np.isfinite(edges)]


def fine_table(grid: np.ndarray, fine: int = FINE_BINS) -> np.ndarray:
    """Group grid rows into `fine` rows of about equal count, in order.

    A grid row goes to the fine row that holds the rank of its middle record,
    so fine rows stand for rank ranges and merging consecutive fine rows
    approximates equal-frequency binning at any coarser level.
    """
    sizes = grid.sum(axis=1)
    total = sizes.sum()
    out = np.zeros((fine, grid.shape[1]), dtype=np.int64)
    if total == 0:
        return out
    middle = np.cumsum(sizes) - sizes / 2.0
    rows = np.minimum((middle * fine / total).astype(np.int64), fine - 1)
    used = sizes > 0
    np.add.at(out, rows[used], grid[used])
    return out


def numeric_codes(values: np.ndarray, valid: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, list]:
    """Local codes and their labels: bin index for valid values, MISSING otherwise."""
    if len(edges) <= 64:
        codes = kernels.count_at_most(values, edges)
    else:
        codes = np.searchsorted(edges, values, side="right")
    codes[~valid] = len(edges) + 1
    return codes, numeric_labels(edges)


def numeric_labels(edges: np.ndarray) -> list:
    return list(range(len(edges) + 1)) + [MISSING]


def word_count_codes(counts: np.ndarray) -> tuple[np.ndarray, list]:
    # floor(log2(c)) + 1 for c > 0 and 0 for 0 is frexp's exponent, in one pass.
    codes = np.frexp(counts)[1].astype(np.int64)
    top = int(codes.max()) + 1 if len(codes) else 1
    return codes, list(range(top))


def mutual_information_by_level(table: np.ndarray, levels: Sequence[int] = BIN_LEVELS) -> dict[int, float]:
    """Plug-in MI for each N, from counts ``table[fine_bin, target_level]``
    over F equal-frequency fine bins (F >= max level, e.g. 500): fine bins are
    merged into N consecutive groups, which approximates quantile_bin(x, N)."""
    table = np.asarray(table, dtype=np.float64)
    fine = table.shape[0]
    out = {}
    for level in levels:
        if level > fine:
            continue
        bounds = np.round(np.arange(level + 1) * fine / level).astype(int)
        merged = np.add.reduceat(table, bounds[:-1], axis=0)
        out[level] = _mutual_information(merged)
    return out


def _mutual_information(joint: np.ndarray) -> float:
    total = joint.sum()
    if total <= 0:
        return 0.0
    p = joint / total
    px = p.sum(axis=1, keepdims=True)
    py = p.sum(axis=0, keepdims=True)
    nz = p > 0
    return max(0.0, float((p[nz] * np.log(p[nz] / (px @ py)[nz])).sum()))


class Contingency:
    """Joint counts of attribute buckets (rows) and target buckets (columns)."""

    def __init__(self, row_limit: int = CATEGORY_BUCKETS):
        self.row_limit = row_limit
        self.rows: dict = {}
        self.cols: dict = {}
        self.counts = np.zeros((0, 0), dtype=np.int64)

    def _index(self, table: dict, label, limit: int | None) -> int:
        found = table.get(label)
        if found is not None:
            return found
        if limit is not None and len(table) >= limit and label not in (OTHER, MISSING):
            return self._index(table, OTHER, None)
        table[label] = len(table)
        return table[label]

    def _grow(self) -> None:
        r, c = len(self.rows), len(self.cols)
        if self.counts.shape != (r, c):
            grown = np.zeros((r, c), dtype=np.int64)
            grown[:self.counts.shape[0], :self.counts.shape[1]] = self.counts
            self.counts = grown

    def add(self, row_codes: np.ndarray, row_labels: list, col_codes: np.ndarray, col_labels: list) -> None:
        if not len(row_codes):
            return
        nr, nc = len(row_labels), len(col_labels)
        joint = np.bincount(row_codes * nc + col_codes, minlength=nr * nc).reshape(nr, nc)
        if nr <= 64:
            row_sums, col_sums = joint.sum(axis=1), joint.sum(axis=0)
        else:
            # numpy's sums along the short axis of a tall table took longer
            # than counting the codes again.
            row_sums, col_sums = np.bincount(row_codes, minlength=nr), np.bincount(col_codes, minlength=nc)
        self._add_joint(joint, row_sums, col_sums, row_labels, col_labels)

    def add_counts(self, joint: np.ndarray, row_labels: list, col_labels: list) -> None:
        """`add` for counts already made: joint[r, c] records of row label r and column label c."""
        if not joint.any():
            return
        self._add_joint(joint, joint.sum(axis=1), joint.sum(axis=0), row_labels, col_labels)

    def _add_joint(self, joint: np.ndarray, row_sums: np.ndarray, col_sums: np.ndarray, row_labels: list,
                   col_labels: list) -> None:
        used_rows = np.flatnonzero(row_sums)
        used_cols = np.flatnonzero(col_sums)
        if len(self.rows) < self.row_limit:
            # Bigger local buckets claim global slots first, so the capped
            # category table keeps the values that matter most in this chunk.
            # (Once the table is full nothing is claimed, and the sort of an
            # ID column's chunk was wasted.)
            used_rows = used_rows[np.argsort(-row_sums[used_rows], kind="stable")]
        gr = self._map_rows(row_labels, used_rows)
        gc = np.array([self._index(self.cols, col_labels[c], self.row_limit) for c in used_cols.tolist()])
        self._grow()
        self._accumulate(gr, gc, joint[np.ix_(used_rows, used_cols)])

    @property
    def full(self) -> bool:
        return len(self.rows) >= self.row_limit

    def add_keys(self, keys: np.ndarray, col_codes: np.ndarray, col_labels: list) -> None:
        """`add` for rows labelled by integer keys (value hashes) once the row table is full.

        Nothing can claim a row any more, so each record goes straight to its
        key's row or OTHER, without first counting the chunk's distinct keys.
        """
        if not len(keys):
            return
        rows = np.full(len(keys), -1, dtype=np.int64)
        known, slots = self._known_keys()
        if len(known):
            kernels.find_keys(known, slots, keys, rows)
        unknown = rows < 0
        if unknown.any():
            rows[unknown] = self._index(self.rows, OTHER, None)
        nc = len(col_labels)
        used_cols = np.flatnonzero(np.bincount(col_codes, minlength=nc))
        gc = np.full(nc, -1, dtype=np.int64)
        gc[used_cols] = [self._index(self.cols, col_labels[c], self.row_limit) for c in used_cols.tolist()]
        self._grow()
        shape = self.counts.shape
        self.counts += np.bincount(rows * shape[1] + gc[col_codes], minlength=shape[0] * shape[1]).reshape(shape)

    def _accumulate(self, gr: np.ndarray, gc: np.ndarray, block: np.ndarray) -> None:
        if len(gr) <= 64:
            np.add.at(self.counts, (gr[:, None], gc[None, :]), block)
            return
        # Many local rows share the OTHER slot; a weighted bincount adds them
        # up faster than ufunc.at (float64 is exact below 2**53).
        shape = self.counts.shape
        flat = (gr[:, None] * shape[1] + gc[None, :]).ravel()
        summed = np.bincount(flat, weights=block.ravel(), minlength=shape[0] * shape[1])
        self.counts += summed.reshape(shape).astype(np.int64)

    def _map_rows(self, labels, used: np.ndarray) -> np.ndarray:
        """Global row index for each used local label, claiming free slots in `used` order.

        `labels` is a list, or an array of integer keys (value hashes).
        """
        if not isinstance(labels, np.ndarray):
            return np.array([self._index(self.rows, labels[r], self.row_limit) for r in used.tolist()],
                            dtype=np.int64)
        # Known keys are looked up all at once and only new keys take a
        # Python call each, until the table is full; then the rest go to
        # OTHER together. A chunk of an ID column is all new keys.
        picked = labels[used]
        out = np.full(len(picked), -1, dtype=np.int64)
        known, slots = self._known_keys()
        if len(known):
            # A hash lookup: searchsorted of an ID column's chunk in the
            # known keys mispredicted at every step and led this profile.
            kernels.find_keys(known, slots, picked, out)
        new = np.flatnonzero(out < 0)
        room = max(self.row_limit - len(self.rows), 0)
        for i in new[:room].tolist():
            out[i] = self._index(self.rows, int(picked[i]), self.row_limit)
        if len(new) > room:
            out[new[room:]] = self._index(self.rows, OTHER, None)
        return out

    def _known_keys(self) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "_cached_rows", -1) != len(self.rows):
            keys = sorted(k for k in self.rows if isinstance(k, int) and k >= 0)
            self._known = np.array(keys, dtype=np.uint64)
            self._known_slots = np.array([self.rows[k] for k in keys], dtype=np.int64)
            self._cached_rows = len(self.rows)
        return self._known, self._known_slots

    def merge(self, other: Contingency) -> None:
        if not other.rows:
            return
        inv_rows = sorted(other.rows.items(), key=lambda kv: kv[1])
        inv_cols = sorted(other.cols.items(), key=lambda kv: kv[1])
        row_codes, col_codes = np.nonzero(other.counts)
        weights = other.counts[row_codes, col_codes]
        nr, nc = len(inv_rows), len(inv_cols)
        joint = np.zeros((nr, nc), dtype=np.int64)
        joint[row_codes, col_codes] = weights
        # Same claiming order as `add`: the other side's biggest buckets first.
        order = np.argsort(-joint.sum(axis=1), kind="stable")
        row_map = {int(r): self._index(self.rows, inv_rows[r][0], self.row_limit) for r in order}
        col_map = {c: self._index(self.cols, inv_cols[c][0], self.row_limit) for c in range(nc)}
        self._grow()
        gr = np.array([row_map[r] for r in range(nr)])
        gc = np.array([col_map[c] for c in range(nc)])
        np.add.at(self.counts, (gr[:, None], gc[None, :]), joint)

    def mutual_information(self) -> dict:
        """MI in bits, and MI divided by the target's entropy (0..1)."""
        total = self.counts.sum()
        if total == 0:
            return {"mutual_information": None, "normalized": None}
        p = self.counts / total
        px = p.sum(axis=1, keepdims=True)
        py = p.sum(axis=0, keepdims=True)
        nz = p > 0
        mi = float(np.sum(p[nz] * np.log2(p[nz] / (px @ py)[nz])))
        mi = max(mi, 0.0)
        hy = float(-np.sum(py[py > 0] * np.log2(py[py > 0])))
        return {"mutual_information": mi, "normalized": (min(mi / hy, 1.0) if hy > 0 else 0.0)}
