"""SHA-256 of `prefix + str(offset)` for many offsets at once, compiled with numba.

A random split hashes every record (docs/behaviour.md, "Data rearrangement");
through hashlib that costs
about 1.4 us a record, which dominated ingestion. Here the prefix's whole
64-byte blocks are hashed once (the midstate) and only the tail block(s)
are compressed per record. The result is checked against hashlib in the tests.
"""
from __future__ import annotations

import hashlib

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a declared dependency
    numba = None

_K = np.array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
], dtype=np.int64)
_H0 = np.array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
], dtype=np.int64)


# Arithmetic is done on int64 holding 32-bit values, masked after every sum:
# numba widens uint32 operations, so relying on uint32 wrap-around is unsafe.
_M = 0xFFFFFFFF


def _rotr(x, n):
    return ((x >> n) | (x << (32 - n))) & _M


def _compress(state, block, k, w):
    for i in range(16):
        w[i] = (np.int64(block[4 * i]) << 24) | (np.int64(block[4 * i + 1]) << 16) \
            | (np.int64(block[4 * i + 2]) << 8) | np.int64(block[4 * i + 3])
    for i in range(16, 64):
        x = w[i - 15]
        y = w[i - 2]
        s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3)
        s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ (y >> 10)
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) & _M
    a, b, c, d, e, f, g, h = state[0], state[1], state[2], state[3], state[4], state[5], state[6], state[7]
    for i in range(64):
        t1 = (h + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ ((e ^ _M) & g)) + k[i] + w[i]) & _M
        t2 = ((_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) & _M
        h = g
        g = f
        f = e
        e = (d + t1) & _M
        d = c
        c = b
        b = a
        a = (t1 + t2) & _M
    state[0] = (state[0] + a) & _M
    state[1] = (state[1] + b) & _M
    state[2] = (state[2] + c) & _M
    state[3] = (state[3] + d) & _M
    state[4] = (state[4] + e) & _M
    state[5] = (state[5] + f) & _M
    state[6] = (state[6] + g) & _M
    state[7] = (state[7] + h) & _M


def _first_words(midstate, tail, prefix_len, offsets, k, out):
    """out[i] = first 8 digest bytes (big-endian uint64) of prefix + str(offsets[i])."""
    w = np.empty(64, dtype=np.int64)
    state = np.empty(8, dtype=np.int64)
    digits = np.empty(20, dtype=np.uint8)
    block = np.zeros(128, dtype=np.uint8)
    ntail = len(tail)
    for r in range(len(offsets)):
        value = offsets[r]
        nd = 0
        if value == 0:
            digits[0] = 48
            nd = 1
        while value > 0:
            digits[nd] = 48 + value % 10
            value //= 10
            nd += 1
        n = ntail + nd
        for i in range(ntail):
            block[i] = tail[i]
        for i in range(nd):
            block[ntail + i] = digits[nd - 1 - i]
        block[n] = 0x80
        nblocks = 1 if n + 9 <= 64 else 2
        end = 64 * nblocks
        for i in range(n + 1, end - 8):
            block[i] = 0
        bits = (prefix_len + nd) * 8
        for i in range(8):
            block[end - 1 - i] = (bits >> (8 * i)) & 0xFF
        for i in range(8):
            state[i] = midstate[i]
        _compress(state, block[0:64], k, w)
        if nblocks == 2:
            _compress(state, block[64:128], k, w)
        out[r] = (state[0] << 32) | state[1]


if numba is not None:
    _rotr = numba.njit(inline="always", cache=True)(_rotr)
    _compress = numba.njit(cache=True)(_compress)
    _first_words = numba.njit(cache=True)(_first_words)
    AVAILABLE = True
else:  # pragma: no cover
    AVAILABLE = False


def _midstate(prefix: bytes) -> tuple[np.ndarray, np.ndarray]:
    state = _H0.copy()
    whole = len(prefix) // 64 * 64
    w = np.empty(64, dtype=np.int64)
    for start in range(0, whole, 64):
        _compress(state, np.frombuffer(prefix[start:start + 64], dtype=np.uint8), _K, w)
    return state, np.frombuffer(prefix[whole:], dtype=np.uint8).copy()


def digest_words(prefix: bytes, offsets: np.ndarray) -> np.ndarray:
    """First 8 bytes of sha256(prefix + decimal offset), big-endian, as uint64."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.size and offsets.min() < 0:
        raise ValueError("offsets must be non-negative")
    if not AVAILABLE:  # pragma: no cover
        return np.array(
            [int.from_bytes(hashlib.sha256(prefix + str(o).encode()).digest()[:8], "big") for o in offsets.tolist()],
            dtype=np.uint64,
        )
    midstate, tail = _midstate(prefix)
    out = np.empty(len(offsets), dtype=np.int64)
    _first_words(midstate, tail, len(prefix), offsets, _K, out)
    # The int64 slots hold the raw 64 bits; reinterpret, don't convert.
    return out.view(np.uint64)
