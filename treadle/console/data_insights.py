"""Data insights on a datasource's page: the statistics its job computed
(`treadle/data/statistics.py` says what they hold), arranged for the
template, with the numbers the charts draw in one JSON block.

The statistics have a fixed size whatever the number of records, so the
page costs the same for a thousand records as for a billion.
"""
from __future__ import annotations

import json
import logging
import math

from starlette.concurrency import run_in_threadpool

from ..data.statistics import HISTOGRAM_LEVELS
from .app import Console
from .sessions import Session

GROUPS = (("NUMERIC", "Numeric"), ("BINARY", "Binary"), ("CATEGORICAL", "Categorical"), ("TEXT", "Text"))
DEFAULT_BINS = "50"

log = logging.getLogger("treadle.console")


async def context(console: Console, session: Session, found: dict) -> dict:
    """What datasource.html shows besides the object: `insights` when the
    datasource has statistics."""
    if found.get("Status") != "COMPLETED" or not found.get("ComputeStatistics"):
        return {}
    entity = await run_in_threadpool(console.services.entities.get, session.account, "DataSource",
                                     found["DataSourceId"])
    key = entity.document.get("_statistics") if entity is not None else None
    if not key:
        return {}
    try:
        statistics = json.loads(await run_in_threadpool(console.services.artifacts.get, key))
    except Exception:
        log.exception("cannot read the statistics of datasource %s", found["DataSourceId"])
        return {"insights_problem": "This datasource's statistics cannot be read."}
    return {"insights": arrange(statistics)}


def _percent(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def shown(value) -> str:
    """A figure for people: thousands separated, about four significant digits."""
    if value is None:
        return "–"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    magnitude = abs(value)
    if 1e-4 <= magnitude < 1e9:
        return f"{value:,.{max(0, 3 - math.floor(math.log10(magnitude)))}f}"
    return f"{value:.4g}"


def _with_share(count: int, whole: int) -> str:
    share = _percent(count, whole)
    return shown(count) if share is None or not count else f"{shown(count)} ({share:.1f} %)"


def _figures(attribute: dict) -> list[tuple[str, str]]:
    kind = attribute["type"]
    if kind == "NUMERIC":
        rows = attribute["count"] + attribute["missing"] + attribute["invalid"]
        figures = [("Values", shown(attribute["count"])), ("Missing", _with_share(attribute["missing"], rows)),
                   ("Invalid", _with_share(attribute["invalid"], rows))]
        figures += [(label, shown(attribute.get(key))) for label, key in (
            ("Min", "min"), ("Median", "median"), ("Mean", "mean"), ("Max", "max"), ("Std dev", "stddev"))]
    elif kind == "BINARY":
        rows = attribute["count"] + attribute["missing"] + attribute["invalid"]
        figures = [("Values", shown(attribute["count"])), ("Missing", _with_share(attribute["missing"], rows)),
                   ("Invalid", _with_share(attribute["invalid"], rows)),
                   ("True (1)", "–" if attribute["percent_true"] is None else f"{attribute['percent_true']:.1f} %")]
    elif kind == "CATEGORICAL":
        figures = [("Values", shown(attribute["count"])),
                   ("Distinct", ("" if attribute.get("exact", True) else "about ") + shown(attribute["distinct"]))]
    else:
        per_record = attribute.get("words_per_record") or {}
        length = attribute.get("word_length") or {}
        figures = [("Records", shown(attribute["count"])), ("Empty", _with_share(attribute["empty"], attribute["count"])),
                   ("Words", shown(attribute["total_words"])),
                   ("Distinct words", ("" if attribute.get("exact", True) else "about ")
                    + shown(attribute["unique_words"])),
                   ("Words per record", f"{shown(per_record.get('min'))} – {shown(per_record.get('max'))}, "
                                        f"mean {shown(per_record.get('mean'))}"),
                   ("Word length", f"{shown(length.get('min'))} – {shown(length.get('max'))}")]
    if attribute.get("distinct") is not None and kind == "NUMERIC":
        figures.append(("Distinct", shown(attribute["distinct"])))
    return figures


def _bars(pairs: list[tuple[str, int]], total: int) -> list[dict]:
    return [{"value": value, "count": count, "percent": _percent(count, total)} for value, count in pairs]


def _numeric(attribute: dict) -> tuple[dict, dict | None]:
    rows = attribute["count"] + attribute["missing"] + attribute["invalid"]
    view = {"missing_percent": _percent(attribute["missing"], rows),
            "invalid_percent": _percent(attribute["invalid"], rows)}
    histograms = {level: found for level, found in (attribute.get("histograms") or {}).items() if found}
    old = attribute.get("histogram") or []
    if not histograms and len(old) > 1:
        # Statistics computed before the exact histograms: their 20 bins.
        histograms = {"20": {"start": old[0]["lower"], "width": old[0]["upper"] - old[0]["lower"],
                             "counts": [b["count"] for b in old]}}
    chart = {"kind": "histogram", "histograms": histograms} if histograms else None
    return view, chart


def _binary(attribute: dict) -> tuple[dict, dict]:
    total = attribute["true"] + attribute["false"]
    values = _bars([("1", attribute["true"]), ("0", attribute["false"])], total)
    return {"values": values}, {"kind": "bars", "labels": ["1", "0"],
                                "counts": [attribute["true"], attribute["false"]]}


def _categorical(attribute: dict) -> tuple[dict, dict]:
    top = [(v["value"], v["count"]) for v in attribute.get("top_values", [])]
    other = attribute.get("other_count", 0)
    values = _bars(top, attribute["count"])
    labels, counts = [v for v, _ in top], [c for _, c in top]
    if other:
        labels.append("(other)")
        counts.append(other)
    return {"values": values, "other": other, "other_percent": _percent(other, attribute["count"])}, \
        {"kind": "bars", "labels": labels, "counts": counts}


def _text(attribute: dict) -> tuple[dict, dict]:
    words = attribute.get("prominent_words", [])
    return {"words": words}, {"kind": "bars", "labels": [w["word"] for w in words],
                              "counts": [w["count"] for w in words]}


def _target(target: dict | None, attributes: dict[str, dict], charts: dict) -> dict | None:
    if not target:
        return None
    view = {"name": target["name"], "type": target["type"]}
    if target["type"] == "NUMERIC":
        found = attributes.get(target["name"])
        if found is not None:
            view["attribute"] = found
            if found["chart"]:
                charts["target"] = charts[found["chart"]]
                view["chart"] = "target"
        return view
    distribution = [(d["value"], d["count"]) for d in target.get("distribution", [])]
    total = sum(count for _, count in distribution) + target.get("missing_or_invalid", 0)
    view["values"] = _bars(distribution, total)
    view["missing"] = target.get("missing_or_invalid", 0)
    view["missing_percent"] = _percent(view["missing"], total)
    charts["target"] = {"kind": "bars", "labels": [v for v, _ in distribution],
                        "counts": [c for _, c in distribution]}
    view["chart"] = "target"
    return view


def arrange(statistics: dict) -> dict:
    charts: dict[str, dict] = {}
    by_name: dict[str, dict] = {}
    groups: dict[str, list[dict]] = {kind: [] for kind, _ in GROUPS}
    shape = {"NUMERIC": _numeric, "BINARY": _binary, "CATEGORICAL": _categorical, "TEXT": _text}
    target_name = (statistics.get("target") or {}).get("name")
    for index, attribute in enumerate(statistics.get("attributes", [])):
        kind = attribute["type"]
        view, chart = shape[kind](attribute)
        chart_id = f"a{index}" if chart else None
        if chart:
            charts[chart_id] = chart
        correlation = attribute.get("correlation_to_target") or {}
        entry = {**attribute, **view, "index": index, "figures": _figures(attribute), "chart": chart_id, "is_target": attribute["name"] == target_name,
                 "mutual_information": correlation.get("mutual_information"),
                 "normalized": correlation.get("normalized")}
        by_name[attribute["name"]] = entry
        groups[kind].append(entry)
    target = _target(statistics.get("target"), by_name, charts)
    ranked = sorted((a for a in by_name.values() if a["mutual_information"] is not None),
                    key=lambda a: (-a["mutual_information"], a["name"]))
    records = statistics.get("records", 0)
    return {
        "records": records,
        "processed": statistics.get("records_processed", records),
        "rejected": statistics.get("records_rejected", 0),
        "attribute_count": len(by_name),
        "target": target,
        "correlations": ranked,
        "groups": [(kind, label, groups[kind]) for kind, label in GROUPS if groups[kind]],
        "charts": charts,
        "bins": [str(level) for level in HISTOGRAM_LEVELS],
        "default_bins": DEFAULT_BINS,
    }
