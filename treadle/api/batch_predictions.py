"""BatchPrediction operations."""
from __future__ import annotations

from .common import base_document, create_entity, delete_entity, rename, render, require, require_input, with_log
from .context import Call
from .locations import check_location

KIND = "BatchPrediction"


def create(call: Call, params: dict) -> dict:
    prediction_id = params["BatchPredictionId"]
    if call.entities.get(call.account, KIND, prediction_id) is not None:
        return create_entity(call, KIND, prediction_id, params, {})
    check_location("OutputUri", params["OutputUri"], call.services.settings.allowed_local_paths, output=True)
    model = require_input(call, "MLModel", params["MLModelId"], "MLModelId")
    datasource = require_input(call, "DataSource", params["BatchPredictionDataSourceId"],
                               "BatchPredictionDataSourceId")
    doc = base_document(call, KIND, prediction_id, params.get("BatchPredictionName"))
    doc.update({"MLModelId": model.entity_id, "BatchPredictionDataSourceId": datasource.entity_id,
                "OutputUri": params["OutputUri"]})
    if datasource.document.get("DataLocationS3"):
        doc["InputDataLocationS3"] = datasource.document["DataLocationS3"]
    return create_entity(call, KIND, prediction_id, params, doc,
                         inherit_tags_from=[("DataSource", datasource.entity_id), ("MLModel", model.entity_id)])


def get(call: Call, params: dict) -> dict:
    return with_log(call, KIND, require(call, KIND, params["BatchPredictionId"]), "GetBatchPredictionOutput")


def describe_entry(call: Call, entity) -> dict:
    return render("BatchPrediction", entity.document)


def update(call: Call, params: dict) -> dict:
    return rename(call, KIND, params["BatchPredictionId"], params["BatchPredictionName"])


def delete(call: Call, params: dict) -> dict:
    return delete_entity(call, KIND, params["BatchPredictionId"])
