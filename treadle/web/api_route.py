"""The AWS JSON API as a raw ASGI application, and the app that sends every
POST outside the console to it."""
from __future__ import annotations

import ipaddress

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse

from ..api.handler import ApiHandler, response_headers


class ApiRoute:
    """Every POST, whatever its path (the JavaScript SDK keeps the
    EndpointUrl's path for Predict). A raw ASGI handler: Starlette's routing,
    middleware, Request and Response objects cost about as much as scoring a
    Predict does."""

    def __init__(self, handler: ApiHandler, max_body: int):
        self.handler = handler
        self.max_body = max_body

    async def __call__(self, scope, receive, send) -> None:
        # The HTTP protocol refuses a body over the limit before it gets here
        # (treadle.http_limits); counting again costs nothing and keeps
        # that true whatever protocol serves the app.
        chunks, size, more = [], 0, True
        while more and size <= self.max_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
        # As Starlette's Headers: names arrive lower-cased; a repeated
        # header counts with its last value.
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path is not None else scope["path"]
        exchange = self.handler.begin(path, scope.get("query_string", b"").decode("latin-1"), headers,
                                      b"".join(chunks), size)
        if exchange.payload is None:
            await run_in_threadpool(self.handler.run, exchange)
        self.handler.end(exchange)
        await send({"type": "http.response.start", "status": exchange.status,
                    "headers": response_headers(exchange)})
        await send({"type": "http.response.body", "body": exchange.payload})


def literal_loopback(host_header: str) -> bool:
    """Whether a Host header names a loopback address literally
    ("localhost", 127.0.0.1, [::1]), without resolving a name."""
    host = host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header
    host = host.removeprefix("[").split("]", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class App(Starlette):
    """Starlette for the GET routes and the lifespan; every POST outside the
    console goes straight to the API.

    Without authentication (`--auth none`, loopback only) a request must
    also name a loopback host, or this server's public one (`hosts`): a web
    page whose own name an attacker has pointed at 127.0.0.1 (DNS
    rebinding) sends its name as Host, and would otherwise drive the API and
    the console of a server that asks for no credentials (docs/behaviour.md,
    "Console sessions")."""

    def __init__(self, api: ApiRoute, hosts: frozenset[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self._api = api
        self._hosts = hosts  # None: any Host

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and self._hosts is not None and not self._host_allowed(scope):
            await PlainTextResponse("This server answers only requests to a loopback address\n",
                                    status_code=403)(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "POST" and not scope["path"].startswith("/console/"):
            await self._api(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _host_allowed(self, scope) -> bool:
        host = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), "")
        return host.lower() in self._hosts or literal_loopback(host)
