"""Evaluation operations."""
from __future__ import annotations

from .common import create_from_model, delete_entity, rename, render, require, with_log
from .services import Call

KIND = "Evaluation"


def create(call: Call, params: dict) -> dict:
    return create_from_model(call, KIND, params["EvaluationId"], params, params.get("EvaluationName"),
                             "EvaluationDataSourceId")


def get(call: Call, params: dict) -> dict:
    return with_log(call, KIND, require(call, KIND, params["EvaluationId"]), "GetEvaluationOutput")


def describe_entry(call: Call, entity) -> dict:
    return render("Evaluation", entity.document)


def update(call: Call, params: dict) -> dict:
    return rename(call, KIND, params["EvaluationId"], params["EvaluationName"])


def delete(call: Call, params: dict) -> dict:
    return delete_entity(call, KIND, params["EvaluationId"])
