"""The suggested recipe used when CreateMLModel gets no recipe (docs/behaviour.md,
"Recipes").

Shape, as Amazon generated it: ``ALL_BINARY``, ``ALL_CATEGORICAL``, one
``quantile_bin(NUMERIC_VARS_QB_<N>,<N>)`` per bin count in use (ascending),
then ``lowercase(no_punct(ALL_TEXT))``; numeric inputs are grouped by their
bin count N in {10, 20, 50, 100, 200, 500}; ``assignments`` is empty.

How N is chosen (Amazon never published its rule).  For each candidate N
the statistics give the plug-in mutual information between the target and
``quantile_bin(x, N)``.  Plug-in MI grows with N even for noise; its bias is
about ``(N-1)(K-1) / (2 n)`` nats (Miller-Madow), K target levels, n valid
values.  N maximises the bias-corrected MI, ties going to the smaller N: a
variable gets fine bins only when the data show structure at that
resolution and there are enough records to trust it.  Without MI figures,
N is the largest candidate not above the distinct count nor n/20 (at least
~20 records per bin), with a floor of 10.  The result depends only on the
inputs, so the same data always give the same recipe.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..data.mutual_info import BIN_LEVELS
from ..data.schema import NUMERIC, DataSchema
from .model_types import ModelType

MIN_RECORDS_PER_BIN = 20


@dataclass(frozen=True)
class NumericSummary:
    """What the statistics job reports for one NUMERIC input attribute.

    ``binned_mutual_information`` maps N to the plug-in MI (nats) between the
    target and ``quantile_bin(x, N)``; fill it for the levels in
    ``BIN_LEVELS`` (``data.mutual_info.mutual_information_by_level`` computes
    it from one fine-grained contingency table).  Leave it empty when there is
    no target information.
    """

    name: str
    valid_count: int
    distinct_count: int
    binned_mutual_information: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SuggestionStats:
    """``target_levels``: 2 for BINARY, the class count for MULTICLASS, the
    number of equal-frequency target bins the stats job used for REGRESSION."""

    target_levels: int
    numeric: Sequence[NumericSummary] = ()


def choose_bins(summary: NumericSummary, target_levels: int) -> int:
    n = max(summary.valid_count, 2)
    per_df = math.log(n) / (2.0 * n)
    scored = [
        (mi - (level - 1) * (max(target_levels, 2) - 1) * per_df, level)
        for level, mi in sorted(summary.binned_mutual_information.items())
        if level in BIN_LEVELS
    ]
    if scored:
        best_score, best = scored[0]
        for score, level in scored[1:]:
            if score > best_score + 1e-12:
                best_score, best = score, level
        return best
    cap = min(summary.distinct_count, summary.valid_count // MIN_RECORDS_PER_BIN)
    fitting = [level for level in BIN_LEVELS if level <= cap]
    return fitting[-1] if fitting else BIN_LEVELS[0]


def _quote(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def suggest_recipe(schema: DataSchema, stats: SuggestionStats) -> str:
    """Recipe JSON text for the schema's inputs; numeric inputs without a
    summary get 10 bins."""
    summaries = {s.name: s for s in stats.numeric}
    by_level: dict[int, list[str]] = {}
    for name, kind in schema.inputs:
        if kind != NUMERIC:
            continue
        summary = summaries.get(name)
        level = choose_bins(summary, stats.target_levels) if summary else BIN_LEVELS[0]
        by_level.setdefault(level, []).append(name)
    groups = {
        f"NUMERIC_VARS_QB_{level}": "group(" + ",".join(_quote(n) for n in by_level[level]) + ")"
        for level in sorted(by_level)
    }
    outputs = ["ALL_BINARY", "ALL_CATEGORICAL"]
    outputs += [f"quantile_bin(NUMERIC_VARS_QB_{level},{level})" for level in sorted(by_level)]
    outputs.append("lowercase(no_punct(ALL_TEXT))")
    return json.dumps({"groups": groups, "assignments": {}, "outputs": outputs}, indent=2)


def suggested_recipe(schema: DataSchema, model_type: ModelType, statistics: dict) -> str:
    """The recipe a model gets without one, from its training datasource's
    schema and stored statistics (docs/behaviour.md, "Recipes")."""
    target = statistics.get("target") or {}
    levels = model_type.target_levels(len(target.get("distribution") or []))
    return suggest_recipe(schema, SuggestionStats(levels, _numeric_summaries(statistics)))


def _numeric_summaries(statistics: dict) -> list[NumericSummary]:
    numeric = []
    for attribute in statistics.get("attributes", []):
        if attribute.get("type") != NUMERIC:
            continue
        valid = int(attribute.get("count", 0))  # the statistics count valid values only
        distinct = int(attribute.get("distinct", valid) or valid)
        mi = {int(k): float(v) for k, v in (attribute.get("binned_mutual_information") or {}).items()}
        numeric.append(NumericSummary(attribute["name"], max(valid, 0), distinct, mi))
    return numeric
