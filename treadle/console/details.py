"""Each object's own page. Every page shows the object's part common to
all kinds (`_object.html`) and what is particular to its kind: the kind's
template, with what its `context` function adds (insights, the endpoint)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from . import batch_predictions, data_insights, evaluations, models
from .app import Console
from .kinds import KINDS
from .sessions import Session

# (console, session, the Get* answer) -> what the kind's template adds
Context = Callable[[Console, Session, dict], Awaitable[dict]]


async def _nothing(console: Console, session: Session, found: dict) -> dict:
    return {}


@dataclass
class ObjectPage:
    kind: str
    template: str
    verbose: bool = False  # Get* with Verbose=True (schema, recipe)
    context: Context = _nothing

    async def __call__(self, console: Console, request: Request, session: Session, errors: dict | None = None,
                       status: int = 200) -> Response:
        kind = KINDS[self.kind]
        entity_id = request.path_params["entity_id"]
        params = {kind.id_member: entity_id, **({"Verbose": True} if self.verbose else {})}
        found = await console.call(session, kind.get, params)
        tags = await console.call(session, "DescribeTags", {"ResourceId": entity_id, "ResourceType": kind.name})
        extra = await self.context(console, session, found)
        return console.render(request, session, self.template, status=status,
                              title=found.get("Name") or entity_id, kind=kind, object=found, tags=tags["Tags"],
                              errors=errors or {}, **extra)


PAGES = {
    "DataSource": ObjectPage("DataSource", "datasource.html", verbose=True, context=data_insights.context),
    "MLModel": ObjectPage("MLModel", "model.html", verbose=True, context=models.context),
    "Evaluation": ObjectPage("Evaluation", "evaluation.html", context=evaluations.context),
    "BatchPrediction": ObjectPage("BatchPrediction", "batch_prediction.html", context=batch_predictions.context),
}
