"""The grammar of a cell (treadle/data/cells.py, docs/behaviour.md "Cells"): its
scalar, Arrow and compiled forms agree, and so does every reader of cells --
schema inference, the statistics, the training reader, the batch reader and
Predict's record path -- with each other and with the rule as documented."""
import math
import re
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from treadle.data import cells, kernels
from treadle.data.ingest import ingest
from treadle.data.records import ByteSource, RecordReader
from treadle.data.schema import infer_schema
from treadle.learning import MODEL_TYPES, FeaturePipeline, PipelineOptions, parse_recipe, prediction_strings

from .conftest import make_schema

MISSING, INVALID = "missing", "invalid"
SPELLINGS = {"1": 1, "y": 1, "yes": 1, "t": 1, "true": 1, "0": 0, "n": 0, "no": 0, "f": 0, "false": 0}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def stated_number(cell: str):
    """docs/behaviour.md, "Cells": whitespace (str.isspace) around a value is
    dropped; nothing left is missing; a finite decimal number is a value."""
    text = cell.strip()
    if not text:
        return MISSING
    if _NUMBER.fullmatch(text) and math.isfinite(float(text)):
        return float(text)
    return INVALID


def stated_binary(cell: str):
    text = cell.strip()
    if not text:
        return MISSING
    return SPELLINGS.get(text.lower(), INVALID) if text.isascii() else INVALID


# -- the forms of the grammar ------------------------------------------------------

def test_python_and_arrow_trim_the_same_whitespace():
    points = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    trimmed = pc.utf8_trim_whitespace(pa.array([p + "a" + p for p in points])).to_pylist()
    assert [t == "a" for t in trimmed] == [p.isspace() for p in points]


def test_numbers_match_arrow_parse_exactly():
    rng = np.random.default_rng(1)
    pool = ["", " ", "1", "-0", "+.5", ".", "1.", "1e5", "1E-5", "1e", "abc", "1.2.3", " 3.25 ", "\t7", "1e999",
            "-1e-400", "12345678901234567890", "0.1234567890123456789012", "9007199254740993",
            "123456789012345678e-5", "0000000000000000000000012.5", "nan", "inf", "--1", "e5", "5e+3", "0x10",
            "2.5e22", "2.5e23", "17976931348623157e292", "4.9e-324"]
    values = [pool[i] for i in rng.integers(0, len(pool), 3000)]
    values += [repr(float(x)) for x in rng.normal(size=3000) * 10.0 ** rng.integers(-30, 30, 3000)]
    values += [str(x) for x in np.round(rng.normal(50, 30, 3000), 4)]
    array = pa.array(values)
    compiled = cells.numeric(array)
    checked = cells.numeric_checked(pc.utf8_trim_whitespace(array))
    assert (compiled.missing == checked.missing).all()
    assert (compiled.invalid == checked.invalid).all()
    ok = compiled.valid
    assert (compiled.values[ok] == checked.values[ok]).all()
    assert np.isnan(compiled.values[~ok]).all()
    scalar = np.array([cells.number_value(v) for v in values])
    np.testing.assert_array_equal(scalar, compiled.values)


ODD_NUMBERS = ["1e5", ".5", "5.", " 3 ", "-2", "+4", "1_0", "nan", "NaN", "inf", "-Infinity", "0x10", "", "1e999",
               "abc", "1e", ".", "+", "1,5", "1.e5", "-.5e-2", "\t7\n", "\u0661\u0662", "\xa08"]


@pytest.mark.parametrize("with_invalid", [False, True])
def test_arrow_form_agrees_with_the_scalar_form(with_invalid):
    # Unicode data takes the Arrow form: without invalid strings its fast
    # cast, with them the checked path.
    strings = [s for s in ODD_NUMBERS if with_invalid or s in ("1e5", ".5", "nan", "inf", "", "1e999", " 3 ", "\xa08")]
    batch = cells.numeric(pa.array(strings)).values
    single = np.array([cells.number_value(s) for s in strings])
    np.testing.assert_array_equal(batch, single)


@pytest.mark.parametrize("padding", ["", " \t", "\u2003"])
def test_binary_spellings(padding):
    spellings = ["", " ", "yes", "YES", " No ", "t", "F", "true", "FALSE", "0", "1", "y", "n", "perhaps", "yess",
                 "2", "truee", "\tY", "\u212a", "yes\u0301"]
    column = cells.binary(pa.array([padding + s for s in spellings]))
    expected = [stated_binary(s) for s in spellings]
    assert column.values[[e == 1 for e in expected]].tolist() == [1.0] * 7
    assert column.missing.tolist() == [e == MISSING for e in expected]
    assert column.invalid.tolist() == [e == INVALID for e in expected]
    assert [cells.binary_value(padding + s) for s in spellings] == [
        {MISSING: cells.MISSING, INVALID: cells.INVALID}.get(e, e) for e in expected]


# -- random cells through every reader ---------------------------------------------

SPACES = st.sampled_from([" ", "\t", "\xa0", "\u2003", "\u3000", "\x0b", "\x0c", "\x1c", "\x85", "\u2028",
                          "\u202f", "\u1680"])
PADDING = st.lists(SPACES, max_size=3).map("".join)
DIGITS = st.text("0123456789", max_size=22)
NUMBER = st.builds(
    lambda sign, whole, fraction, exponent: sign + whole + fraction + exponent,
    st.sampled_from(["", "+", "-"]), DIGITS,
    st.one_of(st.just(""), DIGITS.map(lambda d: "." + d)),
    st.one_of(st.just(""), st.builds(lambda e, s, d: e + s + d, st.sampled_from("eE"),
                                     st.sampled_from(["", "+", "-"]), st.text("0123456789", max_size=4))))
WORD = st.sampled_from(sorted(SPELLINGS) + ["ye", "tru", "yes!", "nope", "2", "10"]).flatmap(
    lambda w: st.tuples(*[st.sampled_from([c.lower(), c.upper()]) for c in w]).map("".join))
NOISE = st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1_0", "\u0661\u0662", "\uff11\uff12", "0x10", "1,5",
                         '"', '""5', '5"', ".", "+", "e5", "1e", "\u212a", "\u0130", "y\u0301", "caf\u00e9"])
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=6)
CELL = st.builds(lambda before, core, after: before + core + after,
                 PADDING, st.one_of(NUMBER, WORD, NOISE, TEXT), PADDING)


def _field(value: str, quoted: bool) -> str:
    if quoted or '"' in value or "," in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _sources(values: list[str], quoting: list[bool]) -> list[tuple[list[bytes], int]]:
    """The same records as one block, and as one block per line (so that plain
    lines take the compiled path whatever the other lines hold)."""
    lines = [b"x,y\n"] + [f"{_field(v, q)},1\n".encode() for v, q in zip(values, quoting)]
    return [([b"".join(lines)], 1 << 20), (lines, 1)]


def _schemas(kind: str):
    """x as an input (the target is y), and x as the target."""
    return tuple(make_schema([("x", kind), ("y", "NUMERIC")], dataFileContainsHeader=True, targetAttributeName=target)
                 for target in ("y", "x"))


def _chunks(pieces, chunk_bytes, schema, require_target=False):
    reader = RecordReader([ByteSource("f.csv", list(pieces))], schema, chunk_bytes=chunk_bytes,
                          require_target=require_target)
    return list(reader)


def _statistics(pieces, chunk_bytes, schema) -> dict:
    result = ingest([ByteSource("f.csv", list(pieces))], schema, chunk_bytes=chunk_bytes, workers=1)
    return result.statistics["attributes"][0]


def _labels(pieces, chunk_bytes, schema, model_type) -> list:
    """What training learns from: the records the training reader keeps, and their targets."""
    labels = MODEL_TYPES[model_type].targets(schema)
    return [y for chunk in _chunks(pieces, chunk_bytes, schema, require_target=True) for y in labels.y(chunk).tolist()]


def _true_labels(model_type, chunks, kind) -> list[str]:
    """The batch output's trueLabel column, x taken for the target."""
    return [label for chunk in chunks for label in MODEL_TYPES[model_type].true_labels(chunk, "x", kind).to_pylist()]


def _features(kind, chunks, values):
    """Each record's features in the batch path and in Predict's record path, and
    the columns of the value and of the missing indicator."""
    schema = make_schema([("x", kind), ("y", "NUMERIC")], targetAttributeName="y")
    recipe = parse_recipe('{"outputs": ["x"]}', schema)
    options = PipelineOptions(standardize_numeric=False, dtype="float64")
    pipeline = FeaturePipeline(recipe, options).fit(chunk.table for chunk in chunks)
    batch = []
    for chunk in chunks:
        rows = pipeline.transform(chunk.table)
        batch += [list(zip(*(a.tolist() for a in rows.row(i)))) for i in range(rows.n_rows)]
    records = [list(zip(*pipeline.transform_record({"x": v}))) for v in values]
    plan = pipeline._plans[0]
    return batch, records, plan.value_col, plan.missing_col


def _inferred(value: str, *others: str) -> str:
    lines = [b"x,y"] + [f"{_field(v, False)},1".encode() for v in (value, *others)]
    return infer_schema(lines, header=True).type_of("x")


RANDOM_CELLS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RANDOM_CELLS
@given(st.lists(st.tuples(CELL, st.booleans()), min_size=1, max_size=30))
def test_every_reader_reads_a_numeric_cell_alike(drawn):
    values, quoting = [v for v, _ in drawn], [q for _, q in drawn]
    expected = [stated_number(v) for v in values]
    numbers = [e for e in expected if isinstance(e, float)]
    as_float = [e if isinstance(e, float) else math.nan for e in expected]

    np.testing.assert_array_equal([cells.number_value(v) for v in values], as_float)
    assert [_inferred(v) == "NUMERIC" for v in values] == [isinstance(e, float) for e in expected]

    as_input, as_target = _schemas("NUMERIC")
    for pieces, chunk_bytes in _sources(values, quoting):
        stats = _statistics(pieces, chunk_bytes, as_input)
        assert (stats["count"], stats["missing"], stats["invalid"]) == (
            len(numbers), expected.count(MISSING), expected.count(INVALID))
        if numbers:
            assert (stats["min"], stats["max"]) == (min(numbers), max(numbers))

        chunks = _chunks(pieces, chunk_bytes, as_input)
        np.testing.assert_array_equal(np.concatenate([c.typed("x").values for c in chunks]), as_float)
        assert _labels(pieces, chunk_bytes, as_target, "REGRESSION") == numbers
        with np.errstate(over="ignore"):  # beyond float32's range a number is written as its sign and ∞
            true_labels = _true_labels("REGRESSION", chunks, "NUMERIC")
            written = prediction_strings(np.array(numbers)).to_pylist()
        assert [label != "" for label in true_labels] == [isinstance(e, float) for e in expected]
        assert [label for label in true_labels if label] == written

        batch, records, value, missing = _features("NUMERIC", chunks, values)
        assert batch == records == [[(value, e)] if isinstance(e, float) else [(missing, 1.0)] for e in expected]


@RANDOM_CELLS
@given(st.lists(st.tuples(CELL, st.booleans()), min_size=1, max_size=30))
def test_every_reader_reads_a_binary_cell_alike(drawn):
    values, quoting = [v for v, _ in drawn], [q for _, q in drawn]
    expected = [stated_binary(v) for v in values]
    codes = [{MISSING: cells.MISSING, INVALID: cells.INVALID}.get(e, e) for e in expected]

    assert [cells.binary_value(v) for v in values] == codes
    assert [_inferred(v, "yes", "no") == "BINARY" for v in values] == [e != INVALID for e in expected]

    as_input, as_target = _schemas("BINARY")
    for pieces, chunk_bytes in _sources(values, quoting):
        stats = _statistics(pieces, chunk_bytes, as_input)
        assert [stats[k] for k in ("true", "false", "missing", "invalid")] == [
            expected.count(k) for k in (1, 0, MISSING, INVALID)]

        chunks = _chunks(pieces, chunk_bytes, as_input)
        typed = [c.typed("x") for c in chunks]
        assert np.concatenate([np.where(t.missing, cells.MISSING, np.where(t.invalid, cells.INVALID, t.values))
                               for t in typed]).tolist() == codes
        assert _labels(pieces, chunk_bytes, as_target, "BINARY") == [e for e in expected if e in (0, 1)]
        assert _true_labels("BINARY", chunks, "BINARY") == [{1: "1", 0: "0"}.get(e, "") for e in expected]

        batch, records, value, missing = _features("BINARY", chunks, values)
        assert batch == records == [[(value, 1.0)] if e == 1 else [] if e == 0 else [(missing, 1.0)]
                                    for e in expected]


TEXT_CELL = st.lists(st.one_of(SPACES, WORD, NOISE, TEXT), max_size=8).map("".join)


@RANDOM_CELLS
@given(st.lists(st.tuples(TEXT_CELL, st.booleans()), min_size=1, max_size=20))
@example([("nan nan", False), ("a\xa0b a", True)])
def test_every_reader_splits_text_into_the_same_words(drawn):
    """docs/behaviour.md, "Cells": the statistics' word counts, the batch
    path's tokens and Predict's record path split on the same whitespace."""
    values, quoting = [v for v, _ in drawn], [q for _, q in drawn]
    words = [v.split() for v in values]
    schema = make_schema([("x", "TEXT"), ("y", "NUMERIC")], dataFileContainsHeader=True, targetAttributeName="y")
    for pieces, chunk_bytes in _sources(values, quoting):
        stats = _statistics(pieces, chunk_bytes, schema)
        assert stats["total_words"] == sum(len(w) for w in words)
        chunks = _chunks(pieces, chunk_bytes, schema)
        batch, records, _, _ = _features("TEXT", chunks, values)
        assert [len(r) for r in batch] == [len(w) for w in words]  # a repeated word repeats its column
        assert [sorted(r) for r in batch] == [sorted(r) for r in records]


@RANDOM_CELLS
@given(st.lists(st.tuples(CELL, st.booleans()), min_size=1, max_size=30))
def test_every_reader_reads_a_categorical_cell_alike(drawn):
    """A category is the value without the whitespace around it, to the
    statistics (as an input and as the target), the features in both paths,
    the training labels and the batch output's trueLabel."""
    values, quoting = [v for v, _ in drawn], [q for _, q in drawn]
    categories = [v.strip() for v in values]
    as_input, as_target = _schemas("CATEGORICAL")
    for pieces, chunk_bytes in _sources(values, quoting):
        stats = _statistics(pieces, chunk_bytes, as_input)
        assert stats["distinct"] == len(set(categories))
        target = ingest([ByteSource("f.csv", list(pieces))], as_target, chunk_bytes=chunk_bytes,
                        workers=1).statistics["target"]
        present = [c for c in categories if c]
        assert {d["value"]: d["count"] for d in target["distribution"]} == {c: categories.count(c) for c in categories}
        assert target["missing_or_invalid"] == categories.count("")

        chunks = _chunks(pieces, chunk_bytes, as_input)
        batch, records, _, _ = _features("CATEGORICAL", chunks, values)
        assert batch == records
        column_of = {}
        for category, row in zip(categories, batch):
            assert column_of.setdefault(category, row) == row
        assert len({tuple(r) for r in batch}) == len(set(categories))
        if len(set(present)) >= 2:
            labels = MODEL_TYPES["MULTICLASS"].targets(as_target)
            target_chunks = _chunks(pieces, chunk_bytes, as_target, require_target=True)
            for chunk in target_chunks:
                labels.observe(chunk)
            labels.finish()
            assert labels.classes == sorted(set(present))
        assert _true_labels("MULTICLASS", _chunks(pieces, chunk_bytes, as_target), "CATEGORICAL") == categories


def test_plain_cells_take_the_compiled_path():
    """The property tests reach the compiled form only through plain-ASCII lines."""
    offsets, data = kernels.buffers(pa.array([" +1.5e3 ", "\tyes"]))
    assert kernels.plain_ascii(offsets, data)
    offsets, data = kernels.buffers(pa.array(["\xa05"]))
    assert not kernels.plain_ascii(offsets, data)
