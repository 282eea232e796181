"""Compiled scans of a block of CSV lines: byte classes, line feeds, commas.

The reader looks at every byte of a block to find its lines and, for plain
blocks, its fields. Byte by byte that was two passes of about 5 ms per 4 MB
block; these read the block eight bytes at a time as little-endian uint64
words (`words`, the block's first len // 8 * 8 bytes viewed as uint64) and
branch only where a word holds a byte they look for, which is about once
per field.

A byte equal to c is found without carries between bytes: for v = x ^ c*8,
((v & 0x7F..) + 0x7F..) sets a byte's high bit when its low seven bits are
not all zero, so the high bit of ~(that | v) is set exactly at zero bytes.
"""
from __future__ import annotations

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

_U = np.uint64
_ONES = _U(0x0101010101010101)
_HIGH = _U(0x8080808080808080)
_LOW7 = _U(0x7F7F7F7F7F7F7F7F)
_FEEDS = _U(0x0A0A0A0A0A0A0A0A)
_COMMAS = _U(0x2C2C2C2C2C2C2C2C)
_QUOTES = _U(0x2222222222222222)
_CRS = _U(0x0D0D0D0D0D0D0D0D)
_TABS = _U(0x0909090909090909)
_DELS = _U(0x7F7F7F7F7F7F7F7F)
_SPACES = _U(0x6060606060606060)  # added to a byte's low seven bits, carries into bit 7 from 0x20 up


def words_of(arr: np.ndarray) -> np.ndarray:
    return arr[:len(arr) // 8 * 8].view(np.uint64)


@numba.njit(nogil=True, cache=True, inline="always")
def _equal(x, pattern):
    v = x ^ pattern
    return ~(((v & _LOW7) + _LOW7) | v) & _HIGH


@numba.njit(nogil=True, cache=True, inline="always")
def _flags(x, feeds):
    """Per byte of x, high bits: quotes, carriage returns, and bytes that are not plain."""
    below_space = ~(((x & _LOW7) + _SPACES) | x) & _HIGH
    control = (below_space & ~_equal(x, _TABS) & ~feeds) | _equal(x, _DELS)
    return _equal(x, _QUOTES), _equal(x, _CRS), control


@numba.njit(nogil=True, cache=True)
def block_flags(arr, words):
    """(line feeds, has a double quote, has a carriage return, every byte below 0x80, every byte
    besides line feeds plain in the sense of `kernels.plain_ascii`)."""
    feeds_seen = 0
    quotes = _U(0)
    crs = _U(0)
    control = _U(0)
    high = _U(0)
    for w in range(len(words)):
        x = words[w]
        feeds = _equal(x, _FEEDS)
        # Bit 7 of each byte to bit 0, summed across bytes by the multiply (at most 8).
        feeds_seen += np.int64((((feeds >> _U(7)) * _ONES) >> _U(56)))
        q, c, k = _flags(x, feeds)
        quotes |= q
        crs |= c
        control |= k
        high |= x
    tail = 0
    for p in range(len(words) * 8, len(arr)):
        b = arr[p]
        tail |= b
        feeds_seen += b == 0x0A
        quotes |= _U(b == 0x22)
        crs |= _U(b == 0x0D)
        control |= _U(((b < 0x20) and b != 0x09 and b != 0x0A) or b == 0x7F)
    ascii = (high & _HIGH) == 0 and tail < 0x80
    return feeds_seen, quotes != 0, crs != 0, ascii, ascii and control == 0


@numba.njit(nogil=True, cache=True)
def line_feeds(arr, words, count):
    """Positions of the `count` line feeds."""
    out = np.empty(count, dtype=np.int64)
    k = 0
    for w in range(len(words)):
        m = _equal(words[w], _FEEDS)
        while m:
            out[k] = w * 8 + (trailing_zeros(m) >> 3)
            k += 1
            m &= m - _U(1)
    for p in range(len(words) * 8, len(arr)):
        if arr[p] == 0x0A:
            out[k] = p
            k += 1
    return out


@numba.njit(nogil=True, cache=True)
def split_lines(arr, words, count, width):
    """Lines and comma positions of a block without quotes or carriage returns.

    `count` is the block's line feeds; a last line without one is a line too.
    Returns per line its end (line feed excluded), its field count, and where
    it has at least `width` fields, its first width - 1 comma positions in cuts.
    """
    lines = count + (1 if len(arr) and arr[len(arr) - 1] != 0x0A else 0)
    ends = np.empty(lines, dtype=np.int64)
    cuts = np.empty((lines, max(width - 1, 1)), dtype=np.int64)
    fields = np.empty(lines, dtype=np.int64)
    line = 0
    f = 0
    for w in range(len(words)):
        x = words[w]
        m = _equal(x, _COMMAS) | _equal(x, _FEEDS)
        while m:
            p = w * 8 + (trailing_zeros(m) >> 3)
            if arr[p] == 0x2C:
                if f < width - 1:
                    cuts[line, f] = p
                f += 1
            else:
                ends[line] = p
                fields[line] = f + 1
                line += 1
                f = 0
            m &= m - _U(1)
    for p in range(len(words) * 8, len(arr)):
        b = arr[p]
        if b == 0x2C:
            if f < width - 1:
                cuts[line, f] = p
            f += 1
        elif b == 0x0A:
            ends[line] = p
            fields[line] = f + 1
            line += 1
            f = 0
    if line < lines:
        ends[line] = len(arr)
        fields[line] = f + 1
    return ends, cuts, fields


@numba.njit(nogil=True, cache=True)
def malformed_lines(arr, starts, ends, codes):
    """Per line [starts[i], ends[i]) of ``arr``: 0 if its quoting is sound,
    else 2 (a quote opens a value mid-field), 3 (characters follow a closing
    quote), 4 (an odd number of quotes) or 1 (a carriage return inside the
    line), the first that applies in that order. Returns whether any line is
    malformed. One pass over the bytes; the numpy version this replaces made
    a dozen passes over arrays as long as the block's quotes."""
    found = False
    for i in range(starts.shape[0]):
        s = starts[i]
        e = ends[i]
        rank = 0
        bad_open = False
        bad_close = False
        cr = False
        for p in range(s, e):
            b = arr[p]
            if b == 34:
                if rank & 1 == 0:
                    if p != s:
                        prev = arr[p - 1]
                        if prev != 44 and prev != 34:
                            bad_open = True
                elif p + 1 < e:
                    nxt = arr[p + 1]
                    if nxt != 44 and nxt != 34:
                        bad_close = True
                rank += 1
            elif b == 13:
                cr = True
        code = 0
        if bad_open:
            code = 2
        elif bad_close:
            code = 3
        elif rank & 1:
            code = 4
        elif cr:
            code = 1
        codes[i] = code
        if code:
            found = True
    return found
