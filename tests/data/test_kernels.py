import numpy as np
import pyarrow as pa
import pytest

from treadle.data import kernels
from treadle.data.sketches import ValueCounter


@pytest.mark.parametrize("text", [
    ["a b  a", "", "  ", "b\tc a ", "abcdefghij abcdefghij abcdefghi x"],
    [" ".join(f"w{i % 997}" for i in range(j, j + 50)) for j in range(300)],  # the table grows
    ["x" * 5000 + " " + "y" * 7000, "x" * 5000],  # the arena grows in mid-value
])
def test_add_words_against_python(text):
    offsets, data = kernels.buffers(pa.array(text))
    assert kernels.plain_ascii(offsets, data)
    counter = ValueCounter()
    per_value, shortest, longest = counter.add_words(offsets[:-1], offsets[1:], data)
    split = [t.split() for t in text]
    assert per_value.tolist() == [len(s) for s in split]
    flat = [w for s in split for w in s]
    assert (shortest, longest) == (min(map(len, flat)), max(map(len, flat)))
    assert counter.exact == {w: flat.count(w) for w in set(flat)}
    assert counter.total == len(flat)


def test_word_scan_hashes_words_as_hash_values_does():
    # Word lengths around the eight-byte loads, values that end where the
    # buffer ends (where the scan reads byte by byte), tabs and runs of spaces.
    rng = np.random.default_rng(3)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz.!", dtype=np.uint8)
    for trial in range(200):
        values = []
        for _ in range(int(rng.integers(1, 6))):
            words = [letters[rng.integers(0, len(letters), int(rng.integers(1, 26)))].tobytes()
                     for _ in range(int(rng.integers(0, 6)))]
            gaps = [b" \t  "[: int(rng.integers(1, 5))] for _ in words]
            values.append(b"".join(g + w for g, w in zip(gaps, words)) + b" " * int(rng.integers(0, 2)))
        data = np.frombuffer(b"".join(values), dtype=np.uint8)
        ends = np.cumsum([len(v) for v in values])
        starts = ends - [len(v) for v in values]
        counter = ValueCounter()
        per_value, _, _ = counter.add_words(starts, ends, data)
        split = [v.split() for v in values]
        assert per_value.tolist() == [len(w) for w in split]
        hashes, counts, first, last = counter._entries()
        flat = sorted({w for ws in split for w in ws})
        assert len(flat) == len(hashes)
        if flat:
            expected = kernels.strings_hashes([w.decode() for w in flat])
            stored = kernels.strings_hashes(kernels.spans_to_strings(first, last, counter.arena))
            assert sorted(expected.tolist()) == sorted(hashes.tolist()) == sorted(stored.tolist())


def test_value_table_across_chunks_merge_and_sketching():
    rng = np.random.default_rng(2)
    words = [f"word{i:05d}" for i in range(3000)]
    chunks = [[" ".join(words[k] for k in rng.zipf(1.4, 20) % 3000) for _ in range(200)] for _ in range(6)]
    exact, small, left, right = ValueCounter(), ValueCounter(limit=300), ValueCounter(), ValueCounter()
    for i, chunk in enumerate(chunks):
        offsets, data = kernels.buffers(pa.array(chunk))
        for counter in (exact, small, left if i % 2 else right):
            counter.add_words(offsets[:-1], offsets[1:], data)
    left.merge(right)
    flat = [w for chunk in chunks for t in chunk for w in t.split()]
    truth = {w: flat.count(w) for w in set(flat)}
    assert exact.exact == truth and left.exact == truth
    assert not small.is_exact and small.total == len(flat)
    assert abs(small.distinct() - len(truth)) <= 0.03 * len(truth)
    ranked = sorted(truth.items(), key=lambda kv: (-kv[1], kv[0]))
    assert small.top(3) == ranked[:3]  # no purge yet: kept counts are exact
    assert exact.least(1) == [sorted(truth.items(), key=lambda kv: (kv[1], kv[0]))[0]]


def test_value_table_purges_to_heavy_hitters(monkeypatch):
    from treadle.data import sketches
    monkeypatch.setattr(sketches, "SKETCH_ENTRIES", 64)
    counter = ValueCounter(limit=10)
    values = [f"id{i}" for i in range(5000)] + ["hot"] * 800
    order = np.random.default_rng(3).permutation(len(values))
    for part in np.array_split(order, 9):
        counter.update([values[i] for i in part], [1] * len(part))
    value, count = counter.top(1)[0]
    assert value == "hot" and 800 - counter.offset <= count <= 800
    assert counter.total == len(values)
    assert abs(counter.distinct() - 5001) <= 0.03 * 5001


def test_distinct_values():
    values = ["x", "", "yy", "x", "é", "yy", "x"] + [f"id{i}" for i in range(500)]
    offsets, data = kernels.buffers(pa.array(values))
    codes, hashes, counts, first = kernels.distinct(offsets[:-1], offsets[1:], data)
    unique = list(dict.fromkeys(values))
    assert [values[i] for i in first] == unique
    assert counts.tolist() == [values.count(u) for u in unique]
    assert [unique[c] for c in codes] == values


def test_unicode_text_is_not_plain():
    offsets, data = kernels.buffers(pa.array(["plain", "caf\u00e9\u2003x"]))
    assert not kernels.plain_ascii(offsets, data)
    offsets, data = kernels.buffers(pa.array(["a\x1cb"]))
    assert not kernels.plain_ascii(offsets, data)


@pytest.mark.parametrize("n", [10, 3000, 40000, 200000, 1000000])
def test_hyperloglog_estimate(n):
    counter = ValueCounter(limit=5)
    values = [f"v{i}" for i in range(n)]
    for start in range(0, n, 100000):
        part = values[start:start + 100000]
        counter.update(part, [1] * len(part))
    assert abs(counter.distinct() - n) <= max(1, 0.03 * n)


def test_count_at_most_is_searchsorted_right():
    rng = np.random.default_rng(4)
    values = np.round(rng.normal(0, 3, 5000), 1)
    for edges in (np.quantile(values, np.linspace(0, 1, 21)[1:-1]), np.empty(0), np.array([-1.0, -1.0, 0.0, 2.5])):
        assert (kernels.count_at_most(values, edges) == np.searchsorted(edges, values, side="right")).all()
