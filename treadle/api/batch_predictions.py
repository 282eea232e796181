"""BatchPrediction operations."""
from __future__ import annotations

from .common import create_from_model, delete_entity, rename, render, require, with_log
from .location_checks import check_location
from .services import Call

KIND = "BatchPrediction"


def create(call: Call, params: dict) -> dict:
    prediction_id = params["BatchPredictionId"]
    if call.entities.get(call.account, KIND, prediction_id) is None:
        check_location("OutputUri", params["OutputUri"], call.services.settings.confinement, output=True,
                       account=call.account)
    return create_from_model(call, KIND, prediction_id, params, params.get("BatchPredictionName"),
                             "BatchPredictionDataSourceId", {"OutputUri": params["OutputUri"]})


def get(call: Call, params: dict) -> dict:
    return with_log(call, KIND, require(call, KIND, params["BatchPredictionId"]), "GetBatchPredictionOutput")


def describe_entry(call: Call, entity) -> dict:
    return render("BatchPrediction", entity.document)


def update(call: Call, params: dict) -> dict:
    return rename(call, KIND, params["BatchPredictionId"], params["BatchPredictionName"])


def delete(call: Call, params: dict) -> dict:
    return delete_entity(call, KIND, params["BatchPredictionId"])
