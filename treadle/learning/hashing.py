"""Feature hashing: how a feature identity string becomes a column index.

Identity string of a feature = ``<term canonical text> + "\\x1f" + <token>``
(token ``""`` for a numeric value, ``"#missing"`` for a missing-value
indicator, the bin number for a quantile bin, the category or text token
otherwise).  Its UTF-8 bytes, read as one big-endian integer, are reduced
modulo the Mersenne prime M61 = 2**61 - 1; murmur3's 64-bit finaliser mixes
that value and the low ``bits`` bits are the column.

Why this particular string hash: modulo M61 a string's hash is
``concat(h(a), h(b), len(b)) = rotl61(h(a), 8*len(b) % 61) + h(b)``, so the
hash of an n-gram, an OSB pair, a cartesian product token or
"term + token" is built from the parts' hashes in O(1) without ever
materialising the joined strings, which keeps the numba kernels
allocation-free.  In Python the same value is ``int.from_bytes(b) % M61``,
a single C call, which keeps the single-record path fast.  The price: two
strings whose byte values differ by a multiple of M61 collide (e.g. bytes 61
positions apart swapped); at 2**61 that is negligible next to the bucket
collisions of a 2**22-column table.
"""
from __future__ import annotations

import numba as nb
import numpy as np

M61 = (1 << 61) - 1
SEP = b"\x1f"
_MASK64 = (1 << 64) - 1


# ------------------------------------------------------------ Python twins
def hash_bytes(data: bytes) -> int:
    return int.from_bytes(data, "big") % M61


def concat(h_left: int, h_right: int, len_right: int) -> int:
    s = (8 * len_right) % 61
    return (((h_left << s) % M61) + h_right) % M61


def fmix64(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _MASK64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _MASK64
    x ^= x >> 33
    return x


def column_of(prefix_hash: int, token: bytes, mask: int) -> int:
    return fmix64(concat(prefix_hash, hash_bytes(token), len(token))) & mask


def prefix_hash(canonical: str) -> int:
    return hash_bytes(canonical.encode("utf-8") + SEP)


# ------------------------------------------------------------ numba kernels
@nb.njit(nogil=True, inline="always", cache=True)
def nb_rotl61(h, s):
    if s == 0:
        return h
    # h < 2**61, so the low 61 bits of (h << s) are exact even when the shift
    # wraps past bit 63 in int64 arithmetic.
    return ((h << s) & M61) | (h >> (61 - s))


@nb.njit(nogil=True, inline="always", cache=True)
def nb_push_byte(h, b):
    x = nb_rotl61(h, 8) + b
    if x >= M61:
        x -= M61
    return x


@nb.njit(nogil=True, inline="always", cache=True)
def nb_concat(h_left, h_right, len_right):
    x = nb_rotl61(h_left, (8 * len_right) % 61) + h_right
    if x >= M61:
        x -= M61
    return x


@nb.njit(nogil=True, cache=True)
def nb_columns(h, ln, prefix_h, mask, out):
    """out[i] = column of the feature (prefix, token i)."""
    c1 = np.uint64(0xFF51AFD7ED558CCD)
    c2 = np.uint64(0xC4CEB9FE1A85EC53)
    s33 = np.uint64(33)
    m = np.uint64(mask)
    for i in range(h.shape[0]):
        x = np.uint64(nb_concat(prefix_h, h[i], ln[i]))
        x ^= x >> s33
        x *= c1
        x ^= x >> s33
        x *= c2
        x ^= x >> s33
        out[i] = np.int64(x & m)
