import hashlib
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from treadle.data.rearrangement import RearrangementError, Split, parse_rearrangement, random_number, random_numbers
from treadle.data.sha256_batch import digest_words


def test_absent_means_everything():
    for text in (None, "", "  "):
        assert parse_rearrangement(text).selects_everything
    assert parse_rearrangement('{"splitting": {}}').selects_everything


def test_documented_forms():
    s = parse_rearrangement('{"splitting":{"percentBegin":0,"percentEnd":70,"strategy":"random",'
                            '"complement":"true","strategyParams":{"randomSeed":"s3://b/k"}}}')
    assert s == Split(0, 70, True, "random", "s3://b/k")
    assert parse_rearrangement('{"splitting":{"percentBegin":10,"percentEnd":60}}') == Split(10, 60)
    assert parse_rearrangement('{"splitting":{"percentBegin":12.5,"percentEnd":99.5,"complement":false}}') \
        == Split(12.5, 99.5)


def test_seed_placements_in_order():
    both = {"splitting": {"percentEnd": 50, "strategy": "random", "randomSeed": "inner",
                          "strategyParams": {"randomSeed": "params"}}, "randomSeed": "top"}
    assert parse_rearrangement(json.dumps(both)).seed == "params"
    del both["splitting"]["strategyParams"]
    assert parse_rearrangement(json.dumps(both)).seed == "inner"
    del both["splitting"]["randomSeed"]
    assert parse_rearrangement(json.dumps(both)).seed == "top"
    del both["randomSeed"]
    assert parse_rearrangement(json.dumps(both)).seed == ""


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"splitting": 3}', "splitting must be a JSON object"),
    ('{"split": {}}', 'unknown DataRearrangement key "split"'),
    ('{"splitting": {"percentBeg": 1}}', 'unknown splitting key "percentBeg"'),
    ('{"splitting": {"percentBegin": 70, "percentEnd": 30}}', "percentBegin (70) must be less than percentEnd (30)"),
    ('{"splitting": {"percentBegin": 30, "percentEnd": 30}}', "must be less than"),
    ('{"splitting": {"percentBegin": -1}}', "percentBegin must be between 0 and 100"),
    ('{"splitting": {"percentEnd": 101}}', "percentEnd must be between 0 and 100"),
    ('{"splitting": {"percentEnd": "50"}}', "percentEnd must be a number"),
    ('{"splitting": {"percentEnd": true}}', "percentEnd must be a number"),
    ('{"splitting": {"complement": "yes"}}', "complement must be true or false"),
    ('{"splitting": {"complement": 1}}', "complement must be true or false"),
    ('{"splitting": {"strategy": "shuffle"}}', 'strategy must be "sequential" or "random"'),
    ('{"splitting": {"strategyParams": {"seed": "x"}}}', 'unknown strategyParams key "seed"'),
    ('{"splitting": {"randomSeed": 5}}', "splitting.randomSeed must be a string"),
])
def test_errors(text, message):
    with pytest.raises(RearrangementError) as info:
        parse_rearrangement(text)
    assert message in info.value.message


def test_random_number_is_the_documented_hash():
    digest = hashlib.sha256(b"abc:1234").digest()
    assert random_number("abc", 1234) == int.from_bytes(digest[:8], "big") % 100


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=150), st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=20))
def test_batch_hash_matches_hashlib(seed, offsets):
    words = digest_words(f"{seed}:".encode(), np.array(offsets, dtype=np.int64))
    for word, offset in zip(words.tolist(), offsets):
        assert word == int.from_bytes(hashlib.sha256(f"{seed}:{offset}".encode()).digest()[:8], "big")
    assert random_numbers(seed, np.array(offsets)).tolist() == [random_number(seed, o) for o in offsets]


def test_sequential_by_byte_position():
    offsets = np.arange(0, 1000, 10)  # 100 records of 10 bytes
    s = parse_rearrangement('{"splitting":{"percentBegin":25,"percentEnd":70}}')
    mask = s.select(offsets, 1000)
    assert mask.sum() == 45
    assert offsets[mask].min() == 250 and offsets[mask].max() == 690
    comp = parse_rearrangement('{"splitting":{"percentBegin":25,"percentEnd":70,"complement":true}}')
    assert (comp.select(offsets, 1000) == ~mask).all()


def test_sequential_boundaries_are_half_open():
    s = Split(0, 50)
    assert s.select(np.array([499, 500, 501]), 1000).tolist() == [True, False, False]
    assert Split(50, 100).select(np.array([499, 500, 999]), 1000).tolist() == [False, True, True]


def test_random_counts_complement_and_reproducibility():
    offsets = np.cumsum(np.random.default_rng(0).integers(5, 50, 20000))
    a = Split(0, 30, False, "random", "seed-1").select(offsets, 0)
    b = Split(0, 30, True, "random", "seed-1").select(offsets, 0)
    assert (a ^ b).all()  # exact partition
    assert abs(a.mean() - 0.30) < 0.02
    again = Split(0, 30, False, "random", "seed-1").select(offsets, 0)
    assert (a == again).all()
    other = Split(0, 30, False, "random", "seed-2").select(offsets, 0)
    assert (a != other).sum() > 1000
    numbers = random_numbers("seed-1", offsets)
    assert (a == (numbers < 30)).all()


def test_random_ranges_tile_the_data():
    offsets = np.arange(0, 50000, 7)
    parts = [Split(lo, hi, False, "random", "s").select(offsets, 0) for lo, hi in [(0, 20), (20, 65), (65, 100)]]
    assert (np.sum(parts, axis=0) == 1).all()
    assert Split(0, 100, False, "random", "s").select(offsets, 0).all()
