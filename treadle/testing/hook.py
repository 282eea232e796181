"""Where botocore meets the mock: a `before-send` handler for every
`machinelearning` client, which hands the signed request to the active mock
and returns its answer as the HTTP response, so nothing is sent.

The handler is registered for the service's own event name, so botocore
calls it before the handlers registered for every service (moto's, say),
whose answers then go unused, and never calls it for other services. botocore copies its built-in handlers
into each session it creates, so every client made after this module is
imported has it; the handler does nothing while no mock is active.
"""
from __future__ import annotations

import io
import sys
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse
from botocore.handlers import BUILTIN_HANDLERS

from . import mock

EVENT = "before-send.machine-learning"


class RawBody(io.BytesIO):
    """A response body as botocore reads it from the wire."""

    def stream(self, **kwargs):
        while chunk := self.read(1 << 16):
            yield chunk


def _text(value) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _body(request) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "read"):
        return body.read()
    return bytes(body)


def answer(request, **kwargs) -> AWSResponse | None:
    active = mock.active()
    if active is None:
        return None  # no mock: the request goes out as usual
    url = urlsplit(request.url)
    # As the server reads them: lower-case names, the last of a repeated one.
    headers = {name.lower(): _text(value) for name, value in request.headers.items()}
    status, response_headers, payload = active.answer(url.path or "/", url.query, headers, _body(request))
    return AWSResponse(request.url, status, response_headers, RawBody(payload))


def install() -> None:
    BUILTIN_HANDLERS.append((EVENT, answer))
    # boto3's default session may predate this import; clients it makes
    # from now on are covered too.
    boto3 = sys.modules.get("boto3")
    session = getattr(boto3, "DEFAULT_SESSION", None)
    if session is not None:
        session.events.register(EVENT, answer, unique_id="treadle.testing")
