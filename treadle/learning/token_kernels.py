"""Numba kernels over token bags.

A token bag for n rows is ``(counts[n], h[T], ln[T])``: row i owns the next
``counts[i]`` tokens, each given only by its M61 hash and byte length (see
``hashing``).  Strings come in as Arrow buffers: int64 offsets and uint8 data.
Kernels that expand tokens count first and fill second so memory is exact.
"""
from __future__ import annotations

import string

import numba as nb
import numpy as np

from .hashing import nb_concat, nb_push_byte

# Words are split on whitespace as the cell grammar defines it (str.isspace,
# the same set Arrow's utf8_split_whitespace uses; docs/behaviour.md, "Cells"),
# so statistics' word counts and the model's tokens agree. ASCII bytes are
# looked up here; the multi-byte spaces are matched in `_space_length`.
ASCII_SPACE = np.zeros(256, dtype=np.bool_)
for _b in range(128):
    ASCII_SPACE[_b] = chr(_b).isspace()
# no_punct trims ASCII punctuation (docs/behaviour.md, "Recipes").
PUNCT_BYTES = string.punctuation.encode()
PUNCT = np.zeros(256, dtype=np.bool_)
for _b in PUNCT_BYTES:
    PUNCT[_b] = True

H_SPACE = 0x20
H_UNDERSCORE = 0x5F


@nb.njit(nogil=True, cache=True, inline="always")
def _space_length(data, pos, end):
    """Bytes of the whitespace character at ``pos`` in UTF-8, 0 when it is none."""
    b = data[pos]
    if b < 0x80:
        return 1 if ASCII_SPACE[b] else 0
    if b == 0xC2:  # U+0085, U+00A0
        return 2 if pos + 1 < end and (data[pos + 1] == 0x85 or data[pos + 1] == 0xA0) else 0
    if pos + 2 >= end:
        return 0
    b1, b2 = data[pos + 1], data[pos + 2]
    if b == 0xE1:  # U+1680
        return 3 if b1 == 0x9A and b2 == 0x80 else 0
    if b == 0xE2:  # U+2000..U+200A, U+2028, U+2029, U+202F, U+205F
        if b1 == 0x80 and ((0x80 <= b2 <= 0x8A) or b2 == 0xA8 or b2 == 0xA9 or b2 == 0xAF):
            return 3
        return 3 if b1 == 0x81 and b2 == 0x9F else 0
    if b == 0xE3:  # U+3000
        return 3 if b1 == 0x80 and b2 == 0x80 else 0
    return 0


@nb.njit(nogil=True, cache=True)
def tokenize(offsets, data, strip, punct):
    """Whitespace tokens of every row (no_punct trimming when ``strip``).

    One pass into arrays sized for the worst case (a row of L bytes holds at
    most (L+1)//2 tokens): scanning twice cost three times as much as the
    extra temporary memory of one chunk."""
    n = offsets.shape[0] - 1
    cap = (data.shape[0] + n) // 2 + 1
    counts = np.zeros(n, dtype=np.int64)
    h = np.empty(cap, dtype=np.int64)
    ln = np.empty(cap, dtype=np.int64)
    k = 0
    for i in range(n):
        pos = offsets[i]
        end = offsets[i + 1]
        c = 0
        while pos < end:
            while pos < end:
                step = _space_length(data, pos, end)
                if step == 0:
                    break
                pos += step
            if pos >= end:
                break
            a = pos
            while pos < end and _space_length(data, pos, end) == 0:
                pos += 1
            b = pos
            if strip:
                while a < b and punct[data[a]]:
                    a += 1
                while b > a and punct[data[b - 1]]:
                    b -= 1
                if a == b:
                    continue  # a token of punctuation only disappears
            x = np.int64(0)
            for j in range(a, b):
                x = nb_push_byte(x, np.int64(data[j]))
            h[k] = x
            ln[k] = b - a
            k += 1
            c += 1
        counts[i] = c
    return counts, h[:k].copy(), ln[:k].copy()


@nb.njit(nogil=True, cache=True)
def whole_values(offsets, data):
    """One token per row: the whole string (categorical values)."""
    n = offsets.shape[0] - 1
    h = np.empty(n, dtype=np.int64)
    ln = np.empty(n, dtype=np.int64)
    for i in range(n):
        x = 0
        for j in range(offsets[i], offsets[i + 1]):
            x = nb_push_byte(x, np.int64(data[j]))
        h[i] = x
        ln[i] = offsets[i + 1] - offsets[i]
    return np.ones(n, dtype=np.int64), h, ln


@nb.njit(nogil=True, cache=True)
def join_tokens(counts, h, ln):
    """One token per row: the row's tokens joined by single spaces."""
    n = counts.shape[0]
    oh = np.empty(n, dtype=np.int64)
    oln = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(n):
        x = 0
        total = 0
        for t in range(counts[i]):
            if t > 0:
                x = nb_push_byte(x, H_SPACE)
                total += 1
            x = nb_concat(x, h[k], ln[k])
            total += ln[k]
            k += 1
        oh[i] = x
        oln[i] = total
    return np.ones(n, dtype=np.int64), oh, oln


@nb.njit(nogil=True, cache=True)
def ngrams(counts, h, ln, size):
    """All 1..size-grams of each row, joined by one space, in order of start
    position then length (the order the record path produces)."""
    n = counts.shape[0]
    out_counts = np.zeros(n, dtype=np.int64)
    for i in range(n):
        t = counts[i]
        for s in range(t):
            out_counts[i] += min(size, t - s)
    total = out_counts.sum()
    oh = np.empty(total, dtype=np.int64)
    oln = np.empty(total, dtype=np.int64)
    k = 0
    base = 0
    for i in range(n):
        t = counts[i]
        for s in range(t):
            x = h[base + s]
            length = ln[base + s]
            oh[k] = x
            oln[k] = length
            k += 1
            for e in range(s + 1, min(s + size, t)):
                x = nb_concat(nb_push_byte(x, H_SPACE), h[base + e], ln[base + e])
                length += 1 + ln[base + e]
                oh[k] = x
                oln[k] = length
                k += 1
        base += t
    return out_counts, oh, oln


@nb.njit(nogil=True, cache=True)
def osb_pairs(counts, h, ln, window):
    """Orthogonal sparse bigrams: each token paired with the next window-1
    tokens, joined by one '_' plus one more per skipped token."""
    n = counts.shape[0]
    out_counts = np.zeros(n, dtype=np.int64)
    for i in range(n):
        t = counts[i]
        for s in range(t):
            out_counts[i] += min(window - 1, t - 1 - s)
    total = out_counts.sum()
    oh = np.empty(total, dtype=np.int64)
    oln = np.empty(total, dtype=np.int64)
    k = 0
    base = 0
    for i in range(n):
        t = counts[i]
        for s in range(t):
            x = h[base + s]
            for e in range(s + 1, min(s + window, t)):
                x = nb_push_byte(x, H_UNDERSCORE)
                oh[k] = nb_concat(x, h[base + e], ln[base + e])
                oln[k] = ln[base + s] + (e - s) + ln[base + e]
                k += 1
        base += t
    return out_counts, oh, oln


@nb.njit(nogil=True, cache=True)
def cartesian_pairs(ca, ha, la, cb, hb, lb):
    """Every left token joined by '_' to every right token, row by row."""
    n = ca.shape[0]
    out_counts = ca * cb
    total = out_counts.sum()
    oh = np.empty(total, dtype=np.int64)
    oln = np.empty(total, dtype=np.int64)
    k = 0
    pa = 0
    pb = 0
    for i in range(n):
        for x in range(ca[i]):
            left = nb_push_byte(ha[pa + x], H_UNDERSCORE)
            for y in range(cb[i]):
                oh[k] = nb_concat(left, hb[pb + y], lb[pb + y])
                oln[k] = la[pa + x] + 1 + lb[pb + y]
                k += 1
        pa += ca[i]
        pb += cb[i]
    return out_counts, oh, oln


@nb.njit(nogil=True, cache=True)
def scatter_rows(counts, term_starts, cols, vals, indices, data):
    """Lay out per-term features row by row: ``counts[t, i]`` features of
    term t for row i, read from ``cols``/``vals`` at term t's cursor.  Writes
    are sequential, which is what makes this faster than one pass per term."""
    n_terms, n_rows = counts.shape
    cursor = term_starts.copy()
    k = 0
    for i in range(n_rows):
        for t in range(n_terms):
            c = counts[t, i]
            p = cursor[t]
            for j in range(c):
                indices[k] = cols[p + j]
                data[k] = vals[p + j]
                k += 1
            cursor[t] = p + c
