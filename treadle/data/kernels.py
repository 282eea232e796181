"""Compiled loops over the raw buffers of Arrow string arrays.

Arrow compute builds a new array for every step (trim, lower, split, flatten,
count), so a statistic over a text column touched its bytes many times and
handed Python one object per distinct value. These kernels read the offsets
and data buffers directly, once, and release the GIL so statistics workers
overlap with each other and with the CSV reader.

The kernels only handle plain ASCII. Callers check `plain_ascii` first and
keep the Arrow path for anything else, so Unicode whitespace and case rules
stay exactly Arrow's. NUMERIC and BINARY cells are parsed in `cells`, with
the rest of a cell's grammar.

Values are identified by a 64-bit hash of their bytes. Tables compare bytes
as well, so exact counts never merge two values; the hyperloglog sketch uses
the hash alone.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import pyarrow as pa
from numba.cpython.unsafe.numbers import trailing_zeros

from treadle.data.intrinsics import bswap64, load8

_U = np.uint64
_FNV_OFFSET = _U(0xCBF29CE484222325)
_MIX1 = _U(0xFF51AFD7ED558CCD)
_MIX2 = _U(0xC4CEB9FE1A85EC53)
_S33 = _U(33)

HLL_P = 14  # 2**14 registers: relative standard error about 0.8 %


def buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string array without copying; offsets index into data."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.string():
        array = array.cast(pa.string())
    _, offsets, data = array.buffers()
    offs = np.frombuffer(offsets, dtype=np.int32)[array.offset:array.offset + len(array) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return offs, raw


_NOT_PLAIN = np.array([b >= 0x7F or (b < 0x20 and b != 0x09) for b in range(256)], dtype=np.uint8)


@numba.njit(nogil=True, cache=True)
def _count_not_plain(data, start, end, table):
    bad = 0
    for i in range(start, end):
        bad += table[data[i]]
    return bad


def plain_ascii(offsets: np.ndarray, data: np.ndarray) -> bool:
    """True when every byte is printable ASCII, a space or a tab.

    Other control characters are excluded because Arrow and Python disagree
    on which of them are whitespace; such data takes the Arrow path.
    """
    if len(offsets) == 0 or offsets[0] == offsets[-1]:
        return True
    segment = data[offsets[0]:offsets[-1]]
    if segment.min() >= 0x20 and segment.max() < 0x7F:
        return True  # the common case, with two vectorized scans
    return _count_not_plain(data, int(offsets[0]), int(offsets[-1]), _NOT_PLAIN) == 0


# Values of up to 8 bytes hash their bytes packed big-endian (a bijection,
# see the value tables below); longer ones fold 8 bytes at a time. Both read
# eight-byte loads where the buffer has 8 bytes left.
_HIGH = _U(0x8080808080808080)
_LOW7 = _U(0x7F7F7F7F7F7F7F7F)
_ABOVE_SPACE = _U(0x5F5F5F5F5F5F5F5F)  # added to a byte's low seven bits, carries into bit 7 from 0x21 up
_S29 = _U(29)


@numba.njit(nogil=True, cache=True, inline="always")
def _low_bytes(x, k):
    """The k (0-8) low bytes of x, the others zero."""
    return x if k >= 8 else x & ((_U(1) << _U(8 * k)) - _U(1))


@numba.njit(nogil=True, cache=True, inline="always")
def _block(data, p, e):
    """data[p:min(p + 8, e)] as a little-endian uint64, zero-padded."""
    if p + 8 <= len(data):
        return _low_bytes(load8(data, p), e - p)
    x = _U(0)
    for q in range(p, min(p + 8, e)):
        x |= _U(data[q]) << _U(8 * (q - p))
    return x


@numba.njit(nogil=True, cache=True, inline="always")
def _stops(x, rest):
    """High bit of each byte of the little-endian x that ends a plain-ASCII word: a byte
    up to 0x20 (a space or a tab), or one from `rest` on, past the value's end."""
    spaces = ~(((x & _LOW7) + _ABOVE_SPACE) | x) & _HIGH
    return spaces if rest >= 8 else spaces | (_HIGH << _U(8 * rest))


@numba.njit(nogil=True, cache=True, inline="always")
def _short_hash(x, size):
    """Hash of a value of 1-8 bytes held in the low bytes of x (higher bytes are shifted out)."""
    return _mix(bswap64(x << _U(64 - 8 * size)))


@numba.njit(nogil=True, cache=True, inline="always")
def _fold(h, block):
    h = (h ^ block) * _MIX1
    return h ^ (h >> _S29)


@numba.njit(nogil=True, cache=True, inline="always")
def _word_hash(data, s, e):
    size = e - s
    if size <= 0:
        return _mix(_U(0))
    if size <= 8:
        return _short_hash(_block(data, s, e), size)
    h = _FNV_OFFSET
    for p in range(s, e, 8):
        h = _fold(h, _block(data, p, e))
    return _mix(h ^ _U(size))


@numba.njit(nogil=True, cache=True, inline="always")
def _mix(h):
    h ^= h >> _S33
    h *= _MIX1
    h ^= h >> _S33
    h *= _MIX2
    h ^= h >> _S33
    return h


@numba.njit(nogil=True, cache=True, inline="always")
def _hash(data, start, end):
    return _word_hash(data, start, end)


@numba.njit(nogil=True, cache=True)
def hash_values(offsets, data):
    return hash_spans(offsets[:-1], offsets[1:], data)


@numba.njit(nogil=True, cache=True)
def hash_spans(starts, ends, data):
    out = np.empty(len(starts), dtype=np.uint64)
    for i in range(len(starts)):
        out[i] = _hash(data, starts[i], ends[i])
    return out


@numba.njit(nogil=True, cache=True, inline="always")
def _same(data, a0, a1, b0, b1):
    if a1 - a0 != b1 - b0:
        return False
    for k in range(a1 - a0):
        if data[a0 + k] != data[b0 + k]:
            return False
    return True


# The tables below grow between calls of an inner loop rather than inside it:
# numba reference-counts arrays that are reassigned in a loop on every
# iteration, which made the loops several times slower.

@numba.njit(nogil=True, cache=True)
def _rehash(slots, hashes, found, need):
    cap = len(slots)
    while 2 * need > cap:
        cap *= 2
    mask = np.uint64(cap - 1)
    bigger = np.full(cap, -1, dtype=np.int64)
    for k in range(found):
        j = np.int64(hashes[k] & mask)
        while bigger[j] >= 0:
            j = (j + 1) & (cap - 1)
        bigger[j] = k
    return bigger


@numba.njit(nogil=True, cache=True)
def _bigger(array, size):
    if size <= len(array):
        return array
    cap = len(array)
    while cap < size:
        cap *= 2
    out = np.empty(cap, dtype=array.dtype)
    out[:len(array)] = array
    return out


@numba.njit(nogil=True, cache=True)
def _distinct_run(starts, ends, data, i, slots, hashes, counts, first, codes, found):
    n = len(starts)
    mask = len(slots) - 1
    room = min(len(hashes), len(slots) // 2)
    while i < n and found < room:
        s, e = starts[i], ends[i]
        h = _hash(data, s, e)
        j = np.int64(h & np.uint64(mask))
        while True:
            k = slots[j]
            if k < 0:
                slots[j] = found
                hashes[found] = h
                counts[found] = 1
                first[found] = i
                codes[i] = found
                found += 1
                break
            if hashes[k] == h and _same(data, starts[first[k]], ends[first[k]], s, e):
                counts[k] += 1
                codes[i] = k
                break
            j = (j + 1) & mask
        i += 1
    return i, found


@numba.njit(nogil=True, cache=True)
def distinct(starts, ends, data, expect=64):
    """Distinct byte strings among data[starts[i]:ends[i]], in first-seen order.

    Returns codes (per item, its distinct index), and per distinct value its
    hash, count and first item. The table grows with the distinct values,
    not the items, so it stays in cache for low-cardinality columns.
    """
    n = len(starts)
    room = 128
    while room < min(expect, n):
        room *= 2
    slots = np.full(2 * room, -1, dtype=np.int64)
    hashes = np.empty(room, dtype=np.uint64)
    counts = np.zeros(room, dtype=np.int64)
    first = np.empty(room, dtype=np.int64)
    codes = np.empty(n, dtype=np.int64)
    i = 0
    found = 0
    while i < n:
        i, found = _distinct_run(starts, ends, data, i, slots, hashes, counts, first, codes, found)
        if i < n:
            need = found + 1
            hashes = _bigger(hashes, need)
            counts = _bigger(counts, need)
            first = _bigger(first, need)
            slots = _rehash(slots, hashes, found, need)
    return codes, hashes[:found], counts[:found], first[:found]


# A value table keeps each distinct value in its slot: [hash, count, arena
# start, size] (size -1: empty), so that a repeated value costs one cache
# line, and the value's bytes in an arena of its own, so that the table
# outlives the chunk it was filled from. Values of up to 8 bytes hash their
# packed bytes through a bijection, so equal hashes and sizes prove equal
# values without reading the arena. The kernels stop, rather than grow or
# purge the table themselves, when an insert would exceed `meta[M_STOP]`
# entries or the arena; the caller makes room and calls again from where
# they stopped (see `sketches.ValueCounter`).
TABLE_WIDTH = 4
M_ENTRIES, M_USED, M_STOP, M_NEED = 0, 1, 2, 3


@numba.njit(nogil=True, cache=True)
def table_new(slots):
    table = np.zeros(slots * TABLE_WIDTH, dtype=np.int64)
    for j in range(slots):
        table[j * TABLE_WIDTH + 3] = -1
    return table


@numba.njit(nogil=True, cache=True, inline="always")
def _hll_add(registers, h):
    p = np.uint64(HLL_P)
    index = np.int64(h >> (np.uint64(64) - p))
    rest = h << p
    rank = 1
    while rank <= 64 - HLL_P and not (rest & np.uint64(0x8000000000000000)):
        rest = rest << np.uint64(1)
        rank += 1
    if rank > registers[index]:
        registers[index] = rank


@numba.njit(nogil=True, cache=True, inline="always")
def _same_bytes(a, a0, b, b0, size):
    for k in range(size):
        if a[a0 + k] != b[b0 + k]:
            return False
    return True


@numba.njit(nogil=True, cache=True)
def table_add(starts, ends, data, hashes, counts, k, table, arena, meta, registers, sketching):
    """Add counts[i] of data[starts[i]:ends[i]] for i from k; returns where it stopped."""
    n = len(starts)
    mask = np.uint64(len(table) // TABLE_WIDTH - 1)
    while k < n:
        s, e, h = starts[k], ends[k], hashes[k]
        size = e - s
        hs = np.int64(h)
        j = np.int64(h & mask)
        while True:
            at = j * TABLE_WIDTH
            z = table[at + 3]
            if z < 0:
                used = meta[M_USED]
                if meta[M_ENTRIES] >= meta[M_STOP] or used + size > len(arena):
                    meta[M_NEED] = size
                    return k
                table[at] = hs
                table[at + 1] = counts[k]
                table[at + 2] = used
                table[at + 3] = size
                for b in range(size):
                    arena[used + b] = data[s + b]
                meta[M_USED] = used + size
                meta[M_ENTRIES] += 1
                if sketching:
                    # A value enters the table once per stay, so the register
                    # update is paid per distinct value, not per occurrence.
                    _hll_add(registers, h)
                break
            if table[at] == hs and z == size and (size <= 8 or _same_bytes(arena, table[at + 2], data, s, size)):
                table[at + 1] += counts[k]
                break
            j = (j + np.int64(1)) & np.int64(mask)
        k += 1
    return k


@numba.njit(nogil=True, cache=True)
def find_keys(keys, values, wanted, out):
    """out[i] = values[j] where keys[j] == wanted[i]; out[i] is left alone where no key matches."""
    cap = 16
    while cap < 2 * len(keys):
        cap *= 2
    mask = np.uint64(cap - 1)
    slots = np.full(cap, -1, dtype=np.int64)
    for j in range(len(keys)):
        at = np.int64(_mix(keys[j]) & mask)
        while slots[at] >= 0:
            at = (at + 1) & (cap - 1)
        slots[at] = j
    for i in range(len(wanted)):
        w = wanted[i]
        at = np.int64(_mix(w) & mask)
        while slots[at] >= 0:
            if keys[slots[at]] == w:
                out[i] = values[slots[at]]
                break
            at = (at + 1) & (cap - 1)


@numba.njit(nogil=True, cache=True)
def table_median(table):
    """The median count of the table's values."""
    counts = np.empty(len(table) // TABLE_WIDTH, dtype=np.int64)
    n = 0
    for j in range(len(counts)):
        if table[j * TABLE_WIDTH + 3] >= 0:
            counts[n] = table[j * TABLE_WIDTH + 1]
            n += 1
    return np.median(counts[:n]) if n else 0.0


@numba.njit(nogil=True, cache=True)
def table_add_words(starts, ends, data, cursor, per_value, lengths, table, arena, meta, registers, sketching):
    """Count the whitespace-separated words of each value into the table.

    `cursor` is [value, byte position, words so far in that value], so a
    stop for room resumes at the word that did not fit. Fills words per value
    and the word length range (`lengths`: shortest, longest).
    """
    n = len(starts)
    i, p, words = cursor[0], cursor[1], cursor[2]
    shortest, longest = lengths[0], lengths[1]
    mask = np.uint64(len(table) // TABLE_WIDTH - 1)
    stopped = False
    while i < n:
        if p < starts[i]:
            p = starts[i]
        end = ends[i]
        while p < end:
            # In plain ASCII the only bytes up to 0x20 are the space and the
            # tab, so one comparison finds either.
            while p < end and data[p] <= 0x20:
                p += 1
            if p == end:
                break
            s = p
            # The word's end and hash (as _word_hash) from eight-byte loads:
            # byte by byte, the branch at every word's end mispredicted.
            if s + 8 <= len(data):
                first = load8(data, s)
                stops = _stops(first, end - s)
                if stops:
                    size = np.int64(trailing_zeros(stops) >> 3)
                    h = _short_hash(first, size)
                else:
                    h = _fold(_FNV_OFFSET, first)
                    q = s + 8
                    while True:
                        if q + 8 > len(data):
                            r = q
                            while r < end and data[r] > 0x20:
                                r += 1
                            if r > q:
                                h = _fold(h, _block(data, q, r))
                            q = r
                            break
                        x = load8(data, q)
                        stops = _stops(x, end - q)
                        if stops:
                            k = np.int64(trailing_zeros(stops) >> 3)
                            if k:
                                h = _fold(h, _low_bytes(x, k))
                            q += k
                            break
                        h = _fold(h, x)
                        q += 8
                    size = q - s
                    h = _short_hash(first, 8) if size == 8 else _mix(h ^ _U(size))
                p = s + size
            else:
                while p < end and data[p] > 0x20:
                    p += 1
                size = p - s
                h = _word_hash(data, s, p)
            # The table lookup is written out here (as in table_add): as a
            # call, even an inlined one, it made this loop 1.6 times slower.
            hs = np.int64(h)
            j = np.int64(h & mask)
            while True:
                at = j * TABLE_WIDTH
                z = table[at + 3]
                if z < 0:
                    used = meta[M_USED]
                    if meta[M_ENTRIES] >= meta[M_STOP] or used + size > len(arena):
                        meta[M_NEED] = size
                        stopped = True
                        break
                    table[at] = hs
                    table[at + 1] = 1
                    table[at + 2] = used
                    table[at + 3] = size
                    for k in range(size):
                        arena[used + k] = data[s + k]
                    meta[M_USED] = used + size
                    meta[M_ENTRIES] += 1
                    if sketching:
                        _hll_add(registers, h)
                    break
                if table[at] == hs and z == size and (
                        size <= 8 or _same_bytes(arena, table[at + 2], data, s, size)):
                    table[at + 1] += 1
                    break
                j = (j + np.int64(1)) & np.int64(mask)
            if stopped:
                p = s
                break
            words += 1
            if size < shortest:
                shortest = size
            if size > longest:
                longest = size
        if stopped:
            break
        per_value[i] = words
        words = 0
        i += 1
    cursor[0], cursor[1], cursor[2] = i, p, words
    lengths[0], lengths[1] = shortest, longest
    return i


@numba.njit(nogil=True, cache=True)
def table_rebuild(table, arena, slots, arena_size, subtract):
    """A table of `slots` slots holding the entries whose count exceeds `subtract`,
    less `subtract`, with their bytes packed into a new arena; and the new meta."""
    out = table_new(slots)
    packed = np.empty(arena_size, dtype=np.uint8)
    mask = slots - 1
    entries = 0
    used = 0
    for j in range(len(table) // TABLE_WIDTH):
        at = j * TABLE_WIDTH
        size = table[at + 3]
        if size < 0 or table[at + 1] <= subtract:
            continue
        k = np.int64(np.uint64(table[at]) & np.uint64(mask))
        while out[k * TABLE_WIDTH + 3] >= 0:
            k = (k + 1) & mask
        to = k * TABLE_WIDTH
        out[to] = table[at]
        out[to + 1] = table[at + 1] - subtract
        out[to + 2] = used
        out[to + 3] = size
        start = table[at + 2]
        for b in range(size):
            packed[used + b] = arena[start + b]
        used += size
        entries += 1
    return out, packed, entries, used


# -- hyperloglog ----------------------------------------------------------------

@numba.njit(nogil=True, cache=True)
def hll_update(registers, hashes):
    for h in hashes:
        _hll_add(registers, h)


def hll_estimate(registers: np.ndarray) -> float:
    """Cardinality from the registers with Ertl's improved estimator (no bias tables needed)."""
    m = len(registers)
    q = 64 - HLL_P
    hist = np.bincount(registers, minlength=q + 2).astype(np.float64)
    z = m * _tau(1.0 - hist[q + 1] / m)
    for k in range(q, 0, -1):
        z = 0.5 * (z + hist[k])
    z += m * _sigma(hist[0] / m)
    if math.isinf(z):
        return 0.0
    return m * m / (2.0 * math.log(2.0)) / z


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == previous:
            return z / 3.0


def strings_hashes(values: list[str]) -> np.ndarray:
    offsets, data = buffers(pa.array(values, pa.string()))
    return hash_values(offsets, data)


@numba.njit(nogil=True, cache=True)
def gather(starts, ends, data):
    """The spans data[starts[i]:ends[i]] packed one after another, with Arrow offsets."""
    offsets = np.zeros(len(starts) + 1, dtype=np.int32)
    for i in range(len(starts)):
        offsets[i + 1] = offsets[i] + (ends[i] - starts[i])
    out = np.empty(offsets[len(starts)], dtype=np.uint8)
    for i in range(len(starts)):
        out[offsets[i]:offsets[i + 1]] = data[starts[i]:ends[i]]
    return offsets, out


def spans_to_strings(starts: np.ndarray, ends: np.ndarray, data: np.ndarray) -> list[str]:
    offsets, packed = gather(starts, ends, data)
    array = pa.StringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(packed))
    return array.to_pylist()


@numba.njit(nogil=True, cache=True)
def hash_numbers(values):
    """A 64-bit hash of each float64's bits; callers make -0.0 into 0.0 first."""
    bits = values.view(np.uint64)
    out = np.empty(len(bits), dtype=np.uint64)
    for i in range(len(bits)):
        h = bits[i] * _MIX1
        h ^= h >> _S33
        h *= _MIX2
        h ^= h >> _S33
        out[i] = h
    return out


@numba.njit(nogil=True, cache=True)
def sum_and_squares(values):
    total = 0.0
    squares = 0.0
    for v in values:
        total += v
        squares += v * v
    return total, squares


@numba.njit(nogil=True, cache=True)
def count_at_most(values, edges):
    """numpy.searchsorted(edges, values, side="right") for a few sorted edges.

    Comparing with every edge has no branch to mispredict and vectorizes;
    with a score of edges it took a fifth of searchsorted's time.
    """
    out = np.empty(len(values), dtype=np.int64)
    for i in range(len(values)):
        v = values[i]
        c = 0
        for e in edges:
            c += e <= v
        out[i] = c
    return out


# -- CSV fields ---------------------------------------------------------------

@numba.njit(nogil=True, cache=True)
def gather_fields(arr, starts, ends, cuts, rows, width):
    """Arrow string columns of the fields of lines `rows`: one data buffer holding
    the columns one after another, and each column's offsets (from 0) in a row
    of `offsets`; bounds[c] is where column c's bytes begin in the buffer."""
    m = len(rows)
    offsets = np.empty((width, m + 1), dtype=np.int32)
    bounds = np.zeros(width + 1, dtype=np.int64)
    for c in range(width):
        total = 0
        offsets[c, 0] = 0
        for k in range(m):
            i = rows[k]
            s = starts[i] if c == 0 else cuts[i, c - 1] + 1
            e = ends[i] if c == width - 1 else cuts[i, c]
            total += e - s
            offsets[c, k + 1] = total
        bounds[c + 1] = bounds[c] + total
    data = np.empty(bounds[width], dtype=np.uint8)
    for c in range(width):
        at = bounds[c]
        for k in range(m):
            i = rows[k]
            s = starts[i] if c == 0 else cuts[i, c - 1] + 1
            e = ends[i] if c == width - 1 else cuts[i, c]
            for p in range(s, e):
                data[at] = arr[p]
                at += 1
    return data, offsets, bounds

