import json

import numpy as np

from treadle.data.schema import DataSchema
from treadle.data.mutual_info import BIN_LEVELS, mutual_information_by_level
from treadle.learning import NumericSummary, SuggestionStats, parse_recipe, suggest_recipe
from treadle.learning.suggested import choose_bins

SCHEMA = DataSchema(
    (("pclass", "CATEGORICAL"), ("sex", "BINARY"), ("age", "NUMERIC"), ("fare", "NUMERIC"),
     ("sibsp", "NUMERIC"), ("parch", "NUMERIC"), ("name", "TEXT"), ("survived", "BINARY"), ("pid", "NUMERIC")),
    target="survived",
    row_id="pid",
)


def stats(n=50_000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (x + rng.normal(scale=0.3, size=n) > 0).astype(int)
    noise = rng.normal(size=n)
    summaries = [
        NumericSummary("age", n, 90, mutual_information_by_level(contingency(x, y))),
        NumericSummary("fare", n, 40_000, mutual_information_by_level(contingency(noise, y))),
        NumericSummary("sibsp", n, 7),
    ]
    return SuggestionStats(target_levels=2, numeric=summaries)


def contingency(x, y, fine=500):
    edges = np.quantile(x, np.arange(1, fine) / fine)
    bins = np.searchsorted(edges, x)
    table = np.zeros((fine, 2))
    np.add.at(table, (bins, y), 1)
    return table


def test_shape_matches_amazon_generated_recipes():
    recipe = json.loads(suggest_recipe(SCHEMA, stats()))
    assert list(recipe) == ["groups", "assignments", "outputs"]
    assert recipe["assignments"] == {}
    levels = [int(name.rsplit("_", 1)[1]) for name in recipe["groups"]]
    assert levels == sorted(levels) and set(levels) <= set(BIN_LEVELS)
    assert all(name.startswith("NUMERIC_VARS_QB_") for name in recipe["groups"])
    assert recipe["outputs"][:2] == ["ALL_BINARY", "ALL_CATEGORICAL"]
    assert recipe["outputs"][2:-1] == [f"quantile_bin(NUMERIC_VARS_QB_{n},{n})" for n in levels]
    assert recipe["outputs"][-1] == "lowercase(no_punct(ALL_TEXT))"
    members = "".join(recipe["groups"].values())
    for name in ("'age'", "'fare'", "'sibsp'", "'parch'"):
        assert members.count(name) == 1
    assert "'pid'" not in members and "'survived'" not in members


def test_suggested_recipe_parses_against_its_schema():
    parsed = parse_recipe(suggest_recipe(SCHEMA, stats()), SCHEMA)
    canon = [t.canonical for t in parsed.terms]
    assert canon[:2] == ["sex", "pclass"] and canon[-1] == "lowercase(no_punct(name))"
    assert sum(c.startswith("quantile_bin(") for c in canon) == 4


def test_deterministic():
    assert suggest_recipe(SCHEMA, stats(seed=1)) == suggest_recipe(SCHEMA, stats(seed=1))


def test_informative_variable_gets_finer_bins_than_noise():
    s = {x.name: x for x in stats().numeric}
    assert choose_bins(s["fare"], 2) == 10
    assert choose_bins(s["age"], 2) > 10


def test_fallback_without_mutual_information():
    assert choose_bins(NumericSummary("v", 100_000, 7), 2) == 10
    assert choose_bins(NumericSummary("v", 100_000, 100_000), 2) == 500
    assert choose_bins(NumericSummary("v", 1_000, 100_000), 2) == 50
    assert choose_bins(NumericSummary("v", 0, 0), 2) == 10


def test_variables_without_summary_get_ten_bins_and_no_numeric_means_no_groups():
    recipe = json.loads(suggest_recipe(SCHEMA, SuggestionStats(target_levels=2)))
    assert list(recipe["groups"]) == ["NUMERIC_VARS_QB_10"]
    text_only = DataSchema((("t", "TEXT"), ("y", "BINARY")), target="y")
    recipe = json.loads(suggest_recipe(text_only, SuggestionStats(target_levels=2)))
    assert recipe["groups"] == {} and len(recipe["outputs"]) == 3


def test_mutual_information_by_level_on_independent_and_dependent_tables():
    independent = np.ones((500, 2))
    assert all(abs(v) < 1e-12 for v in mutual_information_by_level(independent).values())
    dependent = np.zeros((500, 2))
    dependent[:250, 0] = dependent[250:, 1] = 1
    mi = mutual_information_by_level(dependent)
    assert set(mi) == set(BIN_LEVELS)
    assert all(abs(v - np.log(2)) < 1e-9 for v in mi.values())


def test_missing_cells_do_not_shrink_the_valid_count_twice():
    """The statistics' `count` holds valid values only: 1,000 valid values of
    2,000 rows allow 50 bins of at least 20 records (without a target, the
    rule falls back to counts), not the 10 a count minus missing gives."""
    from treadle.data.ingest import ingest
    from treadle.data.records import bytes_source
    from treadle.learning import MODEL_TYPES
    from treadle.learning.suggested import suggested_recipe

    rows = ["x,y"] + [f"{i if i % 2 else ''},{i % 7}" for i in range(2000)]
    schema = DataSchema((("x", "NUMERIC"), ("y", "NUMERIC")), contains_header=True)
    result = ingest([bytes_source("d.csv", "\n".join(rows).encode())], schema, compute_statistics=True)
    x = next(a for a in result.statistics["attributes"] if a["name"] == "x")
    assert (x["count"], x["missing"]) == (1000, 1000)
    recipe = json.loads(suggested_recipe(schema, MODEL_TYPES["REGRESSION"], result.statistics))
    assert "quantile_bin(NUMERIC_VARS_QB_50,50)" in recipe["outputs"]
