"""Input validation driven by the service model's shapes.

botocore checks almost none of these constraints on the client side, so the
server enforces every required member, type, length, range, enum and pattern
of the model, and reports the first violations in AWS's wording.
"""
from __future__ import annotations

import math

import regex
from botocore.model import Shape

from .errors import InvalidInputException
from .service_model import operation_model

# Treadle deliberately widens two patterns (docs/behaviour.md, "Data
# locations" and "Real-time endpoints and Predict"): data locations may also
# be file:// URIs below allowed directories, and the real-time endpoint is
# this server's own http(s) URL, not an amazonaws.com one, or the bare
# host[:port] that boto 2 sends.
PATTERN_OVERRIDES = {
    "S3Url": r"(s3://([^/]+)(/.*)?)|(file://.+)",
    "VipURL": r"(https?://[^\s/?#]+(/[^\s]*)?)|(([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?)",
}

MAX_REPORTED = 3


_compiled: dict[str, regex.Pattern] = {}


def _pattern(shape: Shape) -> regex.Pattern | None:
    source = PATTERN_OVERRIDES.get(shape.name, shape.metadata.get("pattern"))
    if source is None:
        return None
    compiled = _compiled.get(source)
    if compiled is None:
        # The model's patterns are Java regular expressions (\p{L} etc.);
        # the `regex` module understands those classes, `re` does not.
        compiled = _compiled[source] = regex.compile(source)
    return compiled


def _describe_type(value) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string",
            list: "list", dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def _is_text(value: str) -> bool:
    # PostgreSQL text cannot hold NUL, and unpaired surrogates (JSON "\ud800")
    # cannot be stored as UTF-8 anywhere.
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_plain: dict[str, bool] = {}


def _plain_text(shape: Shape) -> bool:
    """A string shape whose only rule is _is_text (no length, enum or pattern)."""
    plain = _plain.get(shape.name)
    if plain is None:
        plain = _plain[shape.name] = shape.type_name == "string" and _pattern(shape) is None and not any(
            shape.metadata.get(rule) is not None for rule in ("min", "max", "enum"))
    return plain


def _all_text(mapping: dict) -> bool:
    for key, item in mapping.items():
        if type(key) is not str or type(item) is not str:
            return False
    # Joining keeps each code point, so NULs and lone surrogates still show.
    return _is_text("".join(mapping) + "".join(mapping.values()))


def _shown(name: str) -> str:
    """A caller-chosen name as it may appear in a message: short, printable."""
    name = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return name if len(name) <= 64 else name[:61] + "..."


class _Collector:
    def __init__(self):
        self.errors: list[str] = []

    def add(self, path: str, rule: str) -> None:
        self.errors.append(f"Value at '{path}' failed to satisfy constraint: {rule}")


def _check(shape: Shape, value, path: str, out: _Collector) -> None:
    kind = shape.type_name
    if value is None:
        out.add(path, "Member must not be null")
        return
    if kind == "structure":
        if not isinstance(value, dict):
            out.add(path, f"Member must be an object, not a {_describe_type(value)}")
            return
        _check_structure(shape, value, path + ".", out)
    elif kind == "string":
        if not isinstance(value, str):
            out.add(path, f"Member must be a string, not a {_describe_type(value)}")
            return
        if not _is_text(value):
            out.add(path, "Member must be Unicode text without NUL characters or unpaired surrogates")
            return
        _check_length(shape, len(value), path, "length", out)
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            out.add(path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = _pattern(shape)
        if pattern is not None and pattern.fullmatch(value) is None:
            out.add(path, f"Member must satisfy regular expression pattern: "
                          f"{PATTERN_OVERRIDES.get(shape.name, shape.metadata.get('pattern'))}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            out.add(path, f"Member must be an integer, not a {_describe_type(value)}")
            return
        _check_range(shape, value, path, out)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.add(path, f"Member must be a number, not a {_describe_type(value)}")
            return
        if not math.isfinite(value):
            out.add(path, "Member must be a finite number")
            return
        _check_range(shape, value, path, out)
    elif kind == "boolean":
        if not isinstance(value, bool):
            out.add(path, f"Member must be a boolean, not a {_describe_type(value)}")
    elif kind == "list":
        if not isinstance(value, list):
            out.add(path, f"Member must be a list, not a {_describe_type(value)}")
            return
        _check_length(shape, len(value), path, "length", out)
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}.{index + 1}.member", out)
    elif kind == "map":
        if not isinstance(value, dict):
            out.add(path, f"Member must be an object, not a {_describe_type(value)}")
            return
        _check_length(shape, len(value), path, "length", out)
        if _plain_text(shape.key) and _plain_text(shape.value) and _all_text(value):
            return  # no entry can fail: skip building two paths per entry (a Predict Record)
        for key, item in value.items():
            _check(shape.key, key, f"{path}.{_shown(key)}.key", out)
            _check(shape.value, item, f"{path}.{_shown(key)}.value", out)
    else:  # timestamps and blobs never appear in this service's inputs
        out.add(path, f"Member has unsupported type {kind}")


def _check_length(shape: Shape, length: int, path: str, what: str, out: _Collector) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and length < low:
        out.add(path, f"Member must have {what} greater than or equal to {low}")
    if high is not None and length > high:
        out.add(path, f"Member must have {what} less than or equal to {high}")


def _check_range(shape: Shape, value, path: str, out: _Collector) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        out.add(path, f"Member must have value greater than or equal to {low}")
    if high is not None and value > high:
        out.add(path, f"Member must have value less than or equal to {high}")


def _check_structure(shape: Shape, value: dict, prefix: str, out: _Collector) -> None:
    members = shape.members
    for name in shape.required_members:
        if name not in value or value[name] is None:
            out.add(prefix + name, "Member must not be null")
    for name, item in value.items():
        member = members.get(name)
        if member is None:
            out.errors.append(f"Unknown member '{prefix}{_shown(name)}'")
            continue
        if item is None and name not in shape.required_members:
            continue  # JSON null for an optional member means "absent"
        _check(member, item, prefix + name, out)


def validate_input(operation: str, params) -> dict:
    """Raise InvalidInputException listing the violations, else return params
    with explicit nulls of optional members dropped."""
    shape = operation_model(operation).input_shape
    out = _Collector()
    if not isinstance(params, dict):
        raise InvalidInputException(f"The request body must be a JSON object, not a {_describe_type(params)}")
    _check_structure(shape, params, "", out)
    if out.errors:
        count = len(out.errors)
        shown = "; ".join(out.errors[:MAX_REPORTED])
        noun = "error" if count == 1 else "errors"
        raise InvalidInputException(f"{count} validation {noun} detected: {shown}")
    return {key: item for key, item in params.items() if item is not None}
