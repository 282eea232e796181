"""The Evaluation job: score the evaluation datasource with the model and
compute the metric and the console's insights exactly."""
from __future__ import annotations


import numpy as np

from ..data.records import TooManyRejections
from ..data.schema import parse_schema
from ..learning.metrics import (BASELINE_AUC, BinaryScores, ConfusionMatrix, RegressionErrors, baseline_macro_f1,
                        performance_metrics)
from .context import JobContext, JobFailed, json_bytes
from .datasource import read_datasource
from .training import Labels, datasource_statistics, row_weights

INSIGHT_POINTS = 1000  # ROC points and threshold table kept for the console


def insights_key(account: str, evaluation_id: str) -> str:
    return f"insights/{account}/{evaluation_id}.json"


def _alerts(model_entity, train_ds, eval_ds, train_stats: dict, eval_stats: dict, evaluated: int,
            rejected: int) -> list[dict]:
    """The five console alerts (spec section 5), each with whether it fired."""
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
    model_type = model.model_type
    train_schema = parse_schema(model_entity.document["_schema_used"])
    eval_schema = parse_schema(eval_ds.document["_schema"])
    if eval_schema.target is None or eval_schema.target != train_schema.target:
        raise JobFailed(f"The evaluation datasource must contain the model's target {train_schema.target}")
    labels = Labels(model_type, eval_schema)
    if model_type == "MULTICLASS":
        labels.use_classes(model.labels)
    threshold = float(model_entity.document.get("ScoreThreshold", 0.5))
    binary, confusion = BinaryScores(spill_dir=ctx.scratch_root), None
    train_stats = datasource_statistics(ctx, train_ds)
    target_summary = model.summary.get("target", {})
    regression = RegressionErrors(target_summary.get("mean")) if model_type == "REGRESSION" else None
    if model_type == "MULTICLASS":
        confusion = ConfusionMatrix(len(model.labels), model.labels)
    pipeline = model.fitted_pipeline
    try:
        _, records = read_datasource(ctx, eval_ds, require_target=True)
        unknown = 0
        for chunk in records:
            weights = row_weights(chunk, eval_schema)
            csr = pipeline.transform(chunk.table)
            scores = model.score_batch(csr)
            if model_type == "BINARY":
                binary.update(scores, chunk.typed(eval_schema.target).values, weights)
            elif model_type == "REGRESSION":
                regression.update(chunk.typed(eval_schema.target).values, scores, weights)
            else:
                truth = labels.class_numbers(chunk)
                known = truth >= 0
                unknown += int((~known).sum())
                confusion.update(truth[known], np.argmax(scores[known], axis=1), weights[known])
    except TooManyRejections as error:
        binary.close()  # the scores it put on disk, if any
        raise JobFailed(error.message)
    except BaseException:
        binary.close()
        raise
    evaluated = records.accepted
    if evaluated == 0:
        raise JobFailed(f"The evaluation datasource {eval_ds.entity_id} has no records with a valid target")
    insights: dict = {"model_type": model_type, "records": evaluated, "rejected": records.rejections.count}
    if model_type == "BINARY":
        value = binary.auc()
        insights.update(binary=binary.coarsen(INSIGHT_POINTS).to_dict(), histograms=binary.histograms(50),
                        baseline=BASELINE_AUC, threshold=threshold)
        roc = binary.coarsen(INSIGHT_POINTS).roc()
        binary.close()  # coarsen already removed any files: only its 1,000 points are left
        insights["roc"] = {"fpr": roc[0].tolist(), "tpr": roc[1].tolist(), "thresholds": roc[2].tolist()}
    elif model_type == "REGRESSION":
        value = regression.rmse()
        insights.update(baseline=regression.baseline_rmse(), residual_histogram=regression.residual_histogram())
    else:
        value = confusion.macro_f1()
        counts = target_summary.get("class_weights") or [0]
        majority = int(np.argmax(counts))
        insights.update(confusion=confusion.to_dict(), top=confusion.top(10),
                        per_class={k: np.asarray(v).tolist() for k, v in confusion.per_class().items()},
                        baseline=baseline_macro_f1(confusion, majority), unknown_labels=unknown)
    insights["metric"] = value
    insights["alerts"] = _alerts(model_entity, train_ds, eval_ds, train_stats, datasource_statistics(ctx, eval_ds), evaluated,
                                 records.rejections.count)
    ctx.artifacts.put(insights_key(ctx.account, doc["EvaluationId"]), json_bytes(insights))
    ctx.log(f"evaluated {evaluated} records ({records.rejections.count} rejected); metric {value}")
    return {"PerformanceMetrics": performance_metrics(model_type, value),
            "_insights": insights_key(ctx.account, doc["EvaluationId"])}


