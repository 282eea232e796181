"""What a record's target and weight are to the learner and the metrics: the
target encoded for the model type, its weighted distribution over the
training data (the evaluation's baseline), and the record's weight."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..data import cells
from ..data.records import RecordChunk
from ..data.schema import BINARY, DataSchema

MAX_CLASSES = 100  # a MULTICLASS model's classes at most


class TargetError(ValueError):
    """The training data's targets cannot make a model; the text says why."""


def row_weights(chunk: RecordChunk, schema: DataSchema) -> np.ndarray:
    """Each record's weight in the loss and the metrics (docs/behaviour.md, "Schemas and attribute types")."""
    if not schema.row_weight:
        return np.ones(len(chunk))
    column = chunk.typed(schema.row_weight)
    weights = np.where(column.missing | column.invalid, 1.0, column.values)
    # A negative weight has no meaning for a loss; it counts as zero.
    return np.clip(weights, 0.0, None)


class TargetValues:
    """A target learned as its value: 0 or 1 for a BINARY one, the number for
    a NUMERIC one. Its baseline is the weighted mean."""

    def __init__(self, schema: DataSchema):
        self.target = schema.target
        self.classes: list[str] = []
        self.weight = 0.0
        self.total = 0.0

    def observe(self, chunk: RecordChunk) -> None:
        pass

    def observe_from(self, other: TargetValues) -> None:
        pass

    def finish(self) -> None:
        pass

    def raw(self, chunk: RecordChunk) -> pa.Array:
        """What `from_raw` needs, known before every record has been observed."""
        return pa.array(chunk.typed(self.target).values.astype(np.float64))

    def from_raw(self, raw: pa.Array) -> np.ndarray:
        return raw.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)

    def y(self, chunk: RecordChunk) -> np.ndarray:
        return self.from_raw(self.raw(chunk))

    def add(self, y: np.ndarray, weight: np.ndarray) -> None:
        self.weight += float(weight.sum())
        self.total += float(np.dot(y, weight))

    def merge(self, other: TargetValues) -> None:
        """Add what another reader of other records `add`ed (a training shard)."""
        self.weight += other.weight
        self.total += other.total

    def summary(self) -> dict:
        return {"weight": self.weight, "mean": self.total / self.weight if self.weight else None}


class TargetClasses:
    """A target learned as a class number. Classes are numbered in sorted
    order, so the model's labels (and the batch output's columns) do not
    depend on the order records arrive in; a class the model never saw is -1.
    Its baseline is the weight of each class."""

    def __init__(self, schema: DataSchema, classes: list[str] | None = None):
        """`classes`: a trained model's, numbered as it numbers them; else
        those of the records `observe`d."""
        self.target = schema.target
        self.binary = schema.type_of(schema.target) == BINARY
        self.weight = 0.0
        self._use(classes or [])

    def _strings(self, chunk: RecordChunk) -> pa.Array:
        if self.binary:  # "yes", "true" and "1" are all class "1"
            values = chunk.typed(self.target).values
            return pa.array(np.where(values > 0.5, "1", "0"))
        return cells.trim(chunk.column(self.target))

    def observe(self, chunk: RecordChunk) -> None:
        self._observe(self._strings(chunk).unique().to_pylist())

    def observe_from(self, other: TargetClasses) -> None:
        """Take the classes another reader observed (a training shard's)."""
        self._observe(other.classes)

    def _observe(self, values) -> None:
        for value in values:
            if value not in self._index:
                self._index[value] = len(self.classes)
                self.classes.append(value)
                if len(self.classes) > MAX_CLASSES:
                    raise TargetError(f"The target {self.target} has more than {MAX_CLASSES} distinct values; "
                                      f"a MULTICLASS model supports at most {MAX_CLASSES} classes")

    def finish(self) -> None:
        self._use(sorted(self.classes))
        if len(self.classes) < 2:
            raise TargetError(f"The target {self.target} has fewer than two distinct values")

    def _use(self, classes: list[str]) -> None:
        self.classes = list(classes)
        self._index = {c: i for i, c in enumerate(self.classes)}
        self.class_weights = np.zeros(len(self.classes))

    def raw(self, chunk: RecordChunk) -> pa.Array:
        return self._strings(chunk)

    def from_raw(self, raw: pa.Array) -> np.ndarray:
        strings = raw.to_pylist()
        return np.fromiter((self._index.get(s, -1) for s in strings), dtype=np.int64, count=len(strings))

    def y(self, chunk: RecordChunk) -> np.ndarray:
        return self.from_raw(self.raw(chunk))

    def add(self, y: np.ndarray, weight: np.ndarray) -> None:
        self.weight += float(weight.sum())
        self.class_weights += np.bincount(y, weight, minlength=len(self.class_weights))[:len(self.class_weights)]

    def merge(self, other: TargetClasses) -> None:
        """Add what another reader of other records `add`ed, numbered alike (a training shard)."""
        self.weight += other.weight
        self.class_weights += other.class_weights

    def summary(self) -> dict:
        return {"weight": self.weight, "class_weights": self.class_weights.tolist()}


class TargetMoments:
    """The weighted mean and standard deviation of a numeric target, over
    records read in any number of pieces."""

    def __init__(self):
        self.weight = self.total = self.squares = 0.0

    def add(self, values: np.ndarray, weight: np.ndarray) -> None:
        self.weight += float(weight.sum())
        self.total += float(values @ weight)
        self.squares += float((values * values) @ weight)

    def merge(self, other: TargetMoments) -> None:
        self.weight += other.weight
        self.total += other.total
        self.squares += other.squares

    @property
    def mean(self) -> float:
        return self.total / self.weight if self.weight else 0.0

    @property
    def std(self) -> float:
        if not self.weight:
            return 1.0
        return max(self.squares / self.weight - self.mean ** 2, 0.0) ** 0.5 or 1.0
