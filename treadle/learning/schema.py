"""The part of a datasource schema that recipes and features need.

The data team owns the full ``DataSchema``; this module only defines the
small shape the learning code relies on, plus a duck-typed adapter, so the
two can evolve independently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

TEXT = "TEXT"
CATEGORICAL = "CATEGORICAL"
NUMERIC = "NUMERIC"
BINARY = "BINARY"
ATTRIBUTE_TYPES = (TEXT, CATEGORICAL, NUMERIC, BINARY)


@dataclass(frozen=True)
class RecipeSchema:
    """Attributes in file order, plus the names that are not model inputs."""

    attributes: tuple[tuple[str, str], ...]
    target: str | None = None
    row_id: str | None = None
    excluded: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        attrs = tuple((str(n), str(t).upper()) for n, t in self.attributes)
        for name, kind in attrs:
            if kind not in ATTRIBUTE_TYPES:
                raise ValueError(f"attribute {name!r} has unsupported type {kind!r}")
        object.__setattr__(self, "attributes", attrs)
        object.__setattr__(self, "excluded", frozenset(self.excluded))

    def type_of(self, name: str) -> str | None:
        for attr, kind in self.attributes:
            if attr == name:
                return kind
        return None

    def is_input(self, name: str) -> bool:
        return (
            name != self.target
            and name != self.row_id
            and name not in self.excluded
            and self.type_of(name) is not None
        )

    @property
    def inputs(self) -> tuple[tuple[str, str], ...]:
        return tuple((n, t) for n, t in self.attributes if self.is_input(n))


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if not isinstance(obj, Mapping) and hasattr(obj, name):
            return getattr(obj, name)
    return default


def _attribute_pairs(attributes: Iterable[Any]) -> list[tuple[str, str]]:
    pairs = []
    for attr in attributes:
        if isinstance(attr, tuple):
            pairs.append((attr[0], attr[1]))
            continue
        name = _get(attr, "attributeName", "fieldName", "name")
        kind = _get(attr, "attributeType", "fieldType", "type", "attribute_type")
        pairs.append((name, getattr(kind, "value", kind)))
    return pairs


def as_recipe_schema(obj: Any) -> RecipeSchema:
    """Adapt a schema-like object: a ``RecipeSchema``, the schema JSON as a
    dict (current or legacy key names, spec 1.1), or any object with
    similarly named attributes (e.g. the data team's ``DataSchema``)."""
    if isinstance(obj, RecipeSchema):
        return obj
    attributes = _get(obj, "attributes", "variables")
    if attributes is None:
        raise ValueError("schema has no attributes")
    return RecipeSchema(
        attributes=tuple(_attribute_pairs(attributes)),
        target=_get(obj, "targetAttributeName", "targetFieldName", "target_attribute_name", "target"),
        row_id=_get(obj, "rowId", "recordAnnotationFieldName", "row_id"),
        excluded=frozenset(
            _get(obj, "excludedAttributeNames", "excludedVariableNames", "excluded_attribute_names",
                 "excluded", default=()) or ()
        ),
    )
