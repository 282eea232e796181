"""An entity's stored JSON result (a datasource's statistics, an
evaluation's insights), for the account that owns it, signed with SigV4
like the API."""
from __future__ import annotations


from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..protocol import errors, wire


def _response(status: int, payload: dict, request_id: str) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if status >= 400 and "__type" in payload:
        # The JavaScript SDK takes the error's name from this header before
        # the body (where it would otherwise find the numeric `code`).
        headers["x-amzn-ErrorType"] = payload["__type"]
    return Response(wire.encode(payload), status_code=status, media_type=wire.CONTENT_TYPE, headers=headers)


def _request_url(request: Request) -> str:
    host = request.headers.get("host", "")
    path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{request.url.scheme}://{host}{path}" + (f"?{query}" if query else "")


class StoredResult:
    """The result an entity of `kind` keeps under `field`, answered as
    {"<kind>Id": ..., "<What>": ...}."""

    def __init__(self, kind: str, field: str, what: str):
        self.kind = kind
        self.field = field
        self.what = what

    async def get(self, request: Request) -> Response:
        services, kind, what = request.app.state.services, self.kind, self.what
        request_id = wire.request_id()
        try:
            principal = request.app.state.authenticator.authenticate(request.method, _request_url(request),
                                                                     request.headers, b"")
        except errors.ServiceError as error:
            return _response(error.status, error.body(), request_id)
        entity_id = request.path_params["entity_id"]
        entity = services.entities.get(principal.account, kind, entity_id)
        if entity is None:
            return _response(404, errors.ResourceNotFoundException(
                f"No {kind} exists with ID {entity_id}").body(), request_id)
        key = entity.document.get(self.field)
        if not key:
            reason = f"its status is {entity.status}"
            if kind == "DataSource" and not entity.document.get("ComputeStatistics"):
                reason = "it was created with ComputeStatistics=false"
            return _response(404, errors.ResourceNotFoundException(
                f"{kind} {entity_id} has no {what}: {reason}").body(), request_id)
        data = await run_in_threadpool(services.artifacts.get, key)
        body = b'{"' + kind.encode() + b'Id":' + wire.encode(entity_id) + b',"' + what.title().encode() + b'":' + data + b"}"
        return Response(body, media_type="application/json")
