"""Checks that a model type, a recipe and a datasource schema fit together,
shared by CreateMLModel (as InvalidInputException) and the training job (as
a FAILED model)."""
from __future__ import annotations

import json

from ..data.schema import DataSchema
from .errors import RecipeError
from .model_types import MODEL_TYPES
from .recipe_parser import parse_recipe


def check_model_inputs(schema: DataSchema, model_type: str, recipe_text: str | None, error=ValueError) -> None:
    MODEL_TYPES[model_type].check_target(schema, error)
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
