"""The list of every object, and what can be done to any object: rename,
tag, delete."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..api.describe import FILTER_COLUMNS, page_of
from ..api.services import Call
from ..protocol import errors
from ..store.tables import entities
from .app import Console, FormError, form_of
from .kinds import KINDS, Kind, enum
from .sessions import Session

PAGE_SIZE = 50
SORTS = ("CreatedAt", "LastUpdatedAt", "Name", "Status")


def _listing_query(request: Request) -> dict:
    params = request.query_params
    query = {
        "type": params.get("type") if params.get("type") in KINDS else "",
        "status": params.get("status") if params.get("status") in enum("EntityStatus") else "",
        "name": params.get("name", "")[:1024],
        "sort": params.get("sort") if params.get("sort") in SORTS else "CreatedAt",
        "order": "asc" if params.get("order") == "asc" else "dsc",
    }
    return query


async def list_objects(console: Console, request: Request, session: Session) -> Response:
    """Datasources, models, evaluations and batch predictions in one list,
    with Describe's semantics: a name prefix, status and type filters,
    sorted by one variable, deleted objects only when asked for by status."""
    query = _listing_query(request)
    kinds = (query["type"],) if query["type"] else tuple(KINDS)
    where = []
    if query["status"]:
        where.append(entities.c.status == query["status"])
    if query["name"]:
        escaped = query["name"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(entities.c.name.like(escaped + "%", escape="\\"))
    call = Call(console.services, session.principal)
    try:
        rows, token = await _page(call, kinds, where, query, request.query_params.get("page"))
        problem = None
    except errors.InvalidInputException:
        rows, token, problem = [], None, "That page link has expired; showing the first page."
        rows, token = await _page(call, kinds, where, query, None)
    objects = [{"kind": KINDS[row.kind], "id": row.entity_id, "name": row.document.get("Name") or "",
                "status": row.status, "created": row.document.get("CreatedAt"),
                "updated": row.document.get("LastUpdatedAt"),
                "type": row.document.get("MLModelType", "")} for row in rows]
    return console.render(request, session, "objects.html", title="Objects", objects=objects, query=query,
                          next_page=token, later_page=bool(request.query_params.get("page")), problem=problem,
                          kinds=KINDS, statuses=enum("EntityStatus"), sorts=SORTS)


async def _page(call: Call, kinds, where, query: dict, token: str | None):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(
        lambda: page_of(call, kinds, FILTER_COLUMNS[query["sort"]], where, query, descending=query["order"] == "dsc",
                        limit=PAGE_SIZE, token=token, with_deleted=bool(query["status"])))


# -- any object ---------------------------------------------------------------

async def rename(console: Console, kind: Kind, request: Request, session: Session) -> Response:
    entity_id = request.path_params["entity_id"]
    name = form_of(request).get("name", "")
    try:
        await console.call(session, kind.update, {kind.id_member: entity_id, kind.name_member: name})
    except errors.InvalidInputException as error:
        raise FormError("name", error.message)
    return RedirectResponse(kind.url(entity_id) + "#manage", status_code=303)


async def add_tag(console: Console, kind: Kind, request: Request, session: Session) -> Response:
    entity_id = request.path_params["entity_id"]
    form = form_of(request)
    tag = {"Key": form.get("key", "")}
    if form.get("value"):
        tag["Value"] = form["value"]
    try:
        await console.call(session, "AddTags", {"ResourceId": entity_id, "ResourceType": kind.name, "Tags": [tag]})
    except (errors.InvalidInputException, errors.InvalidTagException, errors.TagLimitExceededException) as error:
        raise FormError("tag", error.message)
    return RedirectResponse(kind.url(entity_id) + "#tags", status_code=303)


async def remove_tag(console: Console, kind: Kind, request: Request, session: Session) -> Response:
    entity_id = request.path_params["entity_id"]
    key = form_of(request).get("key", "")
    await console.call(session, "DeleteTags", {"ResourceId": entity_id, "ResourceType": kind.name, "TagKeys": [key]})
    return RedirectResponse(kind.url(entity_id) + "#tags", status_code=303)


async def delete(console: Console, kind: Kind, request: Request, session: Session) -> Response:
    entity_id = request.path_params["entity_id"]
    if kind.name == "MLModel":
        model = await console.call(session, "GetMLModel", {"MLModelId": entity_id})
        if (model.get("EndpointInfo") or {}).get("EndpointStatus") in ("READY", "UPDATING"):
            # As Amazon ML's console did: the endpoint goes first, knowingly.
            raise FormError("delete", "This model has a real-time endpoint. Delete the endpoint first; "
                                      "then the model can be deleted.")
    await console.call(session, kind.delete, {kind.id_member: entity_id})
    return RedirectResponse(kind.url(entity_id), status_code=303)
