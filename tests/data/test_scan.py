import numpy as np

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
