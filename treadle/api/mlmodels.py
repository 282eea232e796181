"""MLModel operations."""
from __future__ import annotations

from ..data.schema import parse_schema
from ..learning import MODEL_TYPES
from ..learning.compatibility import check_model_inputs, check_recipe_syntax
from ..protocol import errors
from ..protocol.errors import InvalidInputException
from ..store.entities import now
from .common import base_document, create_entity, render, require, require_input, require_live, with_log
from .location_checks import check_location
from .parameters import normalize_parameters
from .services import Call

KIND = "MLModel"
NO_ENDPOINT = {"EndpointStatus": "NONE", "PeakRequestsPerSecond": 0}


def create(call: Call, params: dict) -> dict:
    model_id = params["MLModelId"]
    existing = call.entities.get(call.account, KIND, model_id)
    if existing is not None:  # let create_entity decide between retry and mismatch
        return create_entity(call, KIND, model_id, params, {})
    datasource = require_input(call, "DataSource", params["TrainingDataSourceId"], "TrainingDataSourceId")
    if not datasource.document.get("ComputeStatistics"):
        raise errors.InvalidInputException(
            f"TrainingDataSourceId {datasource.entity_id} was created with ComputeStatistics=false; "
            "a training datasource needs statistics")
    if params.get("RecipeUri"):
        check_location("RecipeUri", params["RecipeUri"], call.services.settings.confinement, account=call.account)
    training_parameters = normalize_parameters(params.get("Parameters"))
    schema_text = datasource.document.get("_schema")
    if schema_text:  # known now (inline, or the datasource finished): check early
        check_model_inputs(parse_schema(schema_text), params["MLModelType"], params.get("Recipe"),
                           InvalidInputException)
    elif params.get("Recipe"):
        check_recipe_syntax(params["Recipe"], InvalidInputException)
    doc = base_document(call, KIND, model_id, params.get("MLModelName"))
    doc.update({
        "TrainingDataSourceId": datasource.entity_id,
        "EndpointInfo": dict(NO_ENDPOINT),
        "TrainingParameters": training_parameters,
        "Algorithm": "sgd",
        "MLModelType": params["MLModelType"],
    })
    location = datasource.document.get("DataLocationS3")
    if location:
        doc["InputDataLocationS3"] = location
    if params.get("Recipe"):
        doc["_recipe"] = params["Recipe"]
    if params.get("RecipeUri"):
        doc["_recipe_uri"] = params["RecipeUri"]
    return create_entity(call, KIND, model_id, params, doc,
                         inherit_tags_from=[("DataSource", datasource.entity_id)])


def _wire(entity, verbose: bool) -> dict:
    doc = dict(entity.document)
    if verbose:
        if doc.get("_recipe_used"):
            doc["Recipe"] = doc["_recipe_used"]
        elif doc.get("_recipe"):
            doc["Recipe"] = doc["_recipe"]
        if doc.get("_schema_used"):
            doc["Schema"] = doc["_schema_used"]
    return doc


def get(call: Call, params: dict) -> dict:
    entity = require(call, KIND, params["MLModelId"])
    entity.document = _wire(entity, params.get("Verbose", False))
    return with_log(call, KIND, entity, "GetMLModelOutput")


def describe_entry(call: Call, entity) -> dict:
    return render("MLModel", entity.document)


def update(call: Call, params: dict) -> dict:
    model_id = params["MLModelId"]
    with call.entities.engine.begin() as conn:
        entity = require_live(call, KIND, model_id, conn)
        change = {}
        if "MLModelName" in params:
            change["Name"] = params["MLModelName"]
        if "ScoreThreshold" in params:
            model_type = MODEL_TYPES[entity.document["MLModelType"]]
            if not model_type.has_threshold:
                having = " or ".join(name for name, kind in MODEL_TYPES.items() if kind.has_threshold)
                raise errors.InvalidInputException(f"ScoreThreshold applies only to {having} models; {model_id} "
                                                   f"is {model_type.name}")
            change["ScoreThreshold"] = float(params["ScoreThreshold"])
            change["ScoreThresholdLastUpdatedAt"] = now()
        if not change:
            raise errors.InvalidInputException("UpdateMLModel needs MLModelName or ScoreThreshold")
        call.entities.update(call.account, KIND, model_id, change, conn)
    call.services.model_changed(call.account, model_id)
    return {"MLModelId": model_id}


def delete(call: Call, params: dict) -> dict:
    model_id = params["MLModelId"]
    require(call, KIND, model_id)
    # Deleting a model deletes its endpoint (docs/behaviour.md, "Identifiers, idempotency and objects' life").
    call.entities.update(call.account, KIND, model_id,
                         {"Status": "DELETED", "EndpointInfo": dict(NO_ENDPOINT)})
    call.services.model_changed(call.account, model_id)
    return {"MLModelId": model_id}
