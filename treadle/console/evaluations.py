"""An evaluation's page: the five alerts and, per model type, the figures
Amazon ML's console showed; a BINARY evaluation's cut-off can be saved as
its model's ScoreThreshold."""
from __future__ import annotations

import logging
import math

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..learning.model_types import MODEL_TYPES
from ..protocol import errors
from . import evaluation_insights
from .app import Console, FormError, form_of
from .kinds import Kind
from .sessions import Session

log = logging.getLogger("treadle.console")


async def context(console: Console, session: Session, found: dict) -> dict:
    model = await console.call(session, "GetMLModel", {"MLModelId": found["MLModelId"]})
    shown = {"model": model, "view": None, "view_problem": None}
    if found["Status"] != "COMPLETED":
        return shown
    entity = await run_in_threadpool(console.services.entities.get, session.account, "Evaluation",
                                     found["EvaluationId"])
    key = entity.document.get("_insights") if entity else None
    if not key:
        shown["view_problem"] = "This evaluation has no insights stored."
        return shown
    try:
        shown["view"] = await run_in_threadpool(evaluation_insights.view, console.services.artifacts, key)
    except (OSError, ValueError, KeyError):
        # Where the store keeps them is the server's business, not the page's.
        log.exception("cannot read the insights of evaluation %s", found["EvaluationId"])
        shown["view_problem"] = "This evaluation's insights cannot be read."
        return shown
    if MODEL_TYPES[shown["view"]["model_type"]].has_threshold:
        threshold = float(model.get("ScoreThreshold", 0.5))
        shown["threshold"] = threshold
        shown["at_threshold"] = evaluation_insights.counts_at(shown["view"]["table"], threshold)
    return shown


async def save_threshold(console: Console, kind: Kind, request: Request, session: Session) -> Response:
    """The cut-off chosen on the page becomes the model's ScoreThreshold."""
    evaluation_id = request.path_params["entity_id"]
    evaluation = await console.call(session, "GetEvaluation", {"EvaluationId": evaluation_id})
    text = form_of(request).get("threshold", "")
    try:
        threshold = float(text)
    except ValueError:
        raise FormError("threshold", f"The cut-off must be a number from 0 to 1, not {text!r}")
    if not math.isfinite(threshold) or not 0 <= threshold <= 1:
        raise FormError("threshold", f"The cut-off must be a number from 0 to 1, not {text!r}")
    try:
        await console.call(session, "UpdateMLModel", {"MLModelId": evaluation["MLModelId"],
                                                      "ScoreThreshold": threshold})
    except errors.InvalidInputException as error:
        raise FormError("threshold", error.message)
    return RedirectResponse(kind.url(evaluation_id) + "?saved=1#threshold", status_code=303)


def routes(signed_in, object_action) -> list[Route]:
    return [Route("/evaluations/{entity_id}/threshold", signed_in(object_action("evaluations", save_threshold)),
                  methods=["POST"])]
