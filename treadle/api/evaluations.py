"""Evaluation operations."""
from __future__ import annotations

from .common import base_document, create_entity, delete_entity, rename, render, require, require_input, with_log
from .context import Call

KIND = "Evaluation"


def create(call: Call, params: dict) -> dict:
    evaluation_id = params["EvaluationId"]
    if call.entities.get(call.account, KIND, evaluation_id) is not None:
        return create_entity(call, KIND, evaluation_id, params, {})
    model = require_input(call, "MLModel", params["MLModelId"], "MLModelId")
    datasource = require_input(call, "DataSource", params["EvaluationDataSourceId"], "EvaluationDataSourceId")
    doc = base_document(call, KIND, evaluation_id, params.get("EvaluationName"))
    doc.update({"MLModelId": model.entity_id, "EvaluationDataSourceId": datasource.entity_id})
    if datasource.document.get("DataLocationS3"):
        doc["InputDataLocationS3"] = datasource.document["DataLocationS3"]
    return create_entity(call, KIND, evaluation_id, params, doc,
                         inherit_tags_from=[("DataSource", datasource.entity_id), ("MLModel", model.entity_id)])


def get(call: Call, params: dict) -> dict:
    return with_log(call, KIND, require(call, KIND, params["EvaluationId"]), "GetEvaluationOutput")


def describe_entry(call: Call, entity) -> dict:
    return render("Evaluation", entity.document)


def update(call: Call, params: dict) -> dict:
    return rename(call, KIND, params["EvaluationId"], params["EvaluationName"])


def delete(call: Call, params: dict) -> dict:
    return delete_entity(call, KIND, params["EvaluationId"])
