import numpy as np
import pytest

from treadle.data import scan

_PLAIN = set(range(0x20, 0x7F)) | {0x09}


def _reference(data: bytes, width: int):
    feeds = [p for p, b in enumerate(data) if b == 0x0A]
    flags = (len(feeds), 0x22 in data, 0x0D in data, all(b < 0x80 for b in data),
             all(b in _PLAIN or b == 0x0A for b in data))
    lines = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        lines = lines[:-1]
    ends, fields, cuts, at = [], [], [], 0
    for line in lines:
        ends.append(at + len(line))
        fields.append(line.count(b",") + 1)
        cuts.append([at + p for p, b in enumerate(line) if b == 0x2C][:width - 1])
        at += len(line) + 1
    return flags, feeds, ends, fields, cuts


def test_word_scans_match_a_byte_by_byte_reading():
    # Short inputs put every byte class in every lane of a word and in the
    # tail after the last whole word.
    rng = np.random.default_rng(7)
    alphabet = np.frombuffer(b'ab ,,\n\n"\r\t\x7f\x01\x1f\x80\xff~', dtype=np.uint8)
    for trial in range(3000):
        n = int(rng.integers(0, 40))
        arr = (rng.integers(0, 256, n) if trial % 3 == 0 else alphabet[rng.integers(0, len(alphabet), n)])
        arr = np.ascontiguousarray(arr, dtype=np.uint8)
        flags, feeds, ends, fields, cuts = _reference(arr.tobytes(), 4)
        words = scan.words_of(arr)
        assert scan.block_flags(arr, words) == flags
        assert scan.line_feeds(arr, words, flags[0]).tolist() == feeds
        got_ends, got_cuts, got_fields = scan.split_lines(arr, words, flags[0], 4)
        assert got_ends.tolist() == ends and got_fields.tolist() == fields
        for i, want in enumerate(cuts):
            if fields[i] >= 4:
                assert got_cuts[i].tolist() == want


def _malformed_reference(arr, starts, ends):
    """The rules with numpy, one quote at a time (the reader's first version)."""
    codes = np.zeros(len(starts), dtype=np.int8)
    line_of = lambda pos: np.searchsorted(starts, pos, side="right") - 1  # noqa: E731
    crs = np.flatnonzero(arr == 13)
    line = line_of(crs)
    ok = line >= 0
    crs, line = crs[ok], line[ok]
    codes[line[crs < ends[line]]] = 1
    quotes = np.flatnonzero(arr == 34)
    line = line_of(quotes)
    ok = line >= 0
    quotes, line = quotes[ok], line[ok]
    inside = quotes < ends[line]
    quotes, line = quotes[inside], line[inside]
    rank = np.arange(len(quotes)) - np.searchsorted(quotes, starts)[line]
    opening = (rank & 1) == 0
    prev = arr[np.maximum(quotes - 1, 0)]
    bad_open = opening & (quotes != starts[line]) & (prev != 44) & (prev != 34)
    nxt = arr[np.minimum(quotes + 1, len(arr) - 1)]
    bad_close = ~opening & (quotes + 1 < ends[line]) & (nxt != 44) & (nxt != 34)
    codes[(np.bincount(line, minlength=len(starts)) & 1).astype(bool)] = 4
    codes[line[bad_close]] = 3
    codes[line[bad_open]] = 2
    return codes


@pytest.mark.parametrize("seed", range(30))
def test_malformed_lines_follow_the_quoting_rules(seed):
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b'ab,"\r x""', dtype=np.uint8)
    lines = [alphabet[rng.integers(0, len(alphabet), rng.integers(0, 12))] for _ in range(200)]
    arr = np.concatenate([np.concatenate([line, [10]]) for line in lines]).astype(np.uint8)
    feeds = np.flatnonzero(arr == 10)
    starts = np.concatenate([[0], feeds[:-1] + 1]).astype(np.int64)
    ends = feeds.astype(np.int64)
    codes = np.empty(len(starts), dtype=np.int8)
    found = scan.malformed_lines(arr, starts, ends, codes)
    expected = _malformed_reference(arr, starts, ends)
    assert np.array_equal(codes, expected)
    assert found == bool(expected.any()) and set(expected.tolist()) >= {0, 2}
