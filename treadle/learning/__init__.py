"""Recipes and features for Treadle's learners (pure library, no I/O).

Typical training-job use::

    recipe = parse_recipe(recipe_text or suggest_recipe(schema, stats), schema)
    fitter = FeaturePipeline(recipe).fitter()
    for chunk in reader: fitter.update(chunk)
    pipeline = fitter.finish()            # save pipeline.to_dict() with the model
    for chunk in reader: X = pipeline.transform(chunk)   # CsrBatch
"""
from .errors import RecipeError
from .features import CsrBatch, FeaturePipeline, FittedPipeline, PipelineFitter, PipelineOptions
from .recipe_parser import ParsedRecipe, parse_recipe
from .schema import RecipeSchema, as_recipe_schema
from .suggested import NumericSummary, SuggestionStats, mutual_information_by_level, suggest_recipe

__all__ = [
    "CsrBatch",
    "FeaturePipeline",
    "FittedPipeline",
    "NumericSummary",
    "ParsedRecipe",
    "PipelineFitter",
    "PipelineOptions",
    "RecipeError",
    "RecipeSchema",
    "SuggestionStats",
    "as_recipe_schema",
    "mutual_information_by_level",
    "parse_recipe",
    "suggest_recipe",
]
