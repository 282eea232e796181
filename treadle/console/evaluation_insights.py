"""What an evaluation's page shows, made once from the insights its job
stored (`treadle/jobs/evaluation.py`): the threshold table a BINARY page's
slider reads, the shaded confusion matrix of a MULTICLASS one, the
residual histogram of a REGRESSION one."""
from __future__ import annotations

import bisect
import functools
import json
import math

from ..learning.model_types import INSIGHT_POINTS

SHADES = 5  # confusion matrix cells are shaded in this many steps (CSS classes)


@functools.lru_cache(maxsize=32)
def view(artifacts, key: str) -> dict:
    """The page's view of the insights stored at `key`. An evaluation's
    insights never change once written, so each is read and prepared once."""
    insights = json.loads(artifacts.get(key))
    kind = insights["model_type"]
    shown = {"model_type": kind, "records": insights.get("records", 0), "rejected": insights.get("rejected", 0),
             "metric": _finite(insights.get("metric")), "baseline": _finite(insights.get("baseline")),
             "alerts": insights.get("alerts", [])}
    if kind == "BINARY":
        shown.update(_binary(insights))
    elif kind == "MULTICLASS":
        shown.update(_multiclass(insights))
    else:
        shown.update(_regression(insights))
    return shown


def _finite(value) -> float | None:
    """NaN (an AUC without both classes) is shown as no value: JSON has no NaN."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


# -- BINARY ----------------------------------------------------------------------
def _binary(insights: dict) -> dict:
    """The threshold table: the distinct scores kept (ascending) and the
    weight of actual positives and negatives scoring at or above each, so
    the counts at any cut-off are one binary search away. A score at or
    above the cut-off is predicted "1" (docs/behaviour.md, "Training")."""
    table = insights["binary"]
    tp, fp = _at_or_above(table["pos"]), _at_or_above(table["neg"])
    return {"table": {"scores": table["scores"], "tp": tp, "fp": fp,
                      "positives": tp[0] if tp else 0.0, "negatives": fp[0] if fp else 0.0},
            # Past this many records the job may have kept fewer scores than
            # there were: counts are exact at the kept ones.
            "coarse": insights.get("records", 0) > INSIGHT_POINTS, "kept": INSIGHT_POINTS,
            "histograms": insights.get("histograms"), "roc": _curve(insights.get("roc"))}


def _curve(roc: dict | None) -> dict | None:
    """The ROC curve's points; the page finds the cut-off's point from the
    threshold table, so the curve's own thresholds stay behind."""
    return {"fpr": roc["fpr"], "tpr": roc["tpr"]} if roc else None


def _at_or_above(weights: list[float]) -> list[float]:
    total, out = 0.0, [0.0] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        total += weights[i]
        out[i] = total
    return out


def counts_at(table: dict, threshold: float) -> dict:
    """Counts and rates at a cut-off, as the page's script computes them."""
    i = bisect.bisect_left(table["scores"], threshold)
    tp = table["tp"][i] if i < len(table["scores"]) else 0.0
    fp = table["fp"][i] if i < len(table["scores"]) else 0.0
    fn, tn = table["positives"] - tp, table["negatives"] - fp
    total = tp + fp + tn + fn
    return {"threshold": threshold, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "accuracy": _ratio(tp + tn, total), "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn), "fpr": _ratio(fp, fp + tn)}


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


# -- MULTICLASS ------------------------------------------------------------------
def _multiclass(insights: dict) -> dict:
    top = insights["top"]
    # Past ten classes the last row and column add up the rest.
    others = len(insights["confusion"]["labels"]) > len(top["labels"])
    last = len(top["labels"]) - 1
    rows = []
    for r, (label, counts) in enumerate(zip(top["labels"], top["matrix"])):
        total = sum(counts)
        cells = []
        for column, count in enumerate(counts):
            share = count / total if total else 0.0
            step = math.ceil(share * SHADES) if count else 0
            # The "others" corner mixes right and wrong answers among the
            # classes left out: it is shaded as neither.
            kind = "miss" if column != r else ("others" if others and r == last else "hit")
            cells.append({"count": count, "share": share, "shade": f"cm-{kind}-{step}"})
        rows.append({"label": label, "total": total, "cells": cells, "others": others and r == last})
    per_class = insights["per_class"]
    labels = insights["confusion"]["labels"]
    everything = sum(per_class["true_frequency"]) or 1.0
    predicted_all = sum(per_class["predicted_frequency"]) or 1.0
    classes = sorted(({"label": label, "f1": f1, "true": t, "predicted": p, "true_share": t / everything,
                       "predicted_share": p / predicted_all}
                      for label, f1, t, p in zip(labels, per_class["f1"], per_class["true_frequency"],
                                                 per_class["predicted_frequency"])),
                     key=lambda c: (-c["true"], c["label"]))
    # The frequency bars are drawn against the largest share, so that many
    # small classes still show their differences.
    largest = max([c["true_share"] for c in classes] + [c["predicted_share"] for c in classes] + [1e-12])
    return {"matrix": {"labels": top["labels"], "rows": rows}, "classes": classes, "largest_share": largest,
            "unknown_labels": insights.get("unknown_labels", 0)}


# -- REGRESSION ------------------------------------------------------------------
def _regression(insights: dict) -> dict:
    histogram = insights.get("residual_histogram") or {"lower_edges": [], "bin_width": 0, "weights": []}
    return {"residuals": histogram, "residual_total": sum(histogram["weights"])}
