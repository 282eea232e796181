"""An object's log, behind the signed link that expires after an hour which
Get* returns as LogUri (docs/behaviour.md, "Jobs")."""
from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ..store.job_logs import log_key


async def log(request: Request) -> Response:
    services = request.app.state.services
    account = request.path_params["account"]
    kind = request.path_params["kind"]
    entity_id = request.path_params["entity_id"]
    expires = request.query_params.get("Expires", "")
    signature = request.query_params.get("Signature", "")
    if not expires.isdigit() or not services.master_key.verify(f"{request.url.path}\n{expires}", signature):
        return PlainTextResponse("Invalid log link signature\n", status_code=403)
    if int(expires) < time.time():
        return PlainTextResponse("This log link has expired; call Get* again for a fresh LogUri\n", status_code=403)
    try:
        text = await run_in_threadpool(services.artifacts.get, log_key(account, kind, entity_id))
    except (FileNotFoundError, ValueError):
        return PlainTextResponse("No log has been written for this object yet\n", status_code=404)
    return Response(text, media_type="text/plain; charset=utf-8")
