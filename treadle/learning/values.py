"""Reading NUMERIC and BINARY values from strings, in batch and one by one.

Both paths must classify every string the same way, so the accepted number
syntax is fixed by one regular expression rather than left to Arrow's or
Python's float parser (which disagree on "nan", "1_0", " 3 ").  Unparsable
or non-finite values count as missing (Decision 6).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NUMBER_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)
BINARY_TRUE = ("1", "y", "yes", "t", "true")
BINARY_FALSE = ("0", "n", "no", "f", "false")
_TRUE_SET, _FALSE_SET = frozenset(BINARY_TRUE), frozenset(BINARY_FALSE)
_ASCII_WS = " \t\n\r\x0b\x0c"


def parse_numeric(arr: pa.Array) -> np.ndarray:
    """float64 values, NaN where missing or invalid."""
    trimmed = pc.utf8_trim(arr, characters=_ASCII_WS)
    null = pa.scalar(None, trimmed.type)
    try:
        # Fast path: Arrow's parser accepts everything the pattern accepts and
        # otherwise only non-finite spellings ("nan", "inf"), which become
        # missing below anyway; any other string makes it raise.
        values = pc.cast(pc.if_else(pc.equal(trimmed, ""), null, trimmed), pa.float64())
    except pa.ArrowInvalid:
        ok = pc.match_substring_regex(trimmed, NUMBER_PATTERN)
        values = pc.cast(pc.if_else(ok, trimmed, null), pa.float64())
    out = values.to_numpy(zero_copy_only=False)
    return np.where(np.isfinite(out), out, np.nan)


def parse_numeric_value(text: str) -> float:
    text = text.strip(_ASCII_WS)
    if not _NUMBER.match(text):
        return math.nan
    value = float(text)
    return value if math.isfinite(value) else math.nan


def parse_binary(arr: pa.Array) -> np.ndarray:
    """int8 codes: 1 true, 0 false, -1 missing or invalid."""
    norm = pc.utf8_lower(pc.utf8_trim(arr, characters=_ASCII_WS))
    true = pc.is_in(norm, value_set=pa.array(BINARY_TRUE)).to_numpy(zero_copy_only=False)
    false = pc.is_in(norm, value_set=pa.array(BINARY_FALSE)).to_numpy(zero_copy_only=False)
    return np.where(true, 1, np.where(false, 0, -1)).astype(np.int8)


def parse_binary_value(text: str) -> int:
    norm = text.strip(_ASCII_WS).lower()
    if norm in _TRUE_SET:
        return 1
    if norm in _FALSE_SET:
        return 0
    return -1
