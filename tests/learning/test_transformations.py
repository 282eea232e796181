"""The transformations on the examples Amazon ML documents, checked on both the
reference (record) path and the batch kernels."""
import json

import pytest

from treadle.data.schema import DataSchema
from treadle.learning import FeaturePipeline, PipelineOptions, parse_recipe
from treadle.learning import text_ops
from treadle.learning.hashing import column_of, prefix_hash

SCHEMA = DataSchema((("t", "TEXT"), ("c", "CATEGORICAL"), ("b", "BINARY")))
BITS = 40  # wide enough that these few identities cannot collide


def batch_row(expr, record):
    recipe = parse_recipe(json.dumps({"outputs": [expr]}), SCHEMA)
    pipeline = FeaturePipeline(recipe, PipelineOptions(hash_bits=BITS)).fit([])
    batch = pipeline.transform({k: [v] for k, v in record.items()})
    record_cols, _ = pipeline.transform_record(record)
    cols = list(batch.row(0)[0])
    assert cols == record_cols
    return recipe.terms[0].canonical, cols


def expected_cols(canonical, tokens):
    p = prefix_hash(canonical)
    return [column_of(p, tok.encode(), (1 << BITS) - 1) for tok in tokens]


def check(expr, record, tokens):
    canonical, cols = batch_row(expr, record)
    assert cols == expected_cols(canonical, tokens)


def test_ngram_red_green_blue():
    toks = text_ops.tokens("red, green, blue")
    assert text_ops.ngrams(toks, 2) == [b"red,", b"red, green,", b"green,", b"green, blue", b"blue"]
    check("ngram(t, 2)", {"t": "red, green, blue"}, ["red,", "red, green,", "green,", "green, blue", "blue"])


def test_ngram_uses_single_space_and_all_sizes():
    assert text_ops.ngrams(text_ops.tokens("a \t b\n c"), 3) == [b"a", b"a b", b"a b c", b"b", b"b c", b"c"]
    check("ngram(t, 3)", {"t": "  a \t b\n c  "}, ["a", "a b", "a b c", "b", "b c", "c"])


OSB_FOX = [
    "The_quick", "The__brown", "The___fox",
    "quick_brown", "quick__fox", "quick___jumps",
    "brown_fox", "brown__jumps", "brown___over",
    "fox_jumps", "fox__over", "fox___the",
    "jumps_over", "jumps__the", "jumps___lazy",
    "over_the", "over__lazy", "over___dog",
    "the_lazy", "the__dog",
    "lazy_dog",
]


def test_osb_window_4_quick_brown_fox():
    text = "The quick brown fox jumps over the lazy dog"
    assert [t.decode() for t in text_ops.osb(text_ops.tokens(text), 4)] == OSB_FOX
    check("osb(t, 4)", {"t": text}, OSB_FOX)


def test_osb_emits_no_unigrams_and_nothing_for_one_token():
    check("osb(t, 2)", {"t": "alone"}, [])
    check("osb(t, 2)", {"t": "a b c"}, ["a_b", "b_c"])


def test_no_punct_welcome_to_aml():
    text = "Welcome to AML - please fasten your seat-belts!"
    expected = ["Welcome", "to", "AML", "please", "fasten", "your", "seat-belts"]
    assert [t.decode() for t in text_ops.tokens(text, strip_punct=True)] == expected
    check("no_punct(t)", {"t": text}, expected)


def test_no_punct_on_categorical_trims_each_word_and_joins_with_space():
    check("no_punct(c)", {"c": "  (New-York!)  --  City. "}, ["New-York City"])


def test_lowercase_text_and_categorical():
    check("lowercase(t)", {"t": "Hello WORLD Ünïcode"}, ["hello", "world", "ünïcode"])
    check("lowercase(c)", {"c": "Red Wine"}, ["red wine"])
    check("ngram(lowercase(no_punct(t)), 2)", {"t": "Hi, THERE!"}, ["hi", "hi there", "there"])


def test_cartesian_abc_times_z():
    assert text_ops.cartesian([b"A", b"B", b"C"], [b"Z"]) == [b"A_Z", b"B_Z", b"C_Z"]
    check("cartesian(t, c)", {"t": "A B C", "c": "Z"}, ["A_Z", "B_Z", "C_Z"])


def test_cartesian_with_binary_and_empty_side():
    check("cartesian(c, b)", {"c": "x", "b": "Yes"}, ["x_1"])
    check("cartesian(c, b)", {"c": "x", "b": "huh"}, ["x_#missing"])
    check("cartesian(t, c)", {"t": "", "c": "Z"}, [])


def test_raw_text_is_unigrams_with_punctuation_and_case_kept():
    check("t", {"t": "email-subject here, Here"}, ["email-subject", "here,", "Here"])


def test_raw_categorical_is_the_whole_value():
    check("c", {"c": "a b,c"}, ["a b,c"])
    check("c", {"c": ""}, [""])


@pytest.mark.parametrize("n", [2, 5, 10])
def test_ngram_count(n):
    words = " ".join(f"w{i}" for i in range(12))
    _, cols = batch_row(f"ngram(t, {n})", {"t": words})
    assert len(cols) == sum(min(n, 12 - s) for s in range(12))
