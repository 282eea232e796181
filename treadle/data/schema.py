"""Datasource schemas (docs/behaviour.md, "Schemas and attribute types"): parsing,
rendering, inference."""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from treadle.data.cells import binary_value, is_number

TYPES = BINARY, CATEGORICAL, NUMERIC, TEXT = ("BINARY", "CATEGORICAL", "NUMERIC", "TEXT")
UNSUPPORTED_TYPES = ("WEIGHTED_INT_SEQUENCE", "WEIGHTED_STRING_SEQUENCE")
MAX_ATTRIBUTES = 1000
MAX_SAMPLED_LINE = 102400  # bytes: the records reader rejects longer records

# Documented spelling first; the legacy spellings only ever appeared in API
# reference text, but users copy from there, so both are accepted.
_ALIASES = {
    "version": ("version",),
    "rowId": ("rowId", "recordAnnotationFieldName"),
    "rowWeight": ("rowWeight", "recordWeightFieldName"),
    "targetAttributeName": ("targetAttributeName", "targetFieldName"),
    "dataFormat": ("dataFormat",),
    "dataFileContainsHeader": ("dataFileContainsHeader",),
    "attributes": ("attributes", "variables"),
    "excludedAttributeNames": ("excludedAttributeNames", "excludedVariableNames"),
}
_KNOWN_KEYS = {alias for aliases in _ALIASES.values() for alias in aliases}


class SchemaError(ValueError):
    """The schema text is unusable; the message says exactly why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class DataSchema:
    attributes: tuple[tuple[str, str], ...]
    target: str | None = None
    row_id: str | None = None
    row_weight: str | None = None
    excluded: tuple[str, ...] = ()
    contains_header: bool = False
    data_format: str = "CSV"
    version: str = "1.0"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.attributes)

    def type_of(self, name: str) -> str:
        for attr, kind in self.attributes:
            if attr == name:
                return kind
        raise KeyError(name)

    def is_input(self, name: str) -> bool:
        """Whether a recipe may use the attribute: any but the target, the
        rowId, the rowWeight and the excluded ones (docs/behaviour.md,
        "Schemas and attribute types")."""
        return (name in self.names and name not in (self.target, self.row_id, self.row_weight)
                and name not in self.excluded)

    @property
    def inputs(self) -> tuple[tuple[str, str], ...]:
        return tuple((name, kind) for name, kind in self.attributes if self.is_input(name))

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "rowId": self.row_id,
            "rowWeight": self.row_weight,
            "targetAttributeName": self.target,
            "dataFormat": self.data_format,
            "dataFileContainsHeader": self.contains_header,
            "attributes": [{"attributeName": n, "attributeType": t} for n, t in self.attributes],
            "excludedAttributeNames": list(self.excluded),
        }

    def to_json(self) -> str:
        """Amazon's key order, pretty-printed the way its own schemas look (`"key" : value`)."""
        return json.dumps(self.to_dict(), indent=2, separators=(",", " : "), ensure_ascii=False)


def _pick(obj: dict, key: str, default=None):
    present = [alias for alias in _ALIASES[key] if alias in obj]
    if not present:
        return default
    values = {json.dumps(obj[alias], sort_keys=True) for alias in present}
    if len(values) > 1:
        raise SchemaError(f"{' and '.join(present)} are both given with different values")
    return obj[present[0]]


def _optional_name(obj: dict, key: str) -> str | None:
    value = _pick(obj, key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SchemaError(f"{key} must be a string or null, not {json.dumps(value)}")
    # Amazon's console writes "" for "no row id"; treat it like null.
    return value or None


def _bool(value, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise SchemaError(f"{key} must be true or false, not {json.dumps(value)}")


def _attribute(index: int, item) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise SchemaError(f"attribute #{index + 1} must be an object with attributeName and attributeType")
    name = item.get("attributeName", item.get("fieldName"))
    kind = item.get("attributeType", item.get("fieldType"))
    unknown = set(item) - {"attributeName", "attributeType", "fieldName", "fieldType"}
    if unknown:
        raise SchemaError(f"attribute #{index + 1} has unknown key {sorted(unknown)[0]!r}")
    if not isinstance(name, str) or not name:
        raise SchemaError(f"attribute #{index + 1} has no attributeName")
    if not isinstance(kind, str):
        raise SchemaError(f'attribute "{name}" has no attributeType')
    kind_upper = kind.upper()
    if kind_upper in UNSUPPORTED_TYPES:
        raise SchemaError(f'attribute "{name}" has type {kind_upper}, which Treadle does not support')
    if kind_upper not in TYPES:
        raise SchemaError(
            f'attribute "{name}" has unknown type "{kind}" (expected one of {", ".join(TYPES)})'
        )
    return name, kind_upper


def parse_schema(text: str) -> DataSchema:
    """Parse and validate a DataSchema JSON document (either key spelling)."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise SchemaError(f"the schema is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise SchemaError("the schema must be a JSON object")
    unknown = sorted(set(obj) - _KNOWN_KEYS)
    if unknown:
        raise SchemaError(f'unknown schema key "{unknown[0]}"')

    version = _pick(obj, "version", "1.0")
    if not isinstance(version, str):
        raise SchemaError(f"version must be a string, not {json.dumps(version)}")
    data_format = _pick(obj, "dataFormat", "CSV")
    if not isinstance(data_format, str) or data_format.upper() != "CSV":
        raise SchemaError(f"dataFormat must be \"CSV\", not {json.dumps(data_format)}")
    header = _bool(_pick(obj, "dataFileContainsHeader", False), "dataFileContainsHeader")

    raw_attributes = _pick(obj, "attributes")
    if raw_attributes is None:
        raise SchemaError("the schema has no attributes")
    if not isinstance(raw_attributes, list) or not raw_attributes:
        raise SchemaError("attributes must be a non-empty array")
    if len(raw_attributes) > MAX_ATTRIBUTES:
        raise SchemaError(
            f"the schema has {len(raw_attributes)} attributes; at most {MAX_ATTRIBUTES} are allowed"
        )
    attributes = tuple(_attribute(i, item) for i, item in enumerate(raw_attributes))
    types = {}
    for name, kind in attributes:
        if name in types:
            raise SchemaError(f'attribute "{name}" is defined more than once')
        types[name] = kind

    target = _optional_name(obj, "targetAttributeName")
    row_id = _optional_name(obj, "rowId")
    row_weight = _optional_name(obj, "rowWeight")
    for key, name in (("targetAttributeName", target), ("rowId", row_id), ("rowWeight", row_weight)):
        if name is not None and name not in types:
            raise SchemaError(f'{key} "{name}" is not one of the attributes')
    if row_weight is not None and types[row_weight] != "NUMERIC":
        raise SchemaError(f'rowWeight "{row_weight}" must be a NUMERIC attribute, not {types[row_weight]}')
    if target is not None and target in (row_id, row_weight):
        raise SchemaError(f'targetAttributeName "{target}" cannot also be the rowId or rowWeight')

    excluded_raw = _pick(obj, "excludedAttributeNames", [])
    if excluded_raw is None:
        excluded_raw = []
    if not isinstance(excluded_raw, list) or not all(isinstance(n, str) for n in excluded_raw):
        raise SchemaError("excludedAttributeNames must be an array of attribute names")
    for name in excluded_raw:
        if name not in types:
            raise SchemaError(f'excludedAttributeNames entry "{name}" is not one of the attributes')
        if name == target:
            raise SchemaError(f'the target "{name}" cannot be excluded')
    if len(set(excluded_raw)) != len(excluded_raw):
        raise SchemaError("excludedAttributeNames lists an attribute more than once")

    return DataSchema(
        attributes=attributes,
        target=target,
        row_id=row_id,
        row_weight=row_weight,
        excluded=tuple(excluded_raw),
        contains_header=header,
        data_format="CSV",
        version=version,
    )


# --- inference -------------------------------------------------------------

TEXT_MIN_MEAN_TOKENS = 4.0


def _column_type(values: Sequence[str]) -> str:
    present = [v.strip() for v in values if v.strip()]
    if not present:
        return "CATEGORICAL"
    if {binary_value(v) for v in present} == {0, 1}:
        return "BINARY"
    if all(is_number(v) for v in present):
        return "NUMERIC"
    if sum(len(v.split()) for v in present) / len(present) > TEXT_MIN_MEAN_TOKENS:
        return "TEXT"
    return "CATEGORICAL"


def _looks_like_header(first: Sequence[str], rest: Sequence[Sequence[str]], types: Sequence[str]) -> bool:
    cells = [c.strip() for c in first]
    if not all(cells) or len(set(cells)) != len(cells) or any(is_number(c) for c in cells):
        return False
    if any(t in ("NUMERIC", "BINARY") for t in types):
        return True
    return not any(cells[i] in {row[i].strip() for row in rest if i < len(row)} for i in range(len(cells)))


def _csv_row(line: str | bytes) -> list[str] | None:
    """One sampled line as CSV cells, or None for a line the records reader
    would reject anyway (too long, not UTF-8, a stray carriage return or a
    NUL, malformed quoting), so that such lines cannot decide the schema."""
    if isinstance(line, bytes):
        if len(line) > MAX_SAMPLED_LINE:
            return None
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            return None
    line = line.removesuffix("\n").removesuffix("\r")
    if len(line) > MAX_SAMPLED_LINE or "\r" in line or "\n" in line or "\x00" in line:
        return None
    try:
        return next(csv.reader([line], strict=True), None)
    except csv.Error:
        return None


def _rows(sample) -> list[list[str]]:
    items = list(sample)
    if items and isinstance(items[0], (str, bytes)):
        rows = [row for row in map(_csv_row, items) if row]
        # A few bad lines are rejected records; mostly bad lines mean the
        # data is not CSV text at all (a binary file, another encoding).
        if len(rows) * 2 <= len(items):
            raise SchemaError(f"{len(items) - len(rows)} of the {len(items)} sampled lines are not CSV records "
                              "of UTF-8 text ending in \\n or \\r\\n: is this a CSV file?")
        return rows
    return [[str(v) for v in row] for row in items]


def infer_schema(sample: Iterable, target: str | None = None, header: bool | None = None) -> DataSchema:
    """Guess a schema from sample CSV lines (str/bytes) or already split rows.

    Rules, applied in this order and deterministic for the same sample:

    * Column count is the longest row's; short rows count as empty cells.
    * Each column's type is guessed from its non-empty, whitespace-stripped
      values below the first row (or all rows when the first is not a header):
      BINARY when every value is a binary spelling (0, n, no, f, false /
      1, y, yes, t, true, case-insensitive) and both a false and a true
      spelling occur (so a 0/1 column is BINARY); else NUMERIC when every
      value is a decimal number (optional sign, fraction, exponent); else
      TEXT when values average more than 4 whitespace-separated tokens; else
      CATEGORICAL (also for a column with no values at all).
    * The first row is a header when its cells are all non-empty, distinct
      and non-numeric, and either some column is NUMERIC or BINARY below it,
      or none of its cells occurs again in its own column.
    * `header`, when given, says whether the first row is a header instead.
    * Without a header, attributes are named Var1, Var2, ... in column order.
    * `target`, when given, must name a column; it becomes targetAttributeName.
    """
    rows = _rows(sample)
    if not rows:
        raise SchemaError("cannot infer a schema from an empty sample")
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    body_types = [_column_type([r[i] for r in rows[1:]]) for i in range(width)]
    if header is None:
        header = len(rows) > 1 and _looks_like_header(rows[0], rows[1:], body_types)
    if header:
        names = [c.strip() for c in rows[0]]
        types = body_types
    else:
        names = [f"Var{i + 1}" for i in range(width)]
        types = [_column_type([r[i] for r in rows]) for i in range(width)]
    if target is not None and target not in names:
        raise SchemaError(f'targetAttributeName "{target}" is not one of the attributes')
    if width > MAX_ATTRIBUTES:
        raise SchemaError(f"the sample has {width} columns; at most {MAX_ATTRIBUTES} are allowed")
    return DataSchema(
        attributes=tuple(zip(names, types)),
        target=target,
        contains_header=header,
    )
