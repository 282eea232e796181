"""Adapter from whatever the data reader yields to Arrow string columns.

A chunk is a mapping attribute name -> values (pyarrow string array or
chunked array, list of str, numpy object array), a ``pyarrow.RecordBatch`` /
``Table``, or any object with ``keys()`` and ``__getitem__``.  The empty
string means missing; nulls are read as empty strings.  A column absent from
the chunk is entirely missing (Predict treats omitted variables as missing:
docs/behaviour.md, "Real-time endpoints and Predict").
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class Columns:
    def __init__(self, chunk: Any):
        if isinstance(chunk, (pa.RecordBatch, pa.Table)):
            self._raw = {name: chunk.column(name) for name in chunk.schema.names}
            self.n_rows = chunk.num_rows
        else:
            self._raw = {name: chunk[name] for name in chunk.keys()}
            self.n_rows = len(next(iter(self._raw.values()))) if self._raw else 0
        self._cache: dict[str, pa.Array] = {}

    def strings(self, name: str) -> pa.Array:
        """The column as a null-free ``string``/``large_string`` array."""
        if name in self._cache:
            return self._cache[name]
        raw = self._raw.get(name)
        if raw is None:
            arr = empty_strings(self.n_rows)
        else:
            arr = _to_string_array(raw)
            if len(arr) != self.n_rows:
                raise ValueError(f"column {name!r} has {len(arr)} values, expected {self.n_rows}")
        self._cache[name] = arr
        return arr


def empty_strings(n: int) -> pa.Array:
    return pa.StringArray.from_buffers(n, pa.py_buffer(np.zeros(n + 1, dtype=np.int32)), pa.py_buffer(b""))


def _to_string_array(raw: Any) -> pa.Array:
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks() if raw.num_chunks != 1 else raw.chunk(0)
    if not isinstance(raw, pa.Array):
        raw = pa.array(list(raw) if isinstance(raw, np.ndarray) else raw, type=pa.string())
    if not (pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type)):
        raw = pc.cast(raw, pa.string())
    if raw.null_count:
        raw = pc.fill_null(raw, "")
    return raw


def string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64 offsets rebased to the data buffer, uint8 data) for numba."""
    _, offsets_buf, data_buf = arr.buffers()
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=width)[arr.offset : arr.offset + len(arr) + 1].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
    return offsets, data
