"""The MLModel job: resolve the recipe, fit the feature pipeline, featurize
into a disk cache, train the SGD learners pass by pass, prune to the size
cap and save the model artifact."""
from __future__ import annotations

import json
import zlib

import numpy as np
import pyarrow as pa

from ..data import cells, locations
from ..data.locations import LocationError
from ..data.mutual_info import TARGET_BINS
from ..data.records import RecordChunk, TooManyRejections
from ..data.schema import DataSchema, parse_schema
from ..learning import (FeaturePipeline, NumericSummary, RecipeError, SuggestionStats,
                        build_model, parse_recipe, suggest_recipe, training_log)
from ..learning.columns import ColumnMap
from ..learning.compatibility import check_target
from ..learning.sgd import MAX_CLASSES, SGDConfig, SGDTrainer
from ..store.models import save_model
from .context import DEFAULTS, JobContext, JobFailed
from .datasource import read_datasource
from .feature_cache import FeatureCache, RecordSpool, Rows
from .pipelining import ordered_map, prefetch


def datasource_statistics(ctx: JobContext, datasource) -> dict:
    key = datasource.document.get("_statistics")
    if not key:
        return {}
    return json.loads(ctx.artifacts.get(key))


def _suggestion_stats(statistics: dict, model_type: str, labels_hint: int) -> SuggestionStats:
    numeric = []
    for attribute in statistics.get("attributes", []):
        if attribute.get("type") != "NUMERIC":
            continue
        valid = int(attribute.get("count", 0)) - int(attribute.get("missing", 0)) - int(attribute.get("invalid", 0))
        distinct = int(attribute.get("distinct", valid) or valid)
        mi = {int(k): float(v) for k, v in (attribute.get("binned_mutual_information") or {}).items()}
        numeric.append(NumericSummary(attribute["name"], max(valid, 0), distinct, mi))
    # A NUMERIC target is binned into TARGET_BINS levels for mutual information.
    levels = {"BINARY": 2, "REGRESSION": TARGET_BINS}.get(model_type, max(labels_hint, 2))
    return SuggestionStats(levels, numeric)


def resolve_recipe(ctx: JobContext, schema: DataSchema, model_type: str, datasource) -> str:
    doc = ctx.document
    if doc.get("_recipe"):
        return doc["_recipe"]
    if doc.get("_recipe_uri"):
        try:
            return locations.read_text(doc["_recipe_uri"], ctx.settings.confinement)
        except LocationError as error:
            raise JobFailed(f"Cannot read RecipeUri: {error}")
    text = suggested_recipe(schema, model_type, datasource_statistics(ctx, datasource))
    ctx.log(f"no recipe given: using the suggested recipe {text}")
    return text


def suggested_recipe(schema: DataSchema, model_type: str, statistics: dict) -> str:
    """The recipe a model gets without one, from its training datasource's
    schema and statistics (docs/behaviour.md, "Recipes")."""
    target = statistics.get("target") or {}
    hint = len(target.get("distribution") or [])
    return suggest_recipe(schema, _suggestion_stats(statistics, model_type, hint))


class Labels:
    """Target values -> learner labels, per model type."""

    def __init__(self, model_type: str, schema: DataSchema):
        self.model_type = model_type
        self.target = schema.target
        self.target_type = schema.type_of(schema.target)
        self.classes: list[str] = []
        self._index: dict[str, int] = {}

    def _strings(self, chunk: RecordChunk) -> pa.Array:
        if self.target_type == "BINARY":  # "yes"/"true"/"1" all mean class "1"
            values = chunk.typed(self.target).values
            return pa.array(np.where(values > 0.5, "1", "0"))
        return cells.trim(chunk.column(self.target))

    def observe(self, chunk: RecordChunk) -> None:
        if self.model_type != "MULTICLASS":
            return
        for value in self._strings(chunk).unique().to_pylist():
            if value not in self._index:
                self._index[value] = len(self.classes)
                self.classes.append(value)
                if len(self.classes) > MAX_CLASSES:
                    raise JobFailed(f"The target {self.target} has more than {MAX_CLASSES} distinct values; "
                                    f"a MULTICLASS model supports at most {MAX_CLASSES} classes")

    def use_classes(self, classes: list[str]) -> None:
        """Number classes as a trained model did (evaluation, scoring)."""
        self.classes = list(classes)
        self._index = {c: i for i, c in enumerate(self.classes)}

    def class_numbers(self, chunk: RecordChunk) -> np.ndarray:
        """MULTICLASS targets as class numbers; -1 for a class the model never saw."""
        return np.fromiter((self._index.get(s, -1) for s in self._strings(chunk).to_pylist()), dtype=np.int64,
                           count=len(chunk))

    def finish(self) -> None:
        if self.model_type == "MULTICLASS":
            # Sorted, so the class order (and the batch output's columns) does
            # not depend on the order records happen to arrive in.
            self.classes.sort()
            self._index = {c: i for i, c in enumerate(self.classes)}
            if len(self.classes) < 2:
                raise JobFailed(f"The target {self.target} has fewer than two distinct values")

    def y(self, chunk: RecordChunk) -> np.ndarray:
        return self.from_raw(self.raw(chunk))

    def raw(self, chunk: RecordChunk) -> pa.Array:
        """What `from_raw` needs, known before the class numbers are."""
        if self.model_type == "MULTICLASS":
            return self._strings(chunk)
        return pa.array(chunk.typed(self.target).values.astype(np.float64))

    def from_raw(self, raw: pa.Array) -> np.ndarray:
        if self.model_type == "MULTICLASS":
            strings = raw.to_pylist()
            return np.fromiter((self._index[s] for s in strings), dtype=np.int64, count=len(strings))
        return raw.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


class TargetSummary:
    """The training target's weighted distribution: the baselines of the
    evaluation insights (mean for RMSE, majority class for macro F1)."""

    def __init__(self, model_type: str, classes: int):
        self.model_type = model_type
        self.weight = 0.0
        self.total = 0.0
        self.class_weights = np.zeros(classes)

    def update(self, y: np.ndarray, weight: np.ndarray) -> None:
        self.weight += float(weight.sum())
        if self.model_type == "MULTICLASS":
            self.class_weights += np.bincount(y, weight, minlength=len(self.class_weights))[:len(self.class_weights)]
        else:
            self.total += float(np.dot(y, weight))

    def to_dict(self) -> dict:
        out = {"weight": self.weight}
        if self.model_type == "MULTICLASS":
            out["class_weights"] = self.class_weights.tolist()
        else:
            out["mean"] = self.total / self.weight if self.weight else None
        return out


def row_weights(chunk: RecordChunk, schema: DataSchema) -> np.ndarray:
    if not schema.row_weight:
        return np.ones(len(chunk))
    column = chunk.typed(schema.row_weight)
    weights = np.where(column.missing | column.invalid, 1.0, column.values)
    # A negative weight has no meaning for a loss; it counts as zero.
    return np.clip(weights, 0.0, None)


def run(ctx: JobContext) -> dict:
    doc = ctx.document
    model_type = doc["MLModelType"]
    params = doc["TrainingParameters"]
    datasource = ctx.input("DataSource", doc["TrainingDataSourceId"])
    schema_text = datasource.document.get("_schema")
    if not schema_text:
        raise JobFailed(f"The training datasource {datasource.entity_id} has no schema")
    schema = parse_schema(schema_text)
    check_target(schema, model_type, JobFailed)
    recipe_text = resolve_recipe(ctx, schema, model_type, datasource)
    try:
        recipe = parse_recipe(recipe_text, schema)
    except RecipeError as error:
        raise JobFailed(f"Recipe: {error}")

    def reader():
        try:
            return read_datasource(ctx, datasource, require_target=True)
        except TooManyRejections as error:
            raise JobFailed(error.message)

    # Pass 0: fit the recipe's data-dependent state (bins, means) and labels.
    # The accepted records are spooled as they stream by, so the featurizing
    # pass reads them back from local disk instead of parsing and validating
    # the source a second time (that second read was a third of a training
    # job's time).
    schema, records = reader()
    labels = Labels(model_type, schema)
    fitter = FeaturePipeline(recipe).fitter()
    seed = zlib.crc32(doc["MLModelId"].encode())
    work = ctx.scratch("training-")
    cache = None
    try:
        spool = RecordSpool(work.name)
        for chunk in prefetch(records):  # parsing the next chunk overlaps fitting this one
            fitter.update(chunk.table)
            labels.observe(chunk)
            spool.add(chunk.table, labels.raw(chunk), row_weights(chunk, schema))
        spool.close()
        if records.accepted == 0:
            raise JobFailed(f"The training datasource {datasource.entity_id} has no records with a valid target")
        labels.finish()
        pipeline = fitter.finish()
        ctx.log(f"recipe fitted on {records.accepted} records ({records.rejections.count} rejected); "
                f"{pipeline.n_features} hashed feature columns")

        # Featurize once into a disk cache; every pass reads the cache.
        target = TargetSummary(model_type, max(len(labels.classes), 2))

        def featurize(spooled) -> Rows:
            table, raw, weight = spooled
            return Rows(pipeline.transform(table), labels.from_raw(raw), weight)

        cache = FeatureCache(records.accepted, shuffle=params["sgd.shuffleType"] == "auto", seed=seed,
                             directory=work.name)
        columns = ColumnMap(pipeline.n_features)
        for rows in ordered_map(featurize, spool.read(), workers=2):
            target.update(rows.y, rows.weight)
            cache.add(Rows(columns.translate(rows.batch), rows.y, rows.weight))
        spool.delete()
        cache.seal()
        ctx.log(f"featurized {cache.rows} records: {columns.size} of the hashed columns in use")
        config = SGDConfig(model_type, l1=float(params["sgd.l1RegularizationAmount"]),
                           l2=float(params["sgd.l2RegularizationAmount"]),
                           max_passes=int(params["sgd.maxPasses"]),
                           n_classes=max(len(labels.classes), 2))
        trainer = SGDTrainer(config, columns.n_columns)
        while True:
            for rows in cache.passes(columns.n_columns):
                trainer.partial_fit(rows.batch, rows.y, rows.weight)
            if not trainer.end_pass():
                break
        trained = columns.to_hashed(trainer.finish())
    finally:
        if cache is not None:
            cache.close()
        work.cleanup()
    max_size = int(params["sgd.maxMLModelSizeInBytes"])
    model, prune = build_model(trained, pipeline, labels=labels.classes or None, max_size_bytes=max_size,
                               summary={"training_datasource": datasource.entity_id, "records": cache.rows,
                                        "target": target.to_dict()})
    saved = save_model(ctx.artifacts, ctx.account, doc["MLModelId"], model)
    for line in training_log(config, trained, prune, max_size, invalid_records=records.rejections.count):
        ctx.log(line)
    fields = {
        **saved,
        "_recipe_used": recipe_text,
        "_schema_used": schema_text,
    }
    if model_type == "BINARY":
        fields[DEFAULTS] = {"ScoreThreshold": 0.5}  # Decision 9
    return fields
