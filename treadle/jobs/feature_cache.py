"""A disk cache of featurized training rows, so that the data is read from
its source twice (fit, featurize) however many SGD passes follow, and a
bounded-memory shuffle.

Shuffling (sgd.shuffleType=auto) is an external shuffle: each row goes to
one of B bucket files at random; a training pass visits the buckets in a
seeded order and each bucket's rows in a seeded order (see FeatureCache).
Memory holds one bucket at a time, and B grows with the data so a bucket
stays small. Every pass sees the same order, as the learner's holdout
expects, so each bucket is put in that order once, on the first pass,
rather than on every pass.

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

from ..data.records import RecordChunk
from ..data.schema import DataSchema
from ..learning.features import CsrBatch
from ..learning.targets import TargetClasses, TargetMoments, TargetValues, row_weights
from .memory import return_free_memory
from .pipelining import ordered_map

BUCKET_TARGET_BYTES = 32 << 20
FLUSH_BYTES = 4 << 20  # one bucket's pending rows are written at this size
PENDING_BUDGET = 16 << 20  # all buckets' pending rows together: past it, all are written


@dataclass
class Rows:
    """Featurized rows with their labels and weights."""

    batch: CsrBatch
    y: np.ndarray
    weight: np.ndarray

    @property
    def nbytes(self) -> int:
        b = self.batch
        return b.indptr.nbytes + b.indices.nbytes + b.data.nbytes + self.y.nbytes + self.weight.nbytes


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


@njit(nogil=True, cache=True)
def _riffle_sources(piece_starts, labels, out):
    """Row r of the riffle is the next unused row of piece ``labels[r]``."""
    cursor = piece_starts.copy()
    for r in range(labels.shape[0]):
        piece = labels[r]
        out[r] = cursor[piece]
        cursor[piece] += 1


def _save(handle, array: np.ndarray) -> None:
    """np.save's format, written through the file object: np.save writes
    the data with ndarray.tofile, whose error for a full disk has no errno,
    and a job tells a full disk by its errno."""
    array = np.ascontiguousarray(array)
    np.lib.format.write_array_header_1_0(handle, np.lib.format.header_data_from_array_1_0(array))
    handle.write(memoryview(array).cast("B"))


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
    """Featurized rows on local disk, read back pass after pass.

    With ``shuffle``, each added chunk is permuted and its rows dealt to
    random buckets, so every piece a bucket receives is in random order;
    the first pass over a bucket riffles its pieces together (output row r
    is the next row of a piece drawn at random, in proportion to the rows it
    has left), which is a uniform shuffle of the bucket, and writes that
    order back for later passes.  A riffle reads each piece sequentially; a
    direct random permutation of a bucket read rows all over it and took
    ~0.8 us per row, most of the cache's time.

    ``expected_rows`` (the records the fitting pass accepted) and the size
    of the first chunk's rows fix the number of buckets, so a bucket holds
    about ``BUCKET_TARGET_BYTES`` whatever the data's size. Without
    ``shuffle``, rows fill one bucket after another in their order, a new
    one whenever the last holds ``BUCKET_TARGET_BYTES``; either way a pass
    holds at most two buckets in memory.
    """

    def __init__(self, expected_rows: int, shuffle: bool, seed: int = 0, directory: str | None = None):
        self.dir = tempfile.TemporaryDirectory(prefix="treadle-features-", dir=directory)
        self.shuffle = shuffle
        self.expected_rows = expected_rows
        self.rng = np.random.default_rng(seed)
        self.buckets = 0  # decided at the first add
        self.rows = 0
        self._adds = 0
        self._writer: ThreadPoolExecutor | None = None  # both from seal() on
        self._reader: ThreadPoolExecutor | None = None

    def _plan(self, first: Rows) -> None:
        per_row = first.nbytes / max(len(first.y), 1)
        estimate = max(self.expected_rows, len(first.y)) * per_row
        self._pending: list[list[Rows]] = []
        self._pending_bytes: list[int] = []
        self._pending_total = 0  # without this bound, pending rows would grow with the bucket count
        self._filling = 0  # bytes in the last bucket, which in-order rows fill
        for _ in range(max(1, int(np.ceil(estimate / BUCKET_TARGET_BYTES))) if self.shuffle else 1):
            self._add_bucket()

    def _add_bucket(self) -> None:
        # Opened per write: thousands of buckets (a 100 GB source) would
        # exceed the process's limit on open files.
        open(self._path(self.buckets), "wb").close()
        self._pending.append([])
        self._pending_bytes.append(0)
        self.buckets += 1

    def add(self, rows: Rows) -> None:
        n = len(rows.y)
        if self.buckets == 0:
            self._plan(rows)
        self.rows += n
        self._adds += 1
        if self._adds % 8 == 0:
            return_free_memory()
        if not self.shuffle:
            if self._filling >= BUCKET_TARGET_BYTES:
                self._flush(self.buckets - 1)
                self._add_bucket()
                self._filling = 0
            self._filling += rows.nbytes
            self._append(self.buckets - 1, rows)
            return
        # One gather: rows grouped by bucket, in random order within each group.
        perm = self.rng.permutation(n)
        choice = self.rng.integers(0, self.buckets, size=n)  # bucket of the row at perm[j]
        by_bucket = np.argsort(choice, kind="stable")
        bounds = np.searchsorted(choice[by_bucket], np.arange(self.buckets + 1))
        grouped = _take(rows, perm[by_bucket])
        for bucket in range(self.buckets):
            if bounds[bucket + 1] > bounds[bucket]:
                self._append(bucket, _slice(grouped, int(bounds[bucket]), int(bounds[bucket + 1])))

    def _append(self, bucket: int, rows: Rows) -> None:
        size = rows.nbytes
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
        pieces = np.array([len(p.y) for p in self._pending[bucket]], dtype=np.int64)
        self._write(bucket, _concat(self._pending[bucket]), pieces, "ab")
        self._pending_total -= self._pending_bytes[bucket]
        self._pending[bucket], self._pending_bytes[bucket] = [], 0

    def _write(self, bucket: int, rows: Rows, pieces: np.ndarray, mode: str) -> None:
        with open(self._path(bucket), mode) as handle:
            for array in (rows.batch.indptr, rows.batch.indices, rows.batch.data, rows.y, rows.weight, pieces):
                _save(handle, array)

    def seal(self) -> None:
        for bucket in range(self.buckets):
            self._flush(bucket)
        self._order = self.rng.permutation(self.buckets) if self.shuffle else np.arange(self.buckets)
        self._row_seed = int(self.rng.integers(0, 2**31))
        # Each bucket is riffled on the first pass that reads it, and a
        # background thread writes that order back while the learner trains.
        self._in_order = [not self.shuffle] * self.buckets
        self._written: dict = {}  # bucket -> pending write-back of its riffled order
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="treadle-cache-write")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="treadle-cache-read")

    def _path(self, bucket: int) -> str:
        return os.path.join(self.dir.name, f"bucket-{bucket}.npy")

    def _read(self, bucket: int, n_features: int) -> tuple[list[Rows], list[np.ndarray]]:
        return_free_memory()  # the previous bucket's rows were just dropped
        parts, pieces = [], []
        with open(self._path(bucket), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            while handle.tell() < size:
                indptr, indices, data, y, weight, piece_rows = (np.load(handle) for _ in range(6))
                parts.append(Rows(CsrBatch(indptr, indices, data, n_features), y, weight))
                pieces.append(piece_rows)
        return parts, pieces

    def _riffled(self, bucket: int, n_features: int) -> Rows | None:
        parts, pieces = self._read(bucket, n_features)
        if not parts:
            return None
        rows = _concat(parts)
        del parts
        sizes = np.concatenate(pieces)
        labels = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        np.random.default_rng(self._row_seed + int(bucket)).shuffle(labels)
        sources = np.empty(len(labels), dtype=np.int64)
        _riffle_sources(np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64), labels, sources)
        return _take(rows, sources)

    def _prepare(self, bucket: int, n_features: int) -> list[Rows]:
        """A bucket's rows in pass order: as stored, or riffled on its first pass
        (and that order handed to the writer for the passes after)."""
        written = self._written.pop(bucket, None)
        if written is not None:
            written.result()
        if self._in_order[bucket]:
            return self._read(bucket, n_features)[0]
        rows = self._riffled(bucket, n_features)
        self._in_order[bucket] = True
        if rows is None:
            return []
        self._written[bucket] = self._writer.submit(self._write, bucket, rows, np.array([len(rows.y)]), "wb")
        return [rows]

    def passes(self, n_features: int) -> Iterator[Rows]:
        """One pass over the cached rows, in the order fixed at seal().

        The next bucket is read (and riffled) on a thread while the caller
        trains on this one: two buckets in memory at most, and the compiled
        learner releases the GIL."""
        order = [int(b) for b in self._order]
        if not order:
            return
        ahead = self._reader.submit(self._prepare, order[0], n_features)
        try:
            for i in range(len(order)):
                parts = ahead.result()
                ahead = self._reader.submit(self._prepare, order[i + 1], n_features) if i + 1 < len(order) else None
                yield from parts
        finally:
            # Left early (an error in the caller): no read may outlive the pass.
            if ahead is not None:
                ahead.exception()

    def close(self) -> None:
        for pool in (self._writer, self._reader):
            if pool is not None:
                pool.shutdown(wait=True)
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


class RecordFit:
    """One read of a training datasource, chunk by chunk: fits the recipe's
    data-dependent state, observes the target (its classes, or its moments
    for a numeric one) and spools the accepted records, so that featurizing
    reads them back from local disk instead of parsing the source again.
    A job in one process and each shard on a cluster read through it.
    `moments`: gather a numeric target's moments, which shards need to
    standardise it alike (docs/behaviour.md, "Cluster mode")."""

    def __init__(self, pipeline, labels: TargetValues | TargetClasses, schema: DataSchema, directory: str,
                 moments: bool = False):
        self.fitter = pipeline.fitter()
        self.labels = labels
        self.schema = schema
        self.target = TargetMoments() if moments and isinstance(labels, TargetValues) else None
        self.spool = RecordSpool(directory)

    def add(self, chunk: RecordChunk) -> None:
        weight = row_weights(chunk, self.schema)
        self.fitter.update(chunk.table)
        self.labels.observe(chunk)
        if self.target is not None:
            self.target.add(self.labels.y(chunk), weight)
        self.spool.add(chunk.table, self.labels.raw(chunk), weight)

    def close(self) -> None:
        self.spool.close()


def featurize_spool(spool: RecordSpool, pipeline, labels, columns, cache: FeatureCache) -> None:
    """Featurize the spooled records into `cache` once, numbering their
    columns with `columns` (a `ColumnMap`) and adding their targets to
    `labels`; then the spool is deleted and the cache sealed for passes."""
    def featurize(spooled) -> Rows:
        table, raw, weight = spooled
        return Rows(pipeline.transform(table), labels.from_raw(raw), weight)

    for rows in ordered_map(featurize, spool.read(), workers=2):  # featurizing overlaps the cache's writes
        labels.add(rows.y, rows.weight)
        cache.add(Rows(columns.translate(rows.batch), rows.y, rows.weight))
    spool.delete()
    cache.seal()
