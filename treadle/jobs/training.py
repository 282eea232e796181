"""The MLModel job: resolve the recipe, fit the feature pipeline, featurize
into a disk cache, train the SGD learners pass by pass, prune to the size
cap and save the model artifact."""
from __future__ import annotations

import dataclasses
import zlib

from ..data import locations
from ..data.locations import LocationError
from ..data.rearrangement import parse_rearrangement
from ..data.schema import DataSchema, parse_schema
from ..learning import MODEL_TYPES, FeaturePipeline, ModelType, RecipeError, build_model, parse_recipe, training_log
from ..learning.columns import ColumnMap
from ..learning.model import DEFAULT_THRESHOLD
from ..learning.sgd import SGDConfig, SGDTrainer
from ..learning.suggested import suggested_recipe
from ..learning.targets import TargetError
from ..store.models import save_model
from .context import DEFAULTS, JobContext, JobFailed
from .datasource import read_datasource
from .feature_cache import FeatureCache, RecordFit, RecordSpool, featurize_spool
from .parts import part_tasks, plan_parts, stop_if_deleted
from .pipelining import prefetch
from .training_shards import deal, train_on_shards


def resolve_recipe(ctx: JobContext, schema: DataSchema, model_type: ModelType, datasource) -> str:
    doc = ctx.document
    if doc.get("_recipe"):
        return doc["_recipe"]
    if doc.get("_recipe_uri"):
        try:
            return locations.read_text(doc["_recipe_uri"], ctx.settings.confinement)
        except LocationError as error:
            raise JobFailed(f"Cannot read RecipeUri: {error}")
    text = suggested_recipe(schema, model_type, ctx.statistics(datasource))
    ctx.log(f"no recipe given: using the suggested recipe {text}")
    return text


def run(ctx: JobContext) -> dict:
    doc = ctx.document
    model_type = MODEL_TYPES[doc["MLModelType"]]
    params = doc["TrainingParameters"]
    datasource = ctx.input("DataSource", doc["TrainingDataSourceId"])
    schema_text = datasource.document.get("_schema")
    if not schema_text:
        raise JobFailed(f"The training datasource {datasource.entity_id} has no schema")
    schema = parse_schema(schema_text)
    model_type.check_target(schema, JobFailed)
    recipe_text = resolve_recipe(ctx, schema, model_type, datasource)
    try:
        recipe = parse_recipe(recipe_text, schema)
    except RecipeError as error:
        raise JobFailed(f"Recipe: {error}")

    def reader():
        # More than 10,000 rejected records raise TooManyRejections as the
        # records are read, which fails the job with its message (worker.py).
        return read_datasource(ctx, datasource, require_target=True)

    config = SGDConfig(model_type.name, l1=float(params["sgd.l1RegularizationAmount"]),
                       l2=float(params["sgd.l2RegularizationAmount"]), max_passes=int(params["sgd.maxPasses"]))
    shuffle = params["sgd.shuffleType"] == "auto"
    seed = zlib.crc32(doc["MLModelId"].encode())
    shards = _shard_plan(ctx, datasource, schema)
    try:
        if shards is not None:
            slots, runs = shards
            with ctx.parts.client() as client:
                result = train_on_shards(ctx, client, slots, runs, FeaturePipeline(recipe), model_type, config,
                                         shuffle, seed)
            trained, pipeline, labels = result.trained, result.pipeline, result.labels
            trained_on, rejected = result.records, result.rejected
        else:
            trained, pipeline, labels, trained_on, rejected = _fit_and_train_here(
                ctx, reader, datasource, recipe, model_type, config, shuffle, seed)
    except TargetError as error:
        raise JobFailed(str(error)) from None
    max_size = int(params["sgd.maxMLModelSizeInBytes"])
    model, prune = build_model(trained, pipeline, labels=labels.classes or None, max_size_bytes=max_size,
                               summary={"training_datasource": datasource.entity_id, "records": trained_on,
                                        "target": labels.summary()})
    saved = save_model(ctx.artifacts, ctx.account, doc["MLModelId"], model)
    for line in training_log(config, trained, prune, max_size, invalid_records=rejected):
        ctx.log(line)
    fields = {
        **saved,
        "_recipe_used": recipe_text,
        "_schema_used": schema_text,
    }
    if model_type.has_threshold:
        # Until the user sets one (docs/behaviour.md, "Training").
        fields[DEFAULTS] = {"ScoreThreshold": DEFAULT_THRESHOLD}
    return fields


def _fit_and_train_here(ctx: JobContext, reader, datasource, recipe, model_type, config: SGDConfig, shuffle: bool,
                        seed: int):
    """Fit the recipe and the labels in one read, spooling the accepted
    records so that the featurizing pass reads them back from local disk
    instead of parsing and validating the source a second time (that second
    read was a third of a training job's time); then train in this process."""
    schema, records = reader()
    work = ctx.scratch("training-")
    try:
        fit = RecordFit(FeaturePipeline(recipe), model_type.targets(schema), schema, work.name)
        for chunk in prefetch(records):  # parsing the next chunk overlaps fitting this one
            fit.add(chunk)
        fit.close()
        if records.accepted == 0:
            raise JobFailed(f"The training datasource {datasource.entity_id} has no records with a valid target")
        labels = fit.labels
        labels.finish()
        pipeline = fit.fitter.finish()
        ctx.log(f"recipe fitted on {records.accepted} records ({records.rejections.count} rejected); "
                f"{pipeline.n_features} hashed feature columns")
        config = dataclasses.replace(config, n_classes=max(len(labels.classes), 2))
        trained, trained_on = _train_here(ctx, fit.spool, pipeline, labels, config, shuffle, seed, records.accepted,
                                          work.name)
    finally:
        work.cleanup()
    return trained, pipeline, labels, trained_on, records.rejections.count


def _train_here(ctx: JobContext, spool: RecordSpool, pipeline, labels, config: SGDConfig, shuffle: bool, seed: int,
                accepted: int, work: str):
    """Featurize the spooled records once into a disk cache and train pass
    after pass over it, in this process."""
    cache = FeatureCache(accepted, shuffle=shuffle, seed=seed, directory=work)
    try:
        columns = ColumnMap(pipeline.n_features)
        featurize_spool(spool, pipeline, labels, columns, cache)
        ctx.log(f"featurized {cache.rows} records: {columns.size} of the hashed columns in use")
        trainer = SGDTrainer(config, columns.n_columns)
        while True:
            for rows in cache.passes(columns.n_columns):
                trainer.partial_fit(rows.batch, rows.y, rows.weight)
            if not trainer.end_pass():
                break
            if ctx.cancelled():
                stop_if_deleted(ctx)
        return columns.to_hashed(trainer.finish()), cache.rows
    finally:
        cache.close()


def _shard_plan(ctx: JobContext, datasource, schema: DataSchema):
    """On a cluster of more than one worker thread: the worker threads and
    the runs of parts their shards read; else None (one process trains)."""
    if ctx.parts is None:
        return None
    slots = ctx.parts.slots()
    if len(slots) < 2:
        return None
    files = locations.list_data_files(datasource.document["DataLocationS3"], ctx.settings.confinement)
    total = sum(f.size for f in files)
    # At least a part per shard, so that every worker gets a share.
    parts = plan_parts(files, min(ctx.settings.part_bytes, max(1, -(-total // len(slots)))))
    runs = deal(parts, len(slots))
    if len(runs) < 2:
        return None
    split = parse_rearrangement(datasource.document.get("DataRearrangement"))
    tasks = part_tasks(ctx, parts, schema, split, require_target=True)
    return slots, [[tasks[part.index] for part in run] for run in runs]
