"""CSV files uploaded from the browser, for people with no S3.

The browser sends the file as the raw request body (no multipart), and it
is streamed to disk in the account's folder under the upload directory
(--upload-dir), under a random name the server chooses. The name begins
with a dot, which keeps it out of every folder listing: a datasource can
read an upload only by its exact URI, which only the account that uploaded
it is shown. A file larger than --max-upload-bytes is refused, by its
Content-Length before anything is read or else when the stream passes the
limit, and nothing of it is kept.
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ..config import Settings
from ..data import locations
from .app import Console
from .sessions import Session

NAME = re.compile(r"\.upload-[A-Za-z0-9_-]{22}\.csv")
WRITE_BYTES = 1 << 20


def folder_of(settings: Settings, account: str) -> Path | None:
    root = settings.effective_upload_dir
    return None if root is None else root / account


def owns(settings: Settings, account: str, uri: str) -> bool:
    """Whether `uri` names an upload of this account."""
    folder = folder_of(settings, account)
    if folder is None or not uri.startswith("file://"):
        return False
    try:
        path = locations.local_path(uri, settings.confinement)
    except locations.LocationError:
        return False
    return path.parent == folder and NAME.fullmatch(path.name) is not None and path.is_file()


def _refuse(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def too_large(limit: int) -> str:
    return f"The file is larger than this server accepts ({limit:,} bytes at most)"


async def receive(console: Console, request: Request, session: Session) -> Response:
    settings = console.settings
    folder = folder_of(settings, session.account)
    if folder is None:
        return _refuse(403, "Uploads are off on this server (it allows no local paths)")
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return _refuse(413, too_large(limit))
    await run_in_threadpool(folder.mkdir, parents=True, exist_ok=True)
    name = f".upload-{secrets.token_urlsafe(16)}.csv"
    partial, final = folder / (name + ".part"), folder / name
    kept = False
    handle = await run_in_threadpool(open, partial, "xb")
    try:
        size, pending = 0, bytearray()
        async for piece in request.stream():
            size += len(piece)
            if size > limit:
                return _refuse(413, too_large(limit))
            pending += piece
            if len(pending) >= WRITE_BYTES:
                await run_in_threadpool(handle.write, bytes(pending))
                pending.clear()
        await run_in_threadpool(handle.write, bytes(pending))
        if size == 0:
            return _refuse(400, "The file is empty")
        await run_in_threadpool(handle.close)
        os.replace(partial, final)
        kept = True
    except ClientDisconnect:
        return _refuse(400, "The upload was interrupted")
    finally:
        handle.close()
        if not kept:
            partial.unlink(missing_ok=True)
    return JSONResponse({"uri": final.as_uri(), "size": size})
