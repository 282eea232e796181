"""The AWS JSON API as a raw ASGI application, and the app that sends every
POST outside the console to it."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

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


class App(Starlette):
    """Starlette for the GET routes and the lifespan; every POST outside the
    console goes straight to the API."""

    def __init__(self, api: ApiRoute, **kwargs):
        super().__init__(**kwargs)
        self._api = api

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope["path"].startswith("/console/"):
            await self._api(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
