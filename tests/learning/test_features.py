import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treadle.data.schema import DataSchema
from treadle.learning import FeaturePipeline, FittedPipeline, PipelineOptions, parse_recipe
from treadle.learning.fitting import Moments, kll_k_for
from treadle.learning.hashing import column_of, prefix_hash
from datasketches import kll_doubles_sketch

SCHEMA = DataSchema(
    (("title", "TEXT"), ("age", "NUMERIC"), ("hours", "NUMERIC"), ("country", "CATEGORICAL"),
     ("smoker", "BINARY"), ("y", "BINARY")),
    target="y",
)
MIXED = json.dumps({
    "groups": {"CATS": "group(country, smoker)"},
    "assignments": {"lc": "lowercase(no_punct(title))"},
    "outputs": [
        "ALL_INPUTS", "ngram(lc, 3)", "osb(title, 4)", "quantile_bin(ALL_NUMERIC, 10)", "normalize(age)",
        "cartesian(country, quantile_bin(age, 5))", "cartesian(lc, CATS)", "no_punct(country)",
    ],
})


def pipeline(recipe, chunks, **options):
    return FeaturePipeline(parse_recipe(recipe, SCHEMA), PipelineOptions(**options)).fit(chunks)


def one(expr, chunk, fit_chunks=None, **options):
    return pipeline(json.dumps({"outputs": [expr]}), [chunk] if fit_chunks is None else fit_chunks, **options)


def mixed_table(n, seed=0):
    rng = np.random.default_rng(seed)
    words = np.array(["The", "quick", "brown,", "fox!", "jumps", "over", "the", "lazy", "dog", "-", "İstanbul", "Ünï"])
    ages = rng.normal(40, 10, n).round(1)
    return {
        "title": [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(n)],
        "age": [str(a) if a > 25 else ("" if a > 18 else "bad") for a in ages],
        "hours": [str(h) for h in rng.integers(0, 80, n)],
        "country": list(rng.choice(["US", "fr", "De-!", "a b", ""], n)),
        "smoker": list(rng.choice(["yes", "no", "", "maybe", " T "], n)),
    }


def records(table):
    n = len(next(iter(table.values())))
    return [{k: v[i] for k, v in table.items()} for i in range(n)]


def assert_same(a, b):
    assert np.array_equal(a.indptr, b.indptr)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)
    assert a.data.dtype == b.data.dtype and a.indices.dtype == b.indices.dtype


# ------------------------------------------------------------- quantile bins
def sketch_eps(bins):
    return kll_doubles_sketch(kll_k_for(bins)).normalized_rank_error(False)


@pytest.mark.parametrize("bins", [10, 100, 1000])
def test_quantile_bin_edges_match_numpy_within_sketch_error(bins):
    rng = np.random.default_rng(bins)
    values = rng.lognormal(3, 1, 200_000)
    chunks = [{"age": values[i:i + 50_000].astype(str)} for i in range(0, values.size, 50_000)]
    fitted = one(f"quantile_bin(age, {bins})", None, chunks)
    edges = np.asarray(fitted.bins[f"quantile_bin(age,{bins})"])
    assert len(edges) == bins - 1
    ranks = np.searchsorted(np.sort(values), edges, side="right") / values.size
    target = np.arange(1, bins) / bins
    eps = sketch_eps(bins) + 1 / values.size
    assert np.max(np.abs(ranks - target)) <= eps
    # and against numpy's own quantiles, expressed as rank distance
    reference = np.quantile(values, target)
    ref_ranks = np.searchsorted(np.sort(values), reference, side="right") / values.size
    assert np.max(np.abs(ranks - ref_ranks)) <= eps + 1 / values.size


def test_quantile_bin_exact_on_small_data_and_one_hot():
    chunk = {"age": [str(v) for v in range(1, 101)] + ["", "x"]}
    fitted = one("quantile_bin(age, 4)", chunk)
    assert fitted.bins["quantile_bin(age,4)"] == [25.0, 50.0, 75.0]
    batch = fitted.transform(chunk)
    assert np.all(np.diff(batch.indptr) == 1)
    p, mask = prefix_hash("quantile_bin(age,4)"), (1 << 22) - 1
    label = {column_of(p, tok, mask): tok for tok in (b"0", b"1", b"2", b"3", b"#missing")}
    got = [label[c] for c in batch.indices]
    assert got[:25] == [b"0"] * 25 and got[25:50] == [b"1"] * 25 and got[99] == b"3"
    assert got[100:] == [b"#missing", b"#missing"]


def test_quantile_bin_with_ties_has_fewer_distinct_edges():
    fitted = one("quantile_bin(age, 10)", {"age": ["1", "1", "1", "2", "2", "3"] * 10})
    assert fitted.bins["quantile_bin(age,10)"] == [1.0, 2.0, 3.0]


# ----------------------------------------------------------------- numerics
def test_normalize_uses_population_mean_and_variance():
    rng = np.random.default_rng(1)
    values = rng.normal(1e6, 3.0, 30_000)
    chunks = [{"age": values[i:i + 7_000].astype(str)} for i in range(0, values.size, 7_000)]
    fitted = one("normalize(age)", None, chunks, dtype="float64")
    stats = fitted.numeric["age"]
    parsed = values.astype(str).astype(float)
    assert stats["count"] == values.size
    assert stats["mean"] == pytest.approx(parsed.mean(), rel=1e-12)
    assert stats["variance"] == pytest.approx(parsed.var(ddof=0), rel=1e-9)
    batch = fitted.transform(chunks[0])
    expected = (parsed[:7_000] - parsed.mean()) / parsed.std(ddof=0)
    np.testing.assert_allclose(batch.data, expected, rtol=1e-6, atol=1e-6)


def test_moments_merge_equals_single_pass():
    rng = np.random.default_rng(2)
    x = rng.exponential(5, 10_001)
    merged = Moments()
    for part in np.array_split(x, 7):
        merged.update(part)
    assert merged.count == x.size
    assert merged.mean == pytest.approx(x.mean(), rel=1e-12)
    assert merged.variance == pytest.approx(x.var(), rel=1e-10)


def test_missing_numeric_gives_indicator_instead_of_value():
    chunk = {"age": ["10", "", "abc", "30", " 20 ", "nan"]}
    fitted = one("age", chunk, dtype="float64")
    batch = fitted.transform(chunk)
    p, mask = prefix_hash("age"), (1 << 22) - 1
    value, missing = column_of(p, b"", mask), column_of(p, b"#missing", mask)
    assert list(batch.indices) == [value, missing, missing, value, value, missing]
    # raw numerics are standardised with the population statistics by default
    np.testing.assert_allclose(batch.data[[0, 3, 4]], [-1.224744871, 1.224744871, 0.0])
    assert list(batch.data[[1, 2, 5]]) == [1.0, 1.0, 1.0]


def test_raw_numeric_unscaled_when_standardisation_is_off():
    chunk = {"age": ["10", "", "30"]}
    batch = one("age", chunk, standardize_numeric=False, dtype="float64").transform(chunk)
    assert list(batch.data) == [10.0, 1.0, 30.0]


def test_constant_numeric_normalizes_to_zero():
    chunk = {"age": ["5", "5"]}
    assert list(one("normalize(age)", chunk).transform(chunk).data) == [0.0, 0.0]


# ------------------------------------------------------------ binary / cats
def test_binary_is_one_feature_valued_one_when_true():
    chunk = {"smoker": ["yes", " FaLSe ", "", "maybe", "T", "0"]}
    batch = one("smoker", chunk).transform(chunk)
    p, mask = prefix_hash("smoker"), (1 << 22) - 1
    value, missing = column_of(p, b"", mask), column_of(p, b"#missing", mask)
    assert list(np.diff(batch.indptr)) == [1, 0, 1, 1, 1, 0]
    assert list(batch.indices) == [value, missing, missing, value]
    assert list(batch.data) == [1.0] * 4


def test_categorical_one_hot():
    chunk = {"country": ["US", "fr", "US", "", "us"]}
    batch = one("country", chunk).transform(chunk)
    cols = list(batch.indices)
    assert len(cols) == 5 and cols[0] == cols[2] and len(set(cols)) == 4


def test_text_tokens_repeat_and_values_add():
    chunk = {"title": ["a b a", ""]}
    batch = one("title", chunk).transform(chunk)
    assert list(np.diff(batch.indptr)) == [3, 0]
    dense = batch.to_scipy().toarray()
    assert sorted(dense[0][dense[0] > 0]) == [1.0, 2.0]


# ---------------------------------------------------- batch vs record path
def test_transform_record_equals_batch_rows_on_mixed_table():
    table = mixed_table(600)
    fitted = pipeline(MIXED, [table])
    batch = fitted.transform(table)
    for i, rec in enumerate(records(table)):
        cols, vals = fitted.transform_record(rec)
        got_cols, got_vals = batch.row(i)
        assert list(got_cols) == cols
        assert np.array_equal(got_vals, np.asarray(vals, dtype=np.float32))


def test_transform_record_treats_absent_variables_as_missing_and_ignores_extras():
    table = mixed_table(50)
    fitted = pipeline(MIXED, [table])
    batch = fitted.transform({"title": ["x"]})
    assert fitted.transform_record({"title": "x", "unknown": "1", "y": "1"})[0] == list(batch.row(0)[0])


TEXTS = st.text(
    alphabet=st.sampled_from(list("aB ,.!-_\t\nİÜé'\"()ß") + ["\u00a0", "\x0b", "\x0c"]), max_size=30
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TEXTS, TEXTS, TEXTS, st.sampled_from(["1", "no", "", "2.5e1", "x", " 7 "])),
                min_size=1, max_size=8))
def test_record_path_matches_kernels_on_arbitrary_text(rows):
    table = {
        "title": [r[0] for r in rows],
        "country": [r[1] for r in rows],
        "smoker": [r[2] for r in rows],
        "age": [r[3] for r in rows],
        "hours": [r[3] for r in rows],
    }
    fitted = pipeline(MIXED, [table])
    batch = fitted.transform(table)
    for i, rec in enumerate(records(table)):
        assert list(batch.row(i)[0]) == fitted.transform_record(rec)[0]


# ---------------------------------------------------------- persistence
def test_to_dict_round_trip_through_json_gives_identical_matrices():
    table = mixed_table(300, seed=3)
    fitted = pipeline(MIXED, [table])
    state = json.loads(json.dumps(fitted.to_dict()))
    restored = FittedPipeline.from_dict(state)
    assert_same(fitted.transform(table), restored.transform(table))
    rec = records(table)[7]
    assert fitted.transform_record(rec) == restored.transform_record(rec)
    assert restored.to_dict() == fitted.to_dict()


def test_from_dict_rejects_other_documents():
    with pytest.raises(ValueError):
        FittedPipeline.from_dict({"format": "something else"})


# ------------------------------------------------------ inputs and options
def test_chunk_forms_are_equivalent():
    table = mixed_table(40, seed=4)
    fitted = pipeline(MIXED, [table])
    reference = fitted.transform(table)
    arrays = {k: pa.array(v) for k, v in table.items()}
    assert_same(reference, fitted.transform(arrays))
    assert_same(reference, fitted.transform(pa.RecordBatch.from_pydict(arrays)))
    chunked = pa.table({k: pa.chunked_array([v[:15], v[15:]], pa.large_string()) for k, v in table.items()})
    assert_same(reference, fitted.transform(chunked))
    sliced = {k: pa.array(["pad"] + v)[1:] for k, v in table.items()}
    assert_same(reference, fitted.transform(sliced))
    numpy_cols = {k: np.array(v, dtype=object) for k, v in table.items()}
    assert_same(reference, fitted.transform(numpy_cols))


def test_nulls_read_as_missing():
    fitted = pipeline(MIXED, [mixed_table(20)])
    with_nulls = fitted.transform({"age": pa.array([None, "3"]), "country": pa.array([None, "US"])})
    with_empty = fitted.transform({"age": ["", "3"], "country": ["", "US"]})
    assert_same(with_nulls, with_empty)


def test_empty_chunk_and_empty_fit():
    fitted = pipeline(MIXED, [])
    batch = fitted.transform({"title": []})
    assert batch.n_rows == 0 and batch.indptr.tolist() == [0]
    assert fitted.transform({"age": ["4"]}).n_rows == 1


def test_hash_bits_and_dtype_options():
    table = mixed_table(30)
    wide = pipeline(MIXED, [table], hash_bits=36, dtype="float64").transform(table)
    assert wide.indices.dtype == np.int64 and wide.data.dtype == np.float64 and wide.n_features == 1 << 36
    narrow = pipeline(MIXED, [table], hash_bits=12).transform(table)
    assert narrow.indices.dtype == np.int32 and narrow.indices.max() < 4096
    assert narrow.to_scipy().shape == (30, 4096)
    with pytest.raises(ValueError):
        PipelineOptions(hash_bits=64)


def test_columns_are_stable_across_pipelines():
    # identity depends on (term, token) only, not on the other outputs
    a = one("country", {"country": ["US"]}).transform({"country": ["US"]})
    b = pipeline(MIXED, [mixed_table(10)]).transform({"country": ["US"]})
    assert a.indices[0] in set(b.indices)
