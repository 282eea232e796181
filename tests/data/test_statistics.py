import json
import pickle

import numpy as np
import pandas as pd
import pytest

from treadle.data.ingest import ingest
from treadle.data.records import RecordReader, TooManyRejections, bytes_source
from treadle.data.statistics import StatisticsBuilder
from treadle.data.sketches import ValueCounter

from .conftest import make_schema

SCHEMA = make_schema(
    [("id", "CATEGORICAL"), ("x", "NUMERIC"), ("job", "CATEGORICAL"), ("flag", "BINARY"),
     ("note", "TEXT"), ("y", "BINARY")],
    targetAttributeName="y", dataFileContainsHeader=True)
WORDS = np.array(["alpha", "beta", "gamma,", "delta.", "e", "zeta-eta"])


def make_data(n=6000, seed=3):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(50, 10, n), 3).astype(object)
    x[rng.random(n) < 0.05] = ""
    x[rng.random(n) < 0.02] = "n/a"
    job = rng.choice(["admin", "tech", "sales", "chef", "pilot"], n, p=[.4, .3, .2, .07, .03])
    y = (rng.random(n) < 0.3).astype(int)
    flag = np.where(y == 1, rng.choice(["yes", "Y", "true"], n), rng.choice(["no", "F", " false "], n))
    flag[rng.random(n) < 0.01] = "perhaps"
    notes = [" ".join(WORDS[rng.integers(0, len(WORDS), k)]) for k in rng.integers(0, 9, n)]
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "x": x, "job": job, "flag": flag,
                          "note": notes, "y": y})
    return frame, frame.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def dataset():
    frame, data = make_data()
    result = ingest([bytes_source("d.csv", data)], SCHEMA, compute_statistics=True, workers=2,
                    chunk_bytes=20000)
    return frame, data, result


def attr(stats, name):
    return next(a for a in stats["attributes"] if a["name"] == name)


def test_counts(dataset):
    frame, data, result = dataset
    assert result.records == len(frame) and result.rejected == 0
    assert result.data_size_in_bytes == len(data) and result.number_of_files == 1
    assert result.statistics["records"] == len(frame)
    assert result.statistics["records_processed"] == len(frame)
    json.dumps(result.statistics)


def test_numeric_against_numpy(dataset):
    frame, _, result = dataset
    x = attr(result.statistics, "x")
    raw = frame["x"].astype(str)
    values = pd.to_numeric(raw, errors="coerce").dropna().to_numpy()
    assert x["count"] == len(values)
    assert x["missing"] == int((raw == "").sum())
    assert x["invalid"] == int((raw == "n/a").sum())
    assert x["min"] == values.min() and x["max"] == values.max()
    assert x["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert x["stddev"] == pytest.approx(values.std(), rel=1e-9)
    eps = x["quantile_rank_error"]
    for level, q in list(x["quantiles"].items()) + [("0.5", x["median"])]:
        rank = np.mean(values <= q)
        assert abs(rank - float(level)) <= eps + 1e-3
    hist = x["histogram"]
    assert len(hist) == 20 and hist[0]["lower"] == values.min() and hist[-1]["upper"] == values.max()
    counts, _ = np.histogram(values, bins=20, range=(values.min(), values.max()))
    got = np.array([h["count"] for h in hist])
    assert abs(got.sum() - len(values)) <= 20
    assert np.abs(got - counts).max() <= 3 * eps * len(values)



def _exact_histograms(histograms, values):
    """Every level's bins, checked against numpy's counts at the same edges."""
    ordered = np.sort(values)
    for level, hist in histograms.items():
        counts = np.array(hist["counts"])
        assert 1 <= len(counts) <= int(level)
        edges = hist["start"] + hist["width"] * np.arange(len(counts) + 1)
        assert edges[0] <= ordered[0] and ordered[-1] < edges[-1]
        assert (np.diff(np.searchsorted(ordered, edges, side="left")) == counts).all(), level


def test_exact_histograms_at_every_level(dataset):
    frame, _, result = dataset
    x = attr(result.statistics, "x")
    values = pd.to_numeric(frame["x"].astype(str), errors="coerce").dropna().to_numpy()
    assert sorted(x["histograms"], key=int) == ["20", "50", "100", "200", "500"]
    _exact_histograms(x["histograms"], values)
    # Grouping whole grid bins leaves few bins unused: at least 80 % of each level.
    assert all(len(h["counts"]) >= 0.8 * int(level) for level, h in x["histograms"].items())


@pytest.mark.parametrize("values", [
    np.round(np.random.default_rng(5).normal(0, 1, 20000), 2),
    np.random.default_rng(6).integers(-3, 4, 5000).astype(float),  # few distinct values
    np.exp(np.random.default_rng(7).normal(0, 6, 20000)),  # a long tail
    np.array([-1e300, 1e300, 0.0, -0.0, 5e-324, 1.5]),  # the extremes of float64
    np.array([5e-324, 1e-320, 0.0, -0.0]),  # subnormal numbers
    np.random.default_rng(8).normal(1e6, 1e-6, 2000),  # a narrow range far from zero
    np.full(10, 2.5),
])
def test_bin_grid_is_exact_however_the_values_arrive(values):
    from treadle.data.sketches import GRID_BINS, BinGrid

    pieces = np.array_split(values, 9)
    streamed = BinGrid()
    for piece in pieces:
        streamed.update(np.sort(piece))
    merged = BinGrid()
    for piece in pieces:
        part = BinGrid()
        part.update(np.sort(piece))
        merged.merge(pickle.loads(pickle.dumps(part)))
    for grid in (streamed, merged):
        assert len(grid.counts) <= GRID_BINS and grid.counts.sum() == len(values)
        _exact_histograms({str(level): grid.histogram(level) for level in (500, 200, 100, 50, 20)}, values)
    assert streamed.histogram(500) == merged.histogram(500)

def test_categorical_against_pandas(dataset):
    frame, _, result = dataset
    job = attr(result.statistics, "job")
    counts = frame["job"].value_counts()
    assert job["distinct"] == len(counts) and job["exact"]
    assert [(v["value"], v["count"]) for v in job["top_values"]] == list(counts.items())
    assert job["most_frequent"] == {"value": counts.index[0], "count": int(counts.iloc[0])}
    assert job["least_frequent"] == {"value": counts.index[-1], "count": int(counts.iloc[-1])}
    assert job["other_count"] == 0
    ids = attr(result.statistics, "id")
    assert ids["distinct"] == len(frame) and len(ids["top_values"]) == 10
    assert ids["other_count"] == len(frame) - 10


def test_binary_and_target(dataset):
    frame, _, result = dataset
    flag = attr(result.statistics, "flag")
    words = frame["flag"].str.strip().str.lower()
    true = int(words.isin(["yes", "y", "true"]).sum())
    false = int(words.isin(["no", "f", "false"]).sum())
    assert (flag["true"], flag["false"]) == (true, false)
    assert flag["invalid"] == int((words == "perhaps").sum())
    assert flag["percent_true"] == pytest.approx(100 * true / (true + false))
    target = result.statistics["target"]
    counts = frame["y"].value_counts()
    assert target["name"] == "y"
    assert {d["value"]: d["count"] for d in target["distribution"]} == {"0": counts[0], "1": counts[1]}


def test_text_against_python(dataset):
    frame, _, result = dataset
    note = attr(result.statistics, "note")
    tokens = [s.split() for s in frame["note"]]
    flat = [w for t in tokens for w in t]
    assert note["total_words"] == len(flat)
    assert note["unique_words"] == len(set(flat))
    assert note["words_per_record"]["min"] == min(map(len, tokens))
    assert note["words_per_record"]["max"] == max(map(len, tokens))
    assert note["words_per_record"]["mean"] == pytest.approx(len(flat) / len(tokens))
    assert note["word_length"] == {"min": min(map(len, flat)), "max": max(map(len, flat))}
    top = pd.Series(flat).value_counts()
    assert note["prominent_words"][0]["word"] == top.index[0]
    assert note["prominent_words"][0]["count"] == top.iloc[0]


def test_mutual_information(dataset):
    frame, _, result = dataset
    stats = result.statistics
    mi = {a["name"]: a["correlation_to_target"]["mutual_information"]
          for a in stats["attributes"] if "correlation_to_target" in a}
    assert "y" not in mi
    # flag is (almost) the target itself; job is independent of it.
    assert mi["flag"] > 0.8
    assert mi["job"] < 0.01
    # Exact for a low-cardinality categorical attribute: compare with a direct computation.
    joint = pd.crosstab(frame["flag"].str.strip().str.lower().map(
        lambda w: 1 if w in ("yes", "y", "true") else 0 if w in ("no", "f", "false") else 2), frame["y"])
    p = joint.to_numpy() / joint.to_numpy().sum()
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    assert mi["flag"] == pytest.approx(float(np.sum(p[nz] * np.log2(p[nz] / (px @ py)[nz]))), rel=1e-9)


@pytest.mark.parametrize("split", ["chosen", "chunks", "attributes"])
def test_parallel_and_sequential_agree(split, monkeypatch):
    import treadle.data.ingest as ingest_module

    if split == "chunks":
        monkeypatch.setattr(ingest_module, "_attribute_groups", lambda *args: None)
    elif split == "attributes":
        groups = [frozenset({"id", "note"}), frozenset({"x", "y"}), frozenset({"job", "flag"})]
        monkeypatch.setattr(ingest_module, "_attribute_groups", lambda *args: groups)
    frame, data = make_data(3000, seed=9)
    one = ingest([bytes_source("d.csv", data)], SCHEMA, workers=1, chunk_bytes=10000).statistics
    many = ingest([bytes_source("d.csv", data)], SCHEMA, workers=3, chunk_bytes=10000).statistics
    for a, b in zip(one["attributes"], many["attributes"]):
        for key in ("count", "min", "max", "missing", "invalid", "distinct", "top_values", "total_words"):
            assert a.get(key) == b.get(key), (a["name"], key)
        if "correlation_to_target" in a:
            assert a["correlation_to_target"]["mutual_information"] == pytest.approx(
                b["correlation_to_target"]["mutual_information"], abs=1e-9)


def test_merge_and_pickle_round_trip():
    _, data = make_data(2000, seed=5)
    chunks = list(RecordReader([bytes_source("d.csv", data)], SCHEMA, chunk_bytes=8000))
    whole = StatisticsBuilder(SCHEMA)
    for c in chunks:
        whole.update(c)
    first = StatisticsBuilder(SCHEMA)
    first.update(chunks[0])
    left, right = first.fork(), first.fork()
    for i, c in enumerate(chunks[1:]):
        (left if i % 2 else right).update(c)
    left = pickle.loads(pickle.dumps(left))
    first.merge(left)
    first.merge(pickle.loads(pickle.dumps(right)))
    a, b = whole.result(), first.result()
    assert a["records"] == b["records"]
    for x, y in zip(a["attributes"], b["attributes"]):
        assert x.get("top_values") == y.get("top_values")
        assert x.get("count") == y.get("count")
        assert x.get("mean") == pytest.approx(y.get("mean"))


def test_join_takes_over_other_attributes_only():
    _, data = make_data(800, seed=4)
    chunks = list(RecordReader([bytes_source("d.csv", data)], SCHEMA, chunk_bytes=8000))
    whole, first = StatisticsBuilder(SCHEMA), StatisticsBuilder(SCHEMA)
    first.update(chunks[0])
    left, right = first.fork(frozenset({"id", "x", "y"})), first.fork(frozenset({"job", "flag", "note"}))
    for c in chunks:
        whole.update(c)
    for c in chunks[1:]:
        left.update(c)
        right.update(c)
    with pytest.raises(ValueError):
        left.join(first.fork(frozenset({"x"})))
    left.join(right)
    first.merge(left)
    a, b = whole.result(), first.result()
    assert a["records"] == b["records"] == 800
    for x, y in zip(a["attributes"], b["attributes"]):
        for key in ("count", "distinct", "top_values", "total_words", "binned_mutual_information"):
            assert x.get(key) == y.get(key), (x["name"], key)


def test_merge_refuses_different_layouts():
    _, data = make_data(500, seed=1)
    _, other = make_data(500, seed=2)
    a, b = StatisticsBuilder(SCHEMA), StatisticsBuilder(SCHEMA)
    for builder, payload in ((a, data), (b, other)):
        for c in RecordReader([bytes_source("d.csv", payload)], SCHEMA):
            builder.update(c)
    with pytest.raises(ValueError, match="fork"):
        a.merge(b)


def test_value_counter_switches_to_sketches_and_stays_close():
    counter = ValueCounter(limit=100)
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.integers(0, 5000, 20000), np.full(3000, 7)])
    for part in np.array_split(values, 7):
        u, c = np.unique(part, return_counts=True)
        counter.update([str(v) for v in u], c.tolist())
    assert not counter.is_exact
    assert counter.total == len(values)
    assert abs(counter.distinct() - len(set(values.tolist()))) < 0.05 * 5000
    top_value, top_count = counter.top(1)[0]
    assert top_value == "7" and abs(top_count - int((values == 7).sum())) < 50
    assert counter.least(1) is None
    clone = pickle.loads(pickle.dumps(counter))
    clone.merge(counter)
    assert clone.total == 2 * len(values)


def test_ingest_callback_and_rejections():
    schema = make_schema([("a", "NUMERIC"), ("y", "CATEGORICAL")], targetAttributeName="y")
    data = b"1,p\n2\n3,\n4,q\n"
    seen = []
    result = ingest([bytes_source("e.csv", data)], schema, None, True, require_target=True,
                    on_chunk=lambda c: seen.extend(c.column("a").to_pylist()))
    assert seen == ["1", "4"]
    assert result.rejected == 2 and result.records == 2 and result.selected == 4
    assert result.rejections == [{"file": "e.csv", "line": 2, "reason": "expected 2 fields, found 1"},
                                 {"file": "e.csv", "line": 3, "reason": 'target "y" is missing'}]
    assert result.statistics["records_rejected"] == 2
    assert {d["value"]: d["count"] for d in result.statistics["target"]["distribution"]} == {"p": 1, "q": 1}


def test_ingest_without_statistics_and_failure():
    schema = make_schema([("a", "NUMERIC"), ("b", "NUMERIC")])
    result = ingest([bytes_source("a", b"1,2\n")], schema, compute_statistics=False)
    assert result.statistics is None and result.records == 1
    with pytest.raises(TooManyRejections):
        ingest([bytes_source("a", b"1\n" * 10001)], schema)


def test_numeric_target_summary():
    schema = make_schema([("a", "NUMERIC"), ("t", "NUMERIC")], targetAttributeName="t")
    rng = np.random.default_rng(4)
    a = rng.normal(size=4000)
    t = 3 * a + rng.normal(scale=0.1, size=4000)
    data = "".join(f"{u:.6f},{v:.6f}\n" for u, v in zip(a, t)).encode()
    stats = ingest([bytes_source("n", data)], schema, chunk_bytes=30000).statistics
    assert stats["target"]["summary"]["count"] == 4000
    assert stats["target"]["summary"]["mean"] == pytest.approx(np.round(t, 6).mean())
    assert attr(stats, "a")["correlation_to_target"]["normalized"] > 0.5


def test_bin_grid_gives_integers_whole_bins():
    from treadle.data.sketches import BinGrid

    grid = BinGrid()
    grid.update(np.sort(np.random.default_rng(9).integers(18, 90, 5000).astype(float)))
    for bins in (500, 200, 100, 50, 20):
        hist = grid.histogram(bins)
        assert hist["width"] == int(hist["width"]) and hist["start"] == 18
        assert len(hist["counts"]) <= min(bins, 72)
    assert len(grid.histogram(500)["counts"]) == 72  # one bin per integer
