"""Checks that a model type, a recipe and a datasource schema fit together,
shared by CreateMLModel (as InvalidInputException) and the training job (as
a FAILED model)."""
from __future__ import annotations

import json

from ..data.schema import DataSchema
from .errors import RecipeError
from .recipe_parser import parse_recipe

# Which target attribute types each model type can learn.
TARGET_TYPES = {
    "BINARY": ("BINARY",),
    "REGRESSION": ("NUMERIC",),
    "MULTICLASS": ("CATEGORICAL", "BINARY"),
}


def check_target(schema: DataSchema, model_type: str, error=ValueError) -> tuple[str, str]:
    if schema.target is None:
        raise error("The training datasource's schema has no targetAttributeName; a model needs a target")
    kind = schema.type_of(schema.target)
    if kind not in TARGET_TYPES[model_type]:
        allowed = " or ".join(TARGET_TYPES[model_type])
        raise error(f"A {model_type} model needs a {allowed} target; {schema.target} is {kind}")
    return schema.target, kind


def check_model_inputs(schema: DataSchema, model_type: str, recipe_text: str | None, error=ValueError) -> None:
    check_target(schema, model_type, error)
    if recipe_text:
        try:
            parse_recipe(recipe_text, schema)
        except RecipeError as problem:
            raise error(f"Recipe: {problem}")


def check_recipe_syntax(recipe_text: str, error=ValueError) -> None:
    """Before the schema is known only the recipe's shape can be checked."""
    try:
        recipe = json.loads(recipe_text)
    except json.JSONDecodeError as problem:
        raise error(f"Recipe: not valid JSON at line {problem.lineno} column {problem.colno}: {problem.msg}")
    if not isinstance(recipe, dict) or not isinstance(recipe.get("outputs"), list) or not recipe["outputs"]:
        raise error("Recipe: a JSON object with a non-empty outputs list is required")
    unknown = sorted(set(recipe) - {"groups", "assignments", "outputs"})
    if unknown:
        raise error(f"Recipe: unknown section {unknown[0]!r} (expected groups, assignments, outputs)")
