"""Typed views of string columns (spec 1.2, Decision 6), vectorized with Arrow compute.

Missing means an empty (or all-whitespace) cell. Invalid means a non-empty
NUMERIC cell that is not a decimal number (see `values.NUMBER_REGEX`; also a
number too large for float64), or a non-empty BINARY cell that is not one of
the binary spellings. Both are NaN in `values`; the masks tell them apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from treadle.data import kernels
from treadle.data.values import BINARY_FALSE, BINARY_TRUE, NUMBER_REGEX

_NULL_STRING = pa.scalar(None, pa.string())
_TRUE = pa.array(sorted(BINARY_TRUE))
_FALSE = pa.array(sorted(BINARY_FALSE))


@dataclass(frozen=True)
class TypedColumn:
    values: np.ndarray  # float64; NaN where missing or invalid
    missing: np.ndarray  # bool
    invalid: np.ndarray  # bool

    @cached_property
    def valid(self) -> np.ndarray:
        return ~(self.missing | self.invalid)


def _strings(column) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column


def _bool(array: pa.Array) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def numeric(column) -> TypedColumn:
    column = _strings(column)
    offsets, data = kernels.buffers(column)
    if kernels.plain_ascii(offsets, data):
        return _numeric_compiled(column, offsets, data)
    trimmed = pc.utf8_trim_whitespace(column)
    fast = _numeric_fast(trimmed)
    if fast is not None:
        return fast
    return numeric_checked(trimmed)


def _numeric_compiled(column: pa.Array, offsets: np.ndarray, data: np.ndarray) -> TypedColumn:
    return numeric_spans(offsets[:-1], offsets[1:], data, lambda rows: column.take(pa.array(rows)))


def numeric_spans(starts: np.ndarray, ends: np.ndarray, data: np.ndarray, strings=None) -> TypedColumn:
    """NUMERIC values data[starts[i]:ends[i]], all plain ASCII (`kernels.plain_ascii`).

    `strings(rows)` gives those values as an Arrow array; by default they
    are copied out of `data`.
    """
    values, status = kernels.parse_numbers(starts, ends, data, kernels.pow10())
    unsure = np.flatnonzero(status == kernels.STATUS_UNSURE)
    if len(unsure):
        # Long mantissas and big exponents need a correctly rounded parse.
        some = strings(unsure) if strings else pa.array(kernels.spans_to_strings(starts[unsure], ends[unsure], data))
        slow = numeric_checked(pc.utf8_trim_whitespace(some))
        values[unsure] = slow.values
        status[unsure] = np.where(slow.invalid, kernels.STATUS_INVALID, kernels.STATUS_VALID)
    return TypedColumn(values, status == kernels.STATUS_MISSING, status == kernels.STATUS_INVALID)


def _numeric_fast(trimmed: pa.Array) -> TypedColumn | None:
    """Plain cast when every cell is a finite number, which is the common case.

    Arrow's parser accepts a superset of NUMBER_REGEX (nan, inf), so any
    non-finite result sends the column down the checked path; anything it
    refuses (empty cells, text) does too. Tests check both paths agree.
    """
    if not len(trimmed) or pc.min(pc.binary_length(trimmed)).as_py() == 0:
        return None
    try:
        values = pc.cast(trimmed, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not np.isfinite(values).all():
        return None
    none = np.zeros(len(values), dtype=bool)
    return TypedColumn(values, none, none.copy())


def numeric_checked(trimmed: pa.Array) -> TypedColumn:
    missing = _bool(pc.equal(pc.binary_length(trimmed), 0))
    looks_numeric = pc.match_substring_regex(trimmed, NUMBER_REGEX)
    values = pc.cast(pc.if_else(looks_numeric, trimmed, _NULL_STRING), pa.float64())
    values = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    # Overflowing literals such as 1e999 parse to infinity; they are no more
    # usable than text, so they count as invalid.
    invalid = ~missing & ~np.isfinite(values)
    if invalid.any():
        values = values.copy()
        values[invalid] = np.nan
    return TypedColumn(values, missing, invalid)


def binary(column) -> TypedColumn:
    column = _strings(column)
    offsets, data = kernels.buffers(column)
    if kernels.plain_ascii(offsets, data):
        return binary_spans(offsets[:-1], offsets[1:], data)
    words = pc.utf8_lower(pc.utf8_trim_whitespace(column))
    missing = _bool(pc.equal(pc.binary_length(words), 0))
    is_true = _bool(pc.is_in(words, value_set=_TRUE))
    is_false = _bool(pc.is_in(words, value_set=_FALSE))
    values = np.full(len(missing), np.nan)
    values[is_true] = 1.0
    values[is_false] = 0.0
    return TypedColumn(values, missing, ~(missing | is_true | is_false))


def binary_spans(starts: np.ndarray, ends: np.ndarray, data: np.ndarray) -> TypedColumn:
    """BINARY values data[starts[i]:ends[i]], all plain ASCII (`kernels.plain_ascii`)."""
    codes = kernels.parse_binary(starts, ends, data)
    values = np.where(codes >= 0, codes, np.nan).astype(np.float64)
    return TypedColumn(values, codes == -1, codes == -2)


def tokens(column) -> pa.ListArray:
    """Whitespace-separated tokens per value; punctuation stays attached (spec 1.2)."""
    # Trimming first leaves empty tokens only for empty values, so the costly
    # filter below is needed only when a chunk has some.
    split = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(_strings(column)))
    flat = pc.list_flatten(split)
    if not len(flat) or pc.min(pc.binary_length(flat)).as_py() > 0:
        return split
    parents = pc.list_parent_indices(split)
    keep = pc.greater(pc.binary_length(flat), 0)
    words = pc.filter(flat, keep)
    counts = np.bincount(pc.filter(parents, keep).to_numpy(), minlength=len(split))
    offsets = np.zeros(len(split) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), words)


def is_missing_text(column) -> np.ndarray:
    return _bool(pc.equal(pc.binary_length(pc.utf8_trim_whitespace(_strings(column))), 0))
