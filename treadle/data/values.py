"""Spellings of attribute values (spec 1.2), shared by inference and typed reading.

Kept in one place so that schema inference can never call a column NUMERIC or
BINARY whose values the reader would then count as invalid.
"""
from __future__ import annotations

import re

BINARY_FALSE = frozenset({"0", "n", "no", "f", "false"})
BINARY_TRUE = frozenset({"1", "y", "yes", "t", "true"})

# Plain decimal notation with optional exponent. NaN and infinities are left
# out on purpose: Python and Arrow would accept them, but they would poison
# means and sketches, and no CSV export writes them for real measurements.
NUMBER_REGEX = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER_REGEX)


def is_number(text: str) -> bool:
    return _NUMBER.fullmatch(text.strip()) is not None


def binary_value(text: str) -> int | None:
    """1 or 0 for a valid BINARY spelling, None otherwise."""
    word = text.strip().lower()
    if word in BINARY_TRUE:
        return 1
    if word in BINARY_FALSE:
        return 0
    return None
