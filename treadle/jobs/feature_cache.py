"""A disk cache of featurized training rows, so that the data is read from
its source twice (fit, featurize) however many SGD passes follow, and a
bounded-memory shuffle.

Shuffling (sgd.shuffleType=auto) is an external shuffle: each row goes to
one of B bucket files at random; a training pass visits the buckets in a
seeded order and each bucket's rows in a seeded order. Memory holds one
bucket at a time, and B grows with the data so a bucket stays small. Every
pass sees the same order, as the learner's holdout expects, so each bucket
is put in that order once, on the first pass, rather than on every pass.

`RecordSpool` keeps the accepted records of the fitting pass on local disk
(Arrow IPC, uncompressed) for the featurizing pass, so that the source is
parsed and validated once.
"""
from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
from numba import njit

from ..learning.features import CsrBatch
from .memory import return_free_memory

BUCKET_TARGET_BYTES = 64 << 20
FLUSH_BYTES = 4 << 20  # one bucket's pending rows are written at this size
PENDING_BUDGET = 16 << 20  # all buckets' pending rows together: past it, all are written


@dataclass
class Rows:
    """Featurized rows with their labels and weights."""

    batch: CsrBatch
    y: np.ndarray
    weight: np.ndarray


@njit(nogil=True, cache=True)
def _gather(indptr, indices, data, index, out_indptr, out_indices, out_data):
    k = 0
    for r in range(index.shape[0]):
        i = index[r]
        for p in range(indptr[i], indptr[i + 1]):
            out_indices[k] = indices[p]
            out_data[k] = data[p]
            k += 1
        out_indptr[r + 1] = k


def _take(rows: Rows, index: np.ndarray) -> Rows:
    b = rows.batch
    total = int(np.diff(b.indptr)[index].sum())
    indptr = np.zeros(len(index) + 1, dtype=np.int64)
    indices = np.empty(total, dtype=b.indices.dtype)
    data = np.empty(total, dtype=b.data.dtype)
    _gather(b.indptr, b.indices, b.data, index.astype(np.int64, copy=False), indptr, indices, data)
    return Rows(CsrBatch(indptr, indices, data, b.n_features), rows.y[index], rows.weight[index])


def _slice(rows: Rows, start: int, stop: int) -> Rows:
    """A copy, so a pending bucket does not keep its whole source chunk alive."""
    b = rows.batch
    a, z = b.indptr[start], b.indptr[stop]
    return Rows(CsrBatch(b.indptr[start:stop + 1] - a, b.indices[a:z].copy(), b.data[a:z].copy(), b.n_features),
                rows.y[start:stop].copy(), rows.weight[start:stop].copy())


def _concat(parts: list[Rows]) -> Rows:
    offsets = np.cumsum([0] + [p.batch.indptr[-1] for p in parts[:-1]])
    indptr = np.concatenate([parts[0].batch.indptr[:1]] +
                            [p.batch.indptr[1:] + off for p, off in zip(parts, offsets)])
    return Rows(CsrBatch(indptr.astype(np.int64), np.concatenate([p.batch.indices for p in parts]),
                         np.concatenate([p.batch.data for p in parts]), parts[0].batch.n_features),
                np.concatenate([p.y for p in parts]), np.concatenate([p.weight for p in parts]))


class FeatureCache:
    def __init__(self, estimated_bytes: int, shuffle: bool, seed: int = 0, directory: str | None = None):
        self.dir = tempfile.TemporaryDirectory(prefix="treadle-features-", dir=directory)
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.buckets = max(1, int(np.ceil(estimated_bytes / BUCKET_TARGET_BYTES))) if shuffle else 1
        self._pending: list[list[Rows]] = [[] for _ in range(self.buckets)]
        self._pending_bytes = [0] * self.buckets
        self._pending_total = 0  # without this bound, pending rows would grow with the bucket count
        # Opened per write: thousands of buckets (a 100 GB source) would
        # exceed the process's limit on open files.
        for bucket in range(self.buckets):
            open(self._path(bucket), "wb").close()
        self.rows = 0
        self._adds = 0

    def add(self, rows: Rows) -> None:
        n = len(rows.y)
        self.rows += n
        self._adds += 1
        if self._adds % 8 == 0:
            return_free_memory()
        if self.buckets == 1:
            self._append(0, rows)
            return
        choice = self.rng.integers(0, self.buckets, size=n)
        order = np.argsort(choice, kind="stable")
        bounds = np.searchsorted(choice[order], np.arange(self.buckets + 1))
        grouped = _take(rows, order)  # one gather, then a contiguous slice per bucket
        for bucket in range(self.buckets):
            if bounds[bucket + 1] > bounds[bucket]:
                self._append(bucket, _slice(grouped, int(bounds[bucket]), int(bounds[bucket + 1])))

    def _append(self, bucket: int, rows: Rows) -> None:
        size = rows.batch.data.nbytes * 2 + rows.y.nbytes * 2
        self._pending[bucket].append(rows)
        self._pending_bytes[bucket] += size
        self._pending_total += size
        if self._pending_bytes[bucket] >= FLUSH_BYTES:
            self._flush(bucket)
        elif self._pending_total >= PENDING_BUDGET:
            for other in range(self.buckets):
                self._flush(other)

    def _flush(self, bucket: int) -> None:
        if not self._pending[bucket]:
            return
        rows = _concat(self._pending[bucket])
        with open(self._path(bucket), "ab") as handle:
            for array in (rows.batch.indptr, rows.batch.indices, rows.batch.data, rows.y, rows.weight):
                np.save(handle, array, allow_pickle=False)
        self._pending_total -= self._pending_bytes[bucket]
        self._pending[bucket], self._pending_bytes[bucket] = [], 0

    def seal(self) -> None:
        for bucket in range(self.buckets):
            self._flush(bucket)
        self._order = self.rng.permutation(self.buckets) if self.shuffle else np.arange(self.buckets)
        self._row_seed = int(self.rng.integers(0, 2**31))
        # A bucket's rows are put in their shuffled order on the first pass
        # that reads them, and written back by a background thread while the
        # learner trains on them: a separate shuffle step before training
        # read and wrote the whole cache once more.
        self._in_order = [not self.shuffle] * self.buckets
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="treadle-cache") if self.shuffle else None

    def _path(self, bucket: int) -> str:
        return os.path.join(self.dir.name, f"bucket-{bucket}.npy")

    def _read(self, bucket: int, n_features: int) -> list[Rows]:
        return_free_memory()  # the previous bucket's rows were just dropped
        parts = []
        with open(self._path(bucket), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            while handle.tell() < size:
                indptr, indices, data, y, weight = (np.load(handle) for _ in range(5))
                parts.append(Rows(CsrBatch(indptr, indices, data, n_features), y, weight))
        return parts

    def _shuffled(self, bucket: int, n_features: int) -> Rows | None:
        parts = self._read(bucket, n_features)
        if not parts:
            return None
        rows = _concat(parts)
        del parts
        order = np.random.default_rng(self._row_seed + int(bucket)).permutation(len(rows.y))
        return _take(rows, order)

    def _write(self, bucket: int, rows: Rows) -> None:
        with open(self._path(bucket), "wb") as handle:
            for array in (rows.batch.indptr, rows.batch.indices, rows.batch.data, rows.y, rows.weight):
                np.save(handle, array, allow_pickle=False)

    def passes(self, n_features: int) -> Iterator[Rows]:
        """One pass over the cached rows, in the order fixed at seal()."""
        for bucket in map(int, self._order):
            if self._in_order[bucket]:
                yield from self._read(bucket, n_features)
                continue
            rows = self._shuffled(bucket, n_features)
            if rows is None:
                self._in_order[bucket] = True
                continue
            written = self._writer.submit(self._write, bucket, rows)
            yield rows
            written.result()
            self._in_order[bucket] = True

    def close(self) -> None:
        if getattr(self, "_writer", None) is not None:
            self._writer.shutdown(wait=True)
        self.dir.cleanup()


class RecordSpool:
    """Record chunks (their string columns, a target column and row weights)
    written to one Arrow IPC stream and read back chunk by chunk."""

    def __init__(self, directory: str):
        self.path = os.path.join(directory, "records.arrows")
        self._names: list[str] | None = None
        self._sink = None
        self._writer = None

    def add(self, table: pa.Table, target: pa.Array, weight: np.ndarray) -> None:
        if table.num_rows == 0:
            return
        n = table.num_columns
        # Positional names: an attribute may be called anything, "y" included.
        columns = [table.column(i) for i in range(n)] + [pa.chunked_array([target]),
                                                          pa.chunked_array([pa.array(weight, pa.float64())])]
        if self._writer is None:
            self._names = list(table.schema.names)
            self._schema = pa.schema([pa.field(str(i), c.type) for i, c in enumerate(columns)])
            self._sink = pa.OSFile(self.path, "wb")
            self._writer = pa.ipc.new_stream(self._sink, self._schema)
        spooled = pa.Table.from_arrays(columns, names=[str(i) for i in range(n + 2)])
        if spooled.schema != self._schema:
            spooled = spooled.cast(self._schema)
        self._writer.write_table(spooled)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = None

    def read(self) -> Iterator[tuple[pa.Table, pa.Array, np.ndarray]]:
        """(string columns under their names, target, weights) per stored batch."""
        if self._names is None:
            return
        n = len(self._names)
        # Read, not memory-mapped: mapped pages would count as the job's memory.
        with pa.OSFile(self.path, "rb") as source:
            for batch in pa.ipc.open_stream(source):
                table = pa.Table.from_arrays(batch.columns[:n], names=self._names)
                yield table, batch.column(n), batch.column(n + 1).to_numpy(zero_copy_only=False)

    def delete(self) -> None:
        self.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
