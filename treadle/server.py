"""The HTTP application of one server process, assembled from Settings: the
services, the job runner of the primary process, and the routes of
`treadle.web` (the AWS JSON API at POST /, the console, signed log links,
stored results, health and metrics)."""
from __future__ import annotations

from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route

from .api.handler import ApiHandler
from .api.services import Services
from .config import Settings
from .console.routes import console_app
from .jobs.runner import LocalJobRunner
from .protocol.auth import Authenticator
from .server_metrics import Metrics
from .serving.endpoints import LocalServing
from .serving.shared import SharedState
from .store import db
from .store.artifacts import open_artifacts
from .store.credentials import CredentialStore
from .store.entities import EntityStore
from .store.models import load_model
from .store.secrets import MasterKey
from .web.api_route import ApiRoute, App
from .web.lifespan import lifespan
from .web.log_links import log
from .web.status import health, prometheus
from .web.stored_results import StoredResult


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


def create_app(settings: Settings, services: Services | None = None, group=None, primary: bool = True) -> Starlette:
    """The app of one server process. `group` (a `treadle.workers.WorkerGroup`)
    joins it to the other HTTP workers of the same server; only the primary
    runs jobs and mounts the endpoints left waiting at start-up."""
    services = services or build_services(settings, group.serving if group else None)
    metrics = Metrics(services.engine, group.metrics_dir if group else None)
    runner = None
    if primary:
        runner_class = LocalJobRunner
        if settings.dask_scheduler:
            from .jobs.dask_runner import DaskJobRunner as runner_class

        def finished(job, status: str) -> None:
            metrics.jobs_finished.labels(runner_class.name, job.kind, status).inc()
            services.serving.mount_waiting(job)
        runner = runner_class(services, on_finished=finished)
        services.wake_jobs = runner.wake
    else:
        services.wake_jobs = group.jobs_wanted.set
    services.serving.on_loaded = metrics.endpoints_loaded.set
    authenticator = Authenticator(settings.auth, CredentialStore(services.engine, services.master_key))
    api = ApiRoute(ApiHandler(services, authenticator, metrics), settings.max_request_bytes)
    routes = [
        Route("/", lambda request: RedirectResponse("/console/objects", status_code=303), methods=["GET"]),
        Mount("/console", console_app(services, anonymous=settings.auth == "none")),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/logs/{account}/{kind}/{entity_id}", log, methods=["GET"]),
        Route("/datasources/{entity_id}/statistics", StoredResult("DataSource", "_statistics", "statistics").get,
              methods=["GET"]),
        Route("/evaluations/{entity_id}/insights", StoredResult("Evaluation", "_insights", "insights").get,
              methods=["GET"]),
    ]
    hosts = None
    if settings.auth == "none":
        hosts = frozenset({urlsplit(settings.effective_public_url).netloc.lower()})
    app = App(api, hosts, routes=routes, lifespan=lifespan)
    app.state.services = services
    app.state.runner = runner
    app.state.group = group
    app.state.authenticator = authenticator
    app.state.metrics = metrics
    return app
