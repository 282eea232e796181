"""The Evaluation job: score the evaluation datasource with the model and
compute the metric and the console's insights exactly."""
from __future__ import annotations

from ..data import locations
from ..data.rearrangement import parse_rearrangement
from ..data.records import TooManyRejections
from ..data.schema import parse_schema
from ..learning.model import DEFAULT_THRESHOLD
from ..learning.targets import row_weights
from .context import JobContext, JobFailed, json_bytes
from .batch_prediction import part_model
from .datasource import read_datasource
from .parts import (
    Part, PartRead, PartTask, log_parts, merge_reads, part_tasks, plan_parts, read_part, run_parts, stop_if_deleted)


def insights_key(account: str, evaluation_id: str) -> str:
    return f"insights/{account}/{evaluation_id}.json"


def _alerts(train_ds, eval_ds, train_stats: dict, eval_stats: dict, evaluated: int,
            rejected: int) -> list[dict]:
    """The five console alerts (docs/behaviour.md, "Evaluations"), each with whether it fired."""
    trained_on = train_ds.document.get("_records", 0)
    train_schema = parse_schema(train_ds.document["_schema"])
    eval_schema = parse_schema(eval_ds.document["_schema"])
    same_data = (train_ds.entity_id == eval_ds.entity_id or (
        train_ds.document.get("DataLocationS3") == eval_ds.document.get("DataLocationS3")
        and train_ds.document.get("DataRearrangement") == eval_ds.document.get("DataRearrangement")))
    return [
        {"name": "Evaluation of ML model is done on held-out data", "fired": bool(same_data),
         "detail": "The evaluation used the same records the model was trained on" if same_data else ""},
        {"name": "Sufficient data was used for the evaluation", "fired": evaluated < 0.1 * trained_on,
         "detail": f"{evaluated} evaluation records against {trained_on} training records"},
        {"name": "Schema matched", "fired": train_schema.attributes != eval_schema.attributes,
         "detail": "The evaluation datasource's attributes or types differ from the training datasource's"},
        {"name": "All records from evaluation files were used", "fired": rejected > 0,
         "detail": f"{rejected} evaluation records were rejected"},
        _distribution_alert(train_stats, eval_stats),
    ]


def _distribution(stats: dict) -> dict[str, float]:
    target = stats.get("target") or {}
    values = target.get("distribution") or target.get("top_values") or []
    counts = {str(v.get("value")): float(v.get("count", 0)) for v in values if isinstance(v, dict)}
    total = sum(counts.values())
    return {k: c / total for k, c in counts.items()} if total else {}


def _distribution_alert(train_stats: dict, eval_stats: dict) -> dict:
    # Total variation distance between the two target distributions; more
    # than 10 points apart suggests a split that was not random.
    a, b = _distribution(train_stats), _distribution(eval_stats)
    if not a or not b:
        return {"name": "Distribution of target variable", "fired": False,
                "detail": "target distributions are not available for both datasources"}
    distance = 0.5 * sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b))
    return {"name": "Distribution of target variable", "fired": distance > 0.1,
            "detail": f"total variation distance {distance:.3f} between training and evaluation targets"}


def run(ctx: JobContext) -> dict:
    doc = ctx.document
    model_entity = ctx.input("MLModel", doc["MLModelId"])
    eval_ds = ctx.input("DataSource", doc["EvaluationDataSourceId"])
    train_ds = ctx.input("DataSource", model_entity.document["TrainingDataSourceId"])
    model = ctx.model(model_entity)
    train_schema = parse_schema(model_entity.document["_schema_used"])
    eval_schema = parse_schema(eval_ds.document["_schema"])
    if eval_schema.target is None or eval_schema.target != train_schema.target:
        raise JobFailed(f"The evaluation datasource must contain the model's target {train_schema.target}")
    labels = model.type.targets(eval_schema, model.labels)
    threshold = float(model_entity.document.get("ScoreThreshold", DEFAULT_THRESHOLD))
    evaluation = model.type.evaluation(model, threshold, ctx.scratch_root)
    pipeline = model.fitted_pipeline
    files = locations.list_data_files(eval_ds.document["DataLocationS3"], ctx.settings.confinement)
    parts = plan_parts(files, ctx.settings.part_bytes) if ctx.parts is not None else []
    try:
        if len(parts) > 1:
            evaluated, rejected = _evaluate_in_parts(ctx, parts, eval_ds, model_entity, eval_schema, evaluation)
        else:
            _, records = read_datasource(ctx, eval_ds, require_target=True)
            for chunk in records:
                scores = model.score_batch(pipeline.transform(chunk.table))
                evaluation.update(scores, labels.y(chunk), row_weights(chunk, eval_schema))
            evaluated, rejected = records.accepted, records.rejections.count
    except TooManyRejections as error:
        evaluation.close()  # what it put on disk, if anything
        raise JobFailed(error.message)
    except BaseException:
        evaluation.close()
        raise
    if evaluated == 0:
        raise JobFailed(f"The evaluation datasource {eval_ds.entity_id} has no records with a valid target")
    value, details = evaluation.finish()
    insights: dict = {"model_type": model.type.name, "records": evaluated, "rejected": rejected,
                      **details, "metric": value}
    insights["alerts"] = _alerts(train_ds, eval_ds, ctx.statistics(train_ds), ctx.statistics(eval_ds), evaluated,
                                 rejected)
    ctx.artifacts.put(insights_key(ctx.account, doc["EvaluationId"]), json_bytes(insights))
    ctx.log(f"evaluated {evaluated} records ({rejected} rejected); metric {value}")
    return {"PerformanceMetrics": model.type.performance_metrics(value),
            "_insights": insights_key(ctx.account, doc["EvaluationId"])}


# -- on a cluster: scored in parts (docs/behaviour.md, "Cluster mode") -----------------------

def score_part(settings, task: PartTask) -> PartRead:
    """One part's scores, labels and weights, chunk by chunk: the job adds
    them to its one metric accumulator in part order, so the metrics are
    those of one read (BinaryAUC and the confusion counts exactly; see
    docs/behaviour.md, "Cluster mode", for RMSE's sums)."""
    model = part_model(settings, task.extra["model"])
    labels = model.type.targets(task.schema, model.labels)
    pipeline = model.fitted_pipeline
    batches = []

    def on_chunk(chunk) -> None:
        batches.append((model.score_batch(pipeline.transform(chunk.table)), labels.y(chunk),
                        row_weights(chunk, task.schema)))

    read = read_part(settings, task, on_chunk)
    read.payload = batches
    return read


def _evaluate_in_parts(ctx: JobContext, parts: list[Part], eval_ds, model_entity, schema, evaluation) -> tuple[int, int]:
    split = parse_rearrangement(eval_ds.document.get("DataRearrangement"))
    tasks = part_tasks(ctx, parts, schema, split, require_target=True, model=model_entity)
    ctx.log(f"scoring in {len(parts)} parts on the Dask cluster")
    reads = []
    for read in run_parts(ctx, parts, score_part, tasks):
        for batch in read.payload:
            evaluation.update(*batch)
        read.payload = None
        reads.append(read)
    log_parts(ctx, parts, reads)
    merged = merge_reads(parts, reads)
    stop_if_deleted(ctx)
    return merged.accepted, merged.rejected
