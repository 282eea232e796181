"""A disk cache of featurized training rows, so that the data is read from
its source twice (fit, featurize) however many SGD passes follow, and a
bounded-memory shuffle.

Shuffling (sgd.shuffleType=auto) is an external shuffle: each row goes to
one of B bucket files at random; a training pass visits the buckets in a
seeded order and each bucket's rows in a seeded order. Memory holds one
bucket at a time, and B grows with the data so a bucket stays small. Every
pass sees the same order, as the learner's holdout expects.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..learning.features import CsrBatch

BUCKET_TARGET_BYTES = 64 << 20
FLUSH_BYTES = 4 << 20


@dataclass
class Rows:
    """Featurized rows with their labels and weights."""

    batch: CsrBatch
    y: np.ndarray
    weight: np.ndarray


def _take(rows: Rows, index: np.ndarray) -> Rows:
    b = rows.batch
    starts, ends = b.indptr[index], b.indptr[index + 1]
    lengths = ends - starts
    indptr = np.zeros(len(index) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    # gather each chosen row's slice of indices/data
    positions = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
    return Rows(CsrBatch(indptr, b.indices[positions], b.data[positions], b.n_features),
                rows.y[index], rows.weight[index])


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
        self._files = [open(os.path.join(self.dir.name, f"bucket-{i}.npy"), "wb") for i in range(self.buckets)]
        self.rows = 0

    def add(self, rows: Rows) -> None:
        n = len(rows.y)
        self.rows += n
        if self.buckets == 1:
            self._append(0, rows)
            return
        choice = self.rng.integers(0, self.buckets, size=n)
        order = np.argsort(choice, kind="stable")
        bounds = np.searchsorted(choice[order], np.arange(self.buckets + 1))
        for bucket in range(self.buckets):
            part = order[bounds[bucket]:bounds[bucket + 1]]
            if len(part):
                self._append(bucket, _take(rows, part))

    def _append(self, bucket: int, rows: Rows) -> None:
        self._pending[bucket].append(rows)
        self._pending_bytes[bucket] += rows.batch.data.nbytes * 2 + rows.y.nbytes * 2
        if self._pending_bytes[bucket] >= FLUSH_BYTES:
            self._flush(bucket)

    def _flush(self, bucket: int) -> None:
        if not self._pending[bucket]:
            return
        rows = _concat(self._pending[bucket])
        handle = self._files[bucket]
        for array in (rows.batch.indptr, rows.batch.indices, rows.batch.data, rows.y, rows.weight):
            np.save(handle, array, allow_pickle=False)
        self._pending[bucket], self._pending_bytes[bucket] = [], 0

    def seal(self) -> None:
        for bucket in range(self.buckets):
            self._flush(bucket)
            self._files[bucket].close()
        self._order = self.rng.permutation(self.buckets) if self.shuffle else np.arange(self.buckets)
        self._row_seed = int(self.rng.integers(0, 2**31))

    def passes(self, n_features: int) -> Iterator[Rows]:
        """One pass over the cached rows, in the pass order fixed at seal()."""
        for bucket in self._order:
            parts = []
            with open(os.path.join(self.dir.name, f"bucket-{bucket}.npy"), "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                while handle.tell() < size:
                    indptr, indices, data, y, weight = (np.load(handle) for _ in range(5))
                    parts.append(Rows(CsrBatch(indptr, indices, data, n_features), y, weight))
            if not parts:
                continue
            if not self.shuffle:
                yield from parts
                continue
            rows = _concat(parts)
            order = np.random.default_rng(self._row_seed + int(bucket)).permutation(len(rows.y))
            yield _take(rows, order)

    def close(self) -> None:
        for handle in self._files:
            if not handle.closed:
                handle.close()
        self.dir.cleanup()
