"""Class names of a MULTICLASS target -> class numbers in training order."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .sgd import MAX_CLASSES


class TooManyClasses(ValueError):
    pass


class LabelIndex:
    """Numbers classes by first appearance, the order of the model's labels
    and of the multiclass batch-output columns."""

    def __init__(self, labels: Iterable[str] = (), max_classes: int = MAX_CLASSES):
        self.labels: list[str] = []
        self._number: dict[str, int] = {}
        self.max_classes = max_classes
        for label in labels:
            self._add(label)

    def _add(self, label: str) -> int:
        if len(self.labels) >= self.max_classes:
            raise TooManyClasses(f"the target has more than {self.max_classes} distinct values")
        self._number[label] = len(self.labels)
        self.labels.append(label)
        return self._number[label]

    def encode(self, values) -> np.ndarray:
        """Class numbers of a column of class names (strings), adding new ones."""
        arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values), type=pa.string())
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        enc = pc.dictionary_encode(arr)
        dictionary = enc.dictionary.to_pylist()
        first = np.full(len(dictionary), len(arr), dtype=np.int64)
        codes = enc.indices.to_numpy(zero_copy_only=False)
        np.minimum.at(first, codes, np.arange(len(arr)))
        mapping = np.empty(len(dictionary), dtype=np.int64)
        for d in np.argsort(first, kind="stable"):  # new labels in row order
            name = dictionary[d]
            mapping[d] = self._number[name] if name in self._number else self._add(name)
        return mapping[codes]

    def __len__(self) -> int:
        return len(self.labels)
