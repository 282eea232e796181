"""Streaming statistics a feature pipeline needs from the training data.

Everything is computed in one pass over chunks: exact population mean and
variance (chunk-wise merge, Chan et al., so no catastrophic cancellation on
large values) and a KLL quantile sketch per variable that is quantile-binned.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasketches import kll_doubles_sketch

KLL_MAX_K = 65535


def kll_k_for(bins: int) -> int:
    # Default k=200 has ~1.3% rank error; with many bins each bin is narrower
    # than that, so k grows with the bin count (k=8*bins keeps the error below
    # roughly half a bin width) up to the sketch's maximum.
    return int(min(KLL_MAX_K, max(200, 8 * bins)))


@dataclass
class Moments:
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, values: np.ndarray) -> None:
        n = int(values.size)
        if n == 0:
            return
        mean = float(values.mean())
        self.merge(Moments(n, mean, float(((values - mean) ** 2).sum())))

    def merge(self, other: Moments) -> None:
        """Add another stream's moments (Chan et al.'s pairwise update)."""
        if other.count == 0:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total

    @property
    def variance(self) -> float:
        """Population variance (docs/behaviour.md, "Recipes")."""
        return self.m2 / self.count if self.count else 0.0


class NumericAccumulator:
    """Moments and, when needed, a quantile sketch of one numeric variable."""

    def __init__(self, sketch_k: int | None):
        self.moments = Moments()
        self.sketch = kll_doubles_sketch(sketch_k) if sketch_k else None

    def update(self, values: np.ndarray) -> None:
        valid = values[~np.isnan(values)]
        self.moments.update(valid)
        if self.sketch is not None and valid.size:
            self.sketch.update(valid)

    def merge(self, other: NumericAccumulator) -> None:
        """Add what another accumulator of the same variable saw (a training shard)."""
        self.moments.merge(other.moments)
        if self.sketch is not None and other.sketch is not None:
            self.sketch.merge(other.sketch)

    # The sketch crosses processes as its own serialised form.
    def __getstate__(self):
        return {"moments": self.moments, "sketch": self.sketch.serialize() if self.sketch is not None else None}

    def __setstate__(self, state):
        self.moments = state["moments"]
        self.sketch = kll_doubles_sketch.deserialize(state["sketch"]) if state["sketch"] is not None else None

    def bin_edges(self, bins: int) -> list[float]:
        """Interior boundaries of ``bins`` equal-frequency bins, ascending and
        distinct (ties in the data merge bins, so there may be fewer)."""
        if self.sketch is None or self.sketch.is_empty():
            return []
        ranks = [i / bins for i in range(1, bins)]
        # Inclusive ranks: edge i is the smallest value with at least i/bins of
        # the data at or below it, so a bin is "x <= edge" (searchsorted left).
        edges = np.unique(np.asarray(self.sketch.get_quantiles(ranks, inclusive=True), dtype=np.float64))
        return [float(e) for e in edges]
