"""Fitting a trained model under ``sgd.maxMLModelSizeInBytes`` (docs/behaviour.md, "Training").

Criterion: a weight's importance is ``|w| * rms(x_j)``, the root mean
square of its contribution to the score over the training rows (rms of the
column's value times the weight).  Dropping the weights with the smallest
contributions perturbs the scores least; for one-hot columns it also ranks
a frequent category's weight above an equally large weight of a category
seen once, which |w| alone would not.  The bias is never pruned.

The serialized size is linear in the number of kept weights (a 4-byte index
and a 4-byte value each, see ``model``), so the cut is estimated from one
measurement and then checked against the real serialized size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

BYTES_PER_WEIGHT = 8


@dataclass(frozen=True)
class PruneReport:
    nonzero: int  # weights before pruning
    kept: int
    pruned: int
    size_bytes: int
    max_size_bytes: int
    pruning_calls: int


def ranked_entries(weights: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column, class) of every non-zero weight, most important first."""
    cols, ks = np.nonzero(weights)
    w = np.abs(weights[cols, ks].astype(np.float64))
    s = scale[cols].astype(np.float64)
    importance = w * np.where(s > 0, s, 1e-12)
    order = np.argsort(-importance, kind="stable")
    return cols[order], ks[order]


def fit_size(n_entries: int, size_of: Callable[[int], int], max_size: int) -> tuple[int, int, int]:
    """Largest m <= n_entries with ``size_of(m) <= max_size`` (size_of is the
    real serialized size keeping the m most important entries).
    Returns (m, size, calls)."""
    m = n_entries
    size = size_of(m)
    calls = 0
    while size > max_size and m > 0:
        calls += 1
        m = max(0, m - max(1, math.ceil((size - max_size) / BYTES_PER_WEIGHT)))
        size = size_of(m)
    return m, size, calls


__all__ = ["PruneReport", "fit_size", "ranked_entries"]
