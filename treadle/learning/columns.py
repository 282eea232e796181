"""Compact column numbers for training.

Recipe features hash into 2**22 columns, of which a dataset uses a few
thousand to a few hundred thousand, scattered over the whole range.  The
learner's state for 2**22 columns is ~170 MB with five learners, and a row's
~30 columns each land on a different page of it: on the benchmark data the
SGD kernel spent more time on cache and TLB misses than on arithmetic
(~60 ns per column with scattered numbers against ~39 ns with compact ones,
five learners).  So the training job numbers columns densely in order of
first appearance as it writes its feature cache, trains on the dense
numbers, and maps the trained weights back to hashed columns for the model.
"""
from __future__ import annotations

import dataclasses

import numba as nb
import numpy as np

from .features import CsrBatch
from .sgd import TrainedLinear


@nb.njit(nogil=True, cache=True)
def _translate(indices, mask, slot_of, hashed_of, count, start, out):
    """out[p] = the dense number of column ``indices[p] & mask``, numbering
    new columns as they come; stops early (returning the position) when
    ``hashed_of`` is full, so the caller can grow it and resume."""
    n = count[0]
    for p in range(start, indices.shape[0]):
        h = indices[p] & mask
        s = slot_of[h]
        if s == 0:
            if n == hashed_of.shape[0]:
                count[0] = n
                return p
            hashed_of[n] = h
            n += 1
            s = n
            slot_of[h] = s
        out[p] = s - 1
    count[0] = n
    return indices.shape[0]


class ColumnMap:
    """Hashed column -> dense number, growing as columns appear."""

    def __init__(self, n_features: int):
        if n_features & (n_features - 1):
            raise ValueError("n_features must be a power of two")
        self.n_features = n_features
        # dense number + 1, 0 = not seen; zeroed pages cost memory only where touched
        self._slot_of = np.zeros(n_features, dtype=np.int32)
        self._hashed_of = np.zeros(1 << 12, dtype=np.int64)
        self._count = np.zeros(1, dtype=np.int64)

    @classmethod
    def of_columns(cls, n_features: int, hashed: np.ndarray) -> ColumnMap:
        """The map that numbers `hashed` columns 0, 1, ... in the order given."""
        columns = cls(n_features)
        columns.translate(CsrBatch(np.array([0, len(hashed)], dtype=np.int64), np.asarray(hashed, dtype=np.int32),
                                   np.ones(len(hashed), dtype=np.float32), n_features))
        return columns

    @property
    def size(self) -> int:
        return int(self._count[0])

    @property
    def n_columns(self) -> int:
        """The column count a learner over the dense numbers needs (at least one)."""
        return max(self.size, 1)

    @property
    def hashed_columns(self) -> np.ndarray:
        """The hashed column of each dense number."""
        return self._hashed_of[: self.size]

    def translate(self, batch: CsrBatch) -> CsrBatch:
        out = np.empty(batch.indices.shape[0], dtype=np.int32)
        p = 0
        while True:
            p = _translate(batch.indices, self.n_features - 1, self._slot_of, self._hashed_of, self._count, p, out)
            if p == batch.indices.shape[0]:
                break
            self._hashed_of = np.concatenate([self._hashed_of, np.zeros_like(self._hashed_of)])
        return CsrBatch(batch.indptr, out, batch.data, self.n_columns)

    def to_hashed(self, trained: TrainedLinear) -> TrainedLinear:
        """A result trained on dense numbers, with one weight row per dense
        number and ``column_ids`` naming its hashed column.  (A trainer that
        had to fold the dense numbers onto fewer rows shares a row between
        several of them; each gets that row's weights.)"""
        rows = np.arange(self.size) & ((1 << trained.weight_bits) - 1)
        return dataclasses.replace(
            trained, weights=trained.weights[rows], feature_scale=trained.feature_scale[rows],
            weight_bits=int(self.n_features).bit_length() - 1, column_ids=self.hashed_columns.copy())
