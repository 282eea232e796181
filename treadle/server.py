"""The HTTP application: the AWS JSON API at POST /, signed log links,
health. Assembles the services from Settings."""
from __future__ import annotations

import contextlib
import gc
import threading
import time
import uuid

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from .api.common import log_key
from .api.context import Services
from .api.handler import ApiHandler, response_headers
from .config import Settings
from .console.routes import console_app
from .jobs.runner import LocalJobRunner
from .metrics import Metrics
from .protocol import errors, wire
from .protocol.auth import Authenticator
from .serving.endpoints import LocalServing
from .serving.shared import SharedState
from .store import db
from .store.artifacts import open_artifacts
from .store.credentials import CredentialStore
from .store.entities import EntityStore
from .store.models import load_model
from .store.secrets import MasterKey


def build_services(settings: Settings, shared: SharedState | None = None) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.create_engine(settings.effective_database_url)
    db.migrate(engine)
    entities = EntityStore(engine)
    services = Services(
        settings=settings,
        engine=engine,
        entities=entities,
        artifacts=open_artifacts(settings.effective_artifacts_url),
        master_key=MasterKey.load(settings.data_dir),
    )
    services.serving = LocalServing(
        entities, load_model=lambda account, entity: load_model(services.artifacts, entity),
        peak_rps=settings.peak_requests_per_second, shared=shared)
    return services


def mount_waiting_endpoints(services: Services, job=None) -> None:
    """Endpoints created while their model trained are mounted when it
    finishes (and at start-up, for a server that stopped in between)."""
    if job is not None:
        if job.kind != "MLModel":
            return
        targets = [(job.account, job.entity_id)]
    else:
        targets = services.entities.with_endpoint_status("UPDATING")
    for account, model_id in targets:
        entity = services.entities.get(account, "MLModel", model_id)
        if entity and (entity.document.get("EndpointInfo") or {}).get("EndpointStatus") == "UPDATING":
            services.mount_endpoint(account, model_id)


def _forward_wakes(jobs_wanted, runner: LocalJobRunner) -> None:
    """Jobs queued through the other HTTP workers start as promptly as
    jobs queued here."""
    def forward():
        while True:
            jobs_wanted.wait()
            jobs_wanted.clear()
            runner.wake()
    threading.Thread(target=forward, name="treadle-job-wakes", daemon=True).start()


def _response(status: int, payload: dict, request_id: str) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if status >= 400 and "__type" in payload:
        # The JavaScript SDK takes the error's name from this header before
        # the body (where it would otherwise find the numeric `code`).
        headers["x-amzn-ErrorType"] = payload["__type"]
    return Response(wire.encode(payload), status_code=status, media_type=wire.CONTENT_TYPE, headers=headers)


class _App(Starlette):
    """Starlette for the GET routes and the lifespan; every POST goes
    straight to the API handler."""

    def __init__(self, api, **kwargs):
        super().__init__(**kwargs)
        self._api = api

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope["path"].startswith("/console/"):
            await self._api(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _request_url(request: Request) -> str:
    host = request.headers.get("host", "")
    path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{request.url.scheme}://{host}{path}" + (f"?{query}" if query else "")


def create_app(settings: Settings, services: Services | None = None, group=None, primary: bool = True) -> Starlette:
    """The app of one server process. `group` (a `treadle.workers.WorkerGroup`)
    joins it to the other HTTP workers of the same server; only the primary
    runs jobs and mounts the endpoints left waiting at start-up."""
    services = services or build_services(settings, group.serving if group else None)
    authenticator = Authenticator(
        settings.auth, CredentialStore(services.engine, services.master_key))
    runner = None
    if primary:
        runner = LocalJobRunner(services, on_finished=lambda job, status: mount_waiting_endpoints(services, job))
        services.wake_jobs = runner.wake
    else:
        services.wake_jobs = group.jobs_wanted.set
    metrics = Metrics(services.engine, group.metrics_dir if group else None)
    max_body = settings.max_request_bytes
    services.serving.on_loaded = metrics.endpoints_loaded.set

    handler = ApiHandler(services, authenticator, metrics)

    async def api(scope, receive, send) -> None:
        """The AWS JSON API: every POST, whatever its path (the JavaScript
        SDK keeps the EndpointUrl's path for Predict). A raw ASGI handler:
        Starlette's routing, middleware, Request and Response objects cost
        about as much as scoring a Predict does."""
        # The HTTP protocol refuses a body over the limit before it gets here
        # (treadle.http_limits); counting again costs nothing and keeps
        # that true whatever protocol serves the app.
        chunks, size, more = [], 0, True
        while more and size <= max_body:
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
        exchange = handler.begin(path, scope.get("query_string", b"").decode("latin-1"), headers,
                                 b"".join(chunks), size)
        if exchange.payload is None:
            await run_in_threadpool(handler.run, exchange)
        handler.end(exchange)
        await send({"type": "http.response.start", "status": exchange.status,
                    "headers": response_headers(exchange)})
        await send({"type": "http.response.body", "body": exchange.payload})

    async def logs(request: Request) -> Response:
        account = request.path_params["account"]
        kind = request.path_params["kind"]
        entity_id = request.path_params["entity_id"]
        expires = request.query_params.get("Expires", "")
        signature = request.query_params.get("Signature", "")
        path = request.url.path
        if not expires.isdigit() or not services.master_key.verify(f"{path}\n{expires}", signature):
            return PlainTextResponse("Invalid log link signature\n", status_code=403)
        if int(expires) < time.time():
            return PlainTextResponse("This log link has expired; call Get* again for a fresh LogUri\n",
                                     status_code=403)
        try:
            text = await run_in_threadpool(services.artifacts.get, log_key(account, kind, entity_id))
        except (FileNotFoundError, ValueError):
            return PlainTextResponse("No log has been written for this object yet\n", status_code=404)
        return Response(text, media_type="text/plain; charset=utf-8")

    def entity_json(kind: str, field: str, what: str):
        """A route serving an entity's stored JSON result (datasource
        statistics, evaluation insights) to the account that owns it,
        SigV4-signed like the API."""
        async def route(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            try:
                principal = authenticator.authenticate(request.method, _request_url(request), request.headers, b"")
            except errors.ServiceError as error:
                return _response(error.status, error.body(), request_id)
            entity_id = request.path_params["entity_id"]
            entity = services.entities.get(principal.account, kind, entity_id)
            if entity is None:
                return _response(404, errors.ResourceNotFoundException(
                    f"No {kind} exists with ID {entity_id}").body(), request_id)
            key = entity.document.get(field)
            if not key:
                reason = f"its status is {entity.status}"
                if kind == "DataSource" and not entity.document.get("ComputeStatistics"):
                    reason = "it was created with ComputeStatistics=false"
                return _response(404, errors.ResourceNotFoundException(
                    f"{kind} {entity_id} has no {what}: {reason}").body(), request_id)
            data = await run_in_threadpool(services.artifacts.get, key)
            body = b'{"' + kind.encode() + b'Id":' + wire.encode(entity_id) + b',"' + what.title().encode() + b'":' + data + b"}"
            return Response(body, media_type="application/json")
        return route

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def prometheus(request: Request) -> Response:
        body = await run_in_threadpool(metrics.render)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if runner is not None:
            await run_in_threadpool(mount_waiting_endpoints, services)
            runner.start()
            if group is not None:
                _forward_wakes(group.jobs_wanted, runner)
        # Everything loaded so far (botocore's service model, SQLAlchemy,
        # numpy, mounted models) lives as long as the server; left in the
        # collector's oldest generation it made each full collection a
        # pause of about 100 ms, the worst Predict latencies under load.
        gc.freeze()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()

    console = console_app(services, anonymous=settings.auth == "none")
    routes = [
        Route("/", lambda request: RedirectResponse("/console/objects", status_code=303), methods=["GET"]),
        Mount("/console", console),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/logs/{account}/{kind}/{entity_id}", logs, methods=["GET"]),
        Route("/datasources/{entity_id}/statistics", entity_json("DataSource", "_statistics", "statistics"),
              methods=["GET"]),
        Route("/evaluations/{entity_id}/insights", entity_json("Evaluation", "_insights", "insights"),
              methods=["GET"]),
    ]
    app = _App(api, routes=routes, lifespan=lifespan)
    app.state.services = services
    app.state.runner = runner
    return app
