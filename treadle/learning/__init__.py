"""Recipes and features for Treadle's learners (a library: no stores or network; only
``metrics.BinaryScores`` writes temporary files, past its memory cap).

Typical training-job use::

    recipe = parse_recipe(recipe_text or suggest_recipe(schema, stats), schema)
    fitter = FeaturePipeline(recipe).fitter()
    for chunk in reader: fitter.update(chunk)
    pipeline = fitter.finish()            # save pipeline.to_dict() with the model
    for chunk in reader: X = pipeline.transform(chunk)   # CsrBatch

Training, evaluation and prediction: see ``sgd``, ``model``, ``metrics``; what
differs between BINARY, MULTICLASS and REGRESSION models is in ``model_types``.
"""
from .errors import RecipeError
from .features import CsrBatch, FeaturePipeline, FittedPipeline, PipelineFitter, PipelineOptions
from .recipe_parser import ParsedRecipe, parse_recipe
from .metrics import BinaryScores, ConfusionMatrix, RegressionErrors, baseline_macro_f1, threshold_metrics
from .model_types import MODEL_TYPES, ModelType
from .model import MLModelArtifact, Prediction, build_model
from .numfmt import format_prediction, java_double, prediction_strings
from .sgd import SGDConfig, SGDTrainer, TrainedLinear
from .training_log import training_log
from .suggested import NumericSummary, SuggestionStats, suggest_recipe

__all__ = [
    "BinaryScores",
    "ConfusionMatrix",
    "MLModelArtifact",
    "MODEL_TYPES",
    "ModelType",
    "Prediction",
    "RegressionErrors",
    "SGDConfig",
    "SGDTrainer",
    "TrainedLinear",
    "baseline_macro_f1",
    "build_model",
    "format_prediction",
    "java_double",
    "prediction_strings",
    "threshold_metrics",
    "training_log",
    "CsrBatch",
    "FeaturePipeline",
    "FittedPipeline",
    "NumericSummary",
    "ParsedRecipe",
    "PipelineFitter",
    "PipelineOptions",
    "RecipeError",
    "SuggestionStats",
    "parse_recipe",
    "suggest_recipe",
]
