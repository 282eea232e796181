"""Each object's own page. Every page shows the object's part common to
all kinds (`_object.html`) and what is particular to its kind."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .app import Console
from .kinds import KINDS
from .sessions import Session


async def _common(console: Console, session: Session, kind_name: str, entity_id: str, verbose: bool = False):
    kind = KINDS[kind_name]
    params = {kind.id_member: entity_id}
    if verbose:
        params["Verbose"] = True
    found = await console.call(session, kind.get, params)
    tags = (await console.call(session, "DescribeTags", {"ResourceId": entity_id, "ResourceType": kind.name}))["Tags"]
    return kind, found, tags


async def datasource(console: Console, request: Request, session: Session, errors: dict | None = None,
                     status: int = 200) -> Response:
    kind, found, tags = await _common(console, session, "DataSource", request.path_params["entity_id"], True)
    return console.render(request, session, "datasource.html", status=status, title=found.get("Name") or
                          found["DataSourceId"], kind=kind, object=found, tags=tags, errors=errors or {})


async def model(console: Console, request: Request, session: Session, errors: dict | None = None,
                status: int = 200) -> Response:
    kind, found, tags = await _common(console, session, "MLModel", request.path_params["entity_id"], True)
    return console.render(request, session, "model.html", status=status, title=found.get("Name") or
                          found["MLModelId"], kind=kind, object=found, tags=tags, errors=errors or {})


async def evaluation(console: Console, request: Request, session: Session, errors: dict | None = None,
                     status: int = 200) -> Response:
    kind, found, tags = await _common(console, session, "Evaluation", request.path_params["entity_id"])
    return console.render(request, session, "evaluation.html", status=status, title=found.get("Name") or
                          found["EvaluationId"], kind=kind, object=found, tags=tags, errors=errors or {})


async def batch_prediction(console: Console, request: Request, session: Session, errors: dict | None = None,
                           status: int = 200) -> Response:
    kind, found, tags = await _common(console, session, "BatchPrediction", request.path_params["entity_id"])
    return console.render(request, session, "batch_prediction.html", status=status, title=found.get("Name") or
                          found["BatchPredictionId"], kind=kind, object=found, tags=tags, errors=errors or {})


PAGES = {"DataSource": datasource, "MLModel": model, "Evaluation": evaluation, "BatchPrediction": batch_prediction}
