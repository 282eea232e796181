"""The grammar of a cell: what a NUMERIC or BINARY value may look like, the
whitespace around a value, and what is missing (docs/behaviour.md, "Cells").

Every reader takes the rule from here, in one of three forms:

* scalar, one string at a time: schema inference, the console's sampling,
  Predict's record path;
* Arrow, a column at a time: the typed columns of a record chunk (statistics,
  training, evaluation, batch prediction) and the feature pipeline;
* numba, over the byte spans of plain-ASCII fields: the records reader's fast
  path, taken only where `kernels.plain_ascii` holds.

The forms share the spellings, the number pattern and the whitespace set
below, so they agree by construction where they can; where they are separate
code (Arrow's float parser, the compiled loops), tests/data/test_cells.py
feeds them random cells and checks that they agree with each other and with
the scalar form.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from treadle.data import kernels

BINARY_TRUE = ("1", "y", "yes", "t", "true")
BINARY_FALSE = ("0", "n", "no", "f", "false")

# Plain decimal notation with an optional exponent. NaN and infinities are
# left out on purpose: Python and Arrow would accept them, but they would
# poison means and sketches, and no CSV export writes them for measurements.
NUMBER_PATTERN = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)

# Whitespace is what Python's str.isspace() says it is; Arrow's
# utf8_trim_whitespace and utf8_split_whitespace use the very same set. In
# plain ASCII (`kernels.plain_ascii`) only the space and the tab are left.

# A BINARY cell's code: 1 or 0 for a value, else one of these.
MISSING, INVALID = -1, -2

_TRUE_SET, _FALSE_SET = frozenset(BINARY_TRUE), frozenset(BINARY_FALSE)


# -- scalar ------------------------------------------------------------------------

def is_missing(text: str) -> bool:
    return not text.strip()


def number_value(text: str) -> float:
    """A NUMERIC cell's value; NaN when it is missing or invalid."""
    text = text.strip()
    if not _NUMBER.match(text):
        return math.nan
    value = float(text)
    # Overflowing literals such as 1e999 are no more usable than text.
    return value if math.isfinite(value) else math.nan


def is_number(text: str) -> bool:
    return not math.isnan(number_value(text))


def binary_value(text: str) -> int:
    """A BINARY cell's code: 1, 0, MISSING or INVALID. The spellings are ASCII
    and compared without regard to case."""
    word = text.strip().lower()
    if word in _TRUE_SET:
        return 1
    if word in _FALSE_SET:
        return 0
    return INVALID if word else MISSING


# -- Arrow -------------------------------------------------------------------------

@dataclass(frozen=True)
class TypedColumn:
    """A NUMERIC or BINARY column's values, with missing and invalid cells told apart."""

    values: np.ndarray  # float64; NaN where missing or invalid
    missing: np.ndarray  # bool
    invalid: np.ndarray  # bool

    @cached_property
    def valid(self) -> np.ndarray:
        return ~(self.missing | self.invalid)

    def take(self, keep: np.ndarray) -> TypedColumn:
        return TypedColumn(self.values[keep], self.missing[keep], self.invalid[keep])


_NULL_STRING = pa.scalar(None, pa.string())
_TRUE = pa.array(BINARY_TRUE)
_FALSE = pa.array(BINARY_FALSE)


def _strings(column) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column


def _bool(array: pa.Array) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def trim(column) -> pa.Array:
    return pc.utf8_trim_whitespace(_strings(column))


def is_missing_column(column) -> np.ndarray:
    return _bool(pc.equal(pc.binary_length(trim(column)), 0))


def numeric(column) -> TypedColumn:
    column = _strings(column)
    offsets, data = kernels.buffers(column)
    if kernels.plain_ascii(offsets, data):
        return numeric_spans(offsets[:-1], offsets[1:], data, lambda rows: column.take(pa.array(rows)))
    trimmed = trim(column)
    fast = _numeric_fast(trimmed)
    if fast is not None:
        return fast
    return numeric_checked(trimmed)


def numeric_spans(starts: np.ndarray, ends: np.ndarray, data: np.ndarray, strings=None) -> TypedColumn:
    """NUMERIC values data[starts[i]:ends[i]], all plain ASCII (`kernels.plain_ascii`).

    `strings(rows)` gives those values as an Arrow array; by default they
    are copied out of `data`.
    """
    values, status = parse_numbers(starts, ends, data, _POW10)
    unsure = np.flatnonzero(status == _UNSURE)
    if len(unsure):
        # Long mantissas and big exponents need a correctly rounded parse.
        some = strings(unsure) if strings else pa.array(kernels.spans_to_strings(starts[unsure], ends[unsure], data))
        slow = numeric_checked(trim(some))
        values[unsure] = slow.values
        status[unsure] = np.where(slow.invalid, _INVALID, _VALID)
    return TypedColumn(values, status == _MISSING, status == _INVALID)


def _numeric_fast(trimmed: pa.Array) -> TypedColumn | None:
    """Plain cast when every cell is a finite number, which is the common case.

    Arrow's parser accepts the finite numbers NUMBER_PATTERN accepts and
    otherwise only non-finite spellings (nan, inf), so any non-finite result
    sends the column down the checked path; anything it refuses (empty
    cells, text) does too.
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
    looks_numeric = pc.match_substring_regex(trimmed, NUMBER_PATTERN)
    values = pc.cast(pc.if_else(looks_numeric, trimmed, _NULL_STRING), pa.float64())
    values = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    invalid = ~missing & ~np.isfinite(values)
    if invalid.any():
        values = values.copy()
        values[invalid] = np.nan
    return TypedColumn(values, missing, invalid)


def binary_codes(column) -> np.ndarray:
    """int8 codes of a BINARY column, as `binary_value`'s."""
    column = _strings(column)
    offsets, data = kernels.buffers(column)
    if kernels.plain_ascii(offsets, data):
        return parse_binary(offsets[:-1], offsets[1:], data)
    words = trim(column)
    # ASCII lower-casing only: a spelling is ASCII, and Unicode case rules
    # map a few other letters onto ASCII ones (U+212A, the Kelvin sign, to k).
    lowered = pc.ascii_lower(words)
    codes = np.where(_bool(pc.equal(pc.binary_length(words), 0)), MISSING, INVALID).astype(np.int8)
    codes[_bool(pc.is_in(lowered, value_set=_TRUE))] = 1
    codes[_bool(pc.is_in(lowered, value_set=_FALSE))] = 0
    return codes


def binary(column) -> TypedColumn:
    return _binary_column(binary_codes(column))


def binary_spans(starts: np.ndarray, ends: np.ndarray, data: np.ndarray) -> TypedColumn:
    """BINARY values data[starts[i]:ends[i]], all plain ASCII (`kernels.plain_ascii`)."""
    return _binary_column(parse_binary(starts, ends, data))


def _binary_column(codes: np.ndarray) -> TypedColumn:
    values = np.where(codes >= 0, codes, np.nan).astype(np.float64)
    return TypedColumn(values, codes == MISSING, codes == INVALID)


def tokens(column) -> pa.ListArray:
    """A TEXT column's whitespace-separated words; punctuation stays attached."""
    # Trimming first leaves empty tokens only for empty values, so the costly
    # filter below is needed only when a chunk has some.
    split = pc.utf8_split_whitespace(trim(column))
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


# -- numba, over plain-ASCII spans ----------------------------------------------------

_VALID, _MISSING, _INVALID, _UNSURE = 0, 1, 2, 3
_POW10 = np.array([10.0 ** i for i in range(23)])  # exactly representable
_MAX_EXACT = 1 << 53


def _packed(word: str) -> int:
    key = 0
    for byte in word.encode("ascii"):
        key = key * 256 + byte
    return key


_KEYS = np.array([_packed(w) for w in BINARY_TRUE + BINARY_FALSE], dtype=np.int64)
_CODES = np.array([1] * len(BINARY_TRUE) + [0] * len(BINARY_FALSE), dtype=np.int8)
_LONGEST = max(len(w) for w in BINARY_TRUE + BINARY_FALSE)


@numba.njit(nogil=True, cache=True, inline="always")
def _trim(data, s, e):
    # In plain ASCII the space and the tab are the only whitespace bytes.
    while s < e and (data[s] == 0x20 or data[s] == 0x09):
        s += 1
    while e > s and (data[e - 1] == 0x20 or data[e - 1] == 0x09):
        e -= 1
    return s, e


@numba.njit(nogil=True, cache=True)
def _trim_spans(starts, ends, data):
    trimmed_starts = np.empty_like(starts)
    trimmed_ends = np.empty_like(ends)
    for i in range(len(starts)):
        trimmed_starts[i], trimmed_ends[i] = _trim(data, starts[i], ends[i])
    return trimmed_starts, trimmed_ends


def value_spans(starts: np.ndarray, ends: np.ndarray, data: np.ndarray, plain: bool, column):
    """Each value without the whitespace around it, as spans of bytes: those
    given when they are plain ASCII, else those of ``column`` (the same
    values as an Arrow array) trimmed."""
    if plain:
        return (*_trim_spans(starts, ends, data), data)
    offsets, trimmed = kernels.buffers(trim(column))
    return offsets[:-1], offsets[1:], trimmed


@numba.njit(nogil=True, cache=True)
def parse_numbers(starts, ends, data, pow10):
    """Decimal numbers (NUMBER_PATTERN) to float64, with a status per value.

    Only values that need one rounding are converted here (Clinger's fast
    path: at most 2**53 as an integer mantissa, power of ten within 22), so
    results equal a correctly rounded parse; longer mantissas and larger
    exponents are _UNSURE, for the caller to parse with Arrow.
    """
    n = len(starts)
    values = np.full(n, np.nan)
    status = np.zeros(n, dtype=np.int8)
    for i in range(n):
        s, e = _trim(data, starts[i], ends[i])
        if s == e:
            status[i] = _MISSING
            continue
        p = s
        negative = False
        if data[p] == 0x2B or data[p] == 0x2D:
            negative = data[p] == 0x2D
            p += 1
        mantissa = np.uint64(0)
        digits = 0  # significant digits in mantissa
        whole = 0
        scale = 0
        too_long = False
        while p < e and 0x30 <= data[p] <= 0x39:
            d = data[p] - 0x30
            if digits < 19:
                if digits or d:
                    mantissa = mantissa * np.uint64(10) + np.uint64(d)
                    digits += 1
            else:
                too_long = True
            whole += 1
            p += 1
        fraction = 0
        if p < e and data[p] == 0x2E:
            p += 1
            while p < e and 0x30 <= data[p] <= 0x39:
                d = data[p] - 0x30
                if digits < 19:
                    if digits or d:
                        mantissa = mantissa * np.uint64(10) + np.uint64(d)
                        digits += 1
                    scale -= 1
                else:
                    too_long = True
                fraction += 1
                p += 1
        if whole == 0 and fraction == 0:
            status[i] = _INVALID
            continue
        if too_long:
            # Digits past the 19th were dropped; a whole-number part's
            # dropped digits still scale the value.
            status[i] = _UNSURE
        exponent = 0
        if p < e and (data[p] == 0x45 or data[p] == 0x65):
            p += 1
            exp_negative = False
            if p < e and (data[p] == 0x2B or data[p] == 0x2D):
                exp_negative = data[p] == 0x2D
                p += 1
            exp_digits = 0
            while p < e and 0x30 <= data[p] <= 0x39:
                if exponent < 100000:
                    exponent = exponent * 10 + (data[p] - 0x30)
                exp_digits += 1
                p += 1
            if exp_digits == 0:
                status[i] = _INVALID
                continue
            if exp_negative:
                exponent = -exponent
        if p != e:
            status[i] = _INVALID
            continue
        if status[i] == _UNSURE:
            continue
        power = scale + exponent
        if mantissa == 0:
            value = 0.0
        elif mantissa <= np.uint64(_MAX_EXACT) and -22 <= power <= 22:
            value = float(mantissa)
            if power >= 0:
                value *= pow10[power]
            else:
                value /= pow10[-power]
        else:
            status[i] = _UNSURE
            continue
        values[i] = -value if negative else value
    return values, status


@numba.njit(nogil=True, cache=True, inline="always")
def _lowered_key(data, s, e):
    """data[s:e] lower-cased (ASCII letters) and packed into one integer, as `_packed` packs a spelling."""
    key = 0
    for p in range(s, e):
        b = data[p]
        if 0x41 <= b <= 0x5A:
            b += 0x20
        key = key * 256 + b
    return key


@numba.njit(nogil=True, cache=True)
def parse_binary(starts, ends, data):
    """`binary_value`'s code per value."""
    out = np.empty(len(starts), dtype=np.int8)
    for i in range(len(starts)):
        s, e = _trim(data, starts[i], ends[i])
        out[i] = MISSING if s == e else INVALID
        if s == e or e - s > _LONGEST:
            continue
        key = _lowered_key(data, s, e)
        for j in range(len(_KEYS)):
            if key == _KEYS[j]:
                out[i] = _CODES[j]
                break
    return out
