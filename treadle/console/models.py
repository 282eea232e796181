"""An ML model's page: its training, its evaluations, its real-time
endpoint and a form to try a real-time prediction; and the routes of the
model pages and of creating a model."""
from __future__ import annotations

import csv
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..data.schema import DataSchema, SchemaError, parse_schema
from ..protocol import errors, wire
from . import model_new
from .app import Console, FormError, form_of
from .kinds import Kind
from .sessions import Session

LIVE_ENDPOINT = ("READY", "UPDATING")


def _pretty(text: str | None) -> str | None:
    """JSON as people read it; text that is not JSON as it is."""
    if not text:
        return text
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _inputs(schema: DataSchema) -> list[tuple[str, str]]:
    """The attributes a prediction takes: not the target, the row id, the
    row weight or an excluded attribute."""
    left_out = {schema.target, schema.row_id, schema.row_weight, *schema.excluded}
    return [(name, kind) for name, kind in schema.attributes if name not in left_out]


async def context(console: Console, session: Session, found: dict) -> dict:
    model_id = found["MLModelId"]
    evaluations = await console.call(session, "DescribeEvaluations", {
        "FilterVariable": "MLModelId", "EQ": model_id, "SortOrder": "dsc", "Limit": 100})
    endpoint = found.get("EndpointInfo") or {"EndpointStatus": "NONE"}
    schema = None
    if found.get("Schema"):
        try:
            schema = parse_schema(found["Schema"])
        except SchemaError:
            schema = None
    url = f"/console/models/{model_id}"
    return {
        "evaluations": evaluations["Results"],
        "endpoint": endpoint,
        "recipe": _pretty(found.get("Recipe")),
        "schema_text": _pretty(found.get("Schema")),
        "inputs": _inputs(schema) if schema else [],
        "columns": list(schema.names) if schema else [],
        "can_predict": found["Status"] == "COMPLETED" and endpoint["EndpointStatus"] == "READY" and schema,
        "parameters": sorted((found.get("TrainingParameters") or {}).items()),
        # Deleting is refused while an endpoint is up: offer to delete it first.
        "delete_first": {"action": f"{url}/endpoint/delete", "label": "Delete the endpoint"}
        if endpoint["EndpointStatus"] in LIVE_ENDPOINT else None,
    }


# -- the endpoint ----------------------------------------------------------------
async def create_endpoint(console: Console, kind: Kind, request: Request, session: Session) -> Response:
    model_id = request.path_params["entity_id"]
    try:
        await console.call(session, "CreateRealtimeEndpoint", {"MLModelId": model_id})
    except errors.InvalidInputException as error:
        raise FormError("endpoint", error.message)
    return RedirectResponse(kind.url(model_id) + "#endpoint", status_code=303)


async def delete_endpoint(console: Console, kind: Kind, request: Request, session: Session) -> Response:
    model_id = request.path_params["entity_id"]
    await console.call(session, "DeleteRealtimeEndpoint", {"MLModelId": model_id})
    return RedirectResponse(kind.url(model_id) + "#endpoint", status_code=303)


# -- trying a prediction -----------------------------------------------------------
def record_from(given: dict, schema: DataSchema) -> dict[str, str]:
    """Predict's Record: the form's fields, or a CSV row in the schema's
    column order; a value left empty is a missing value, so it is not sent."""
    row = given.get("csv_row", "").strip("\r\n")
    if row.strip():
        values = next(csv.reader([row]), [])
        if len(values) != len(schema.attributes):
            raise ValueError(f"The row has {len(values)} values; the schema has {len(schema.attributes)} "
                             f"columns: {', '.join(schema.names)}")
        by_name = dict(zip(schema.names, values))
    else:
        by_name = {name: given.get(f"record.{name}", "") for name, _ in schema.attributes}
    return {name: by_name[name] for name, _ in _inputs(schema) if by_name.get(name, "") != ""}


async def predict(console: Console, request: Request, session: Session) -> Response:
    """Predict through the model's endpoint, answered as JSON for the page
    to show (the answer as the API returned it, and the record sent)."""
    model_id = request.path_params["entity_id"]
    model = await console.call(session, "GetMLModel", {"MLModelId": model_id, "Verbose": True})
    if not model.get("Schema"):
        return JSONResponse({"error": "This model has not finished training"}, status_code=409)
    try:
        record = record_from(form_of(request), parse_schema(model["Schema"]))
    except ValueError as problem:
        return JSONResponse({"error": str(problem), "field": "csv_row"}, status_code=400)
    endpoint = (model.get("EndpointInfo") or {}).get("EndpointUrl") or console.settings.effective_public_url
    try:
        answer = await console.call(session, "Predict", {"MLModelId": model_id, "Record": record,
                                                         "PredictEndpoint": endpoint})
    except errors.ServiceError as error:
        return JSONResponse({"error": error.message, "type": error.code}, status_code=error.status)
    return Response(wire.encode({"Record": record, "Answer": answer}), media_type="application/json")


def routes(signed_in, object_action) -> list[Route]:
    """`signed_in` wraps a handler in the session and CSRF checks;
    `object_action` runs an action of an object page, showing a FormError
    on that page."""
    return [
        Route("/new/model", signed_in(model_new.form), methods=["GET"]),
        Route("/new/model", signed_in(model_new.create), methods=["POST"]),
        Route("/new/model/suggestion", signed_in(model_new.suggestion, json_api=True), methods=["GET"]),
        Route("/new/model/recipe-check", signed_in(model_new.check_recipe, json_api=True), methods=["POST"]),
        Route("/models/{entity_id}/endpoint", signed_in(object_action("models", create_endpoint)),
              methods=["POST"]),
        Route("/models/{entity_id}/endpoint/delete", signed_in(object_action("models", delete_endpoint)),
              methods=["POST"]),
        Route("/models/{entity_id}/predict", signed_in(predict, json_api=True), methods=["POST"]),
    ]
