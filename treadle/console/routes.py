"""The console's routes under /console, assembled into one ASGI app."""
from __future__ import annotations

import functools

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles

from ..api.services import Services
from ..protocol import errors
from ..store.credentials import CredentialStore
from . import batch_predictions, datasources, details, evaluations, models, objects
from .app import HERE, Console, FormError, SecurityHeaders, page, read_form, same_origin
from .kinds import BY_SLUG
from .sessions import COOKIE, SESSION_SECONDS, SessionStore, SignInRefused


def _safe_next(target: str | None) -> str:
    # Only a console path: a sign-in link must not send people elsewhere.
    if target and target.startswith("/console/"):
        return target
    return "/console/objects"


async def signin_form(console: Console, request: Request) -> Response:
    if await console.session(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return console.render(request, None, "signin.html", title="Sign in", next=request.query_params.get("next", ""),
                          access_key_id="", problem=None)


async def signin(console: Console, request: Request) -> Response:
    if not same_origin(request):
        return console.render(request, None, "signin.html", status=403, title="Sign in", next="", access_key_id="",
                              problem="Sign in from this server's own sign-in page.")
    try:
        form = await read_form(request)
    except errors.ServiceError as error:
        return console.render(request, None, "signin.html", status=400, title="Sign in", next="", access_key_id="",
                              problem=error.message)
    client = request.client.host if request.client else ""
    try:
        token, session = await run_in_threadpool(
            console.sessions.sign_in, form.get("access_key_id", ""), form.get("secret_access_key", ""), client)
    except SignInRefused as refused:
        return console.render(request, None, "signin.html", status=401, title="Sign in",
                              next=form.get("next", ""), access_key_id=form.get("access_key_id", ""),
                              problem=str(refused))
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    console.set_cookie(response, token, max_age=SESSION_SECONDS)
    return response


async def signout(console: Console, request: Request, session) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        await run_in_threadpool(console.sessions.end, token)
    response = RedirectResponse("/console/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


async def home(console: Console, request: Request, session) -> Response:
    return RedirectResponse("/console/objects", status_code=303)


def _status(slug: str):
    """An object's status, which pages poll to refresh once it changes."""
    kind = BY_SLUG[slug]

    async def route(console: Console, request: Request, session) -> Response:
        found = await console.call(session, kind.get, {kind.id_member: request.path_params["entity_id"]})
        endpoint = (found.get("EndpointInfo") or {}).get("EndpointStatus")
        return JSONResponse({"Status": found["Status"], "EndpointStatus": endpoint})
    return route


def _object_page(slug: str):
    show = details.PAGES[BY_SLUG[slug].name]

    async def route(console: Console, request: Request, session) -> Response:
        return await show(console, request, session)
    return route


def _object_action(slug: str, action):
    """An action on an object page: a FormError shows that page again
    with the message next to the field that caused it."""
    kind = BY_SLUG[slug]

    async def run(console: Console, request: Request, session) -> Response:
        try:
            return await action(console, kind, request, session)
        except FormError as error:
            return await details.PAGES[kind.name](console, request, session, errors={error.field: error.message},
                                                  status=400)
    return run


def console_app(services: Services, anonymous: bool):
    sessions = SessionStore(services.engine, CredentialStore(services.engine, services.master_key),
                            services.master_key)
    console = Console(services, sessions, anonymous)

    def signed_in(handler, **options):
        return page(console, handler, **options)

    routes = [
        Route("/", signed_in(home)),
        Route("/signin", functools.partial(signin_form, console), methods=["GET"]),
        Route("/signin", functools.partial(signin, console), methods=["POST"]),
        Route("/signout", signed_in(signout), methods=["POST"]),
        Route("/objects", signed_in(objects.list_objects)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    # Creation pages live under /new/, where no object ID can be taken for a
    # page's name (an object may well be called "new").
    for module in (datasources, models, evaluations, batch_predictions):
        routes += module.routes(signed_in, _object_action)
    for slug in BY_SLUG:
        routes.append(Route(f"/{slug}/{{entity_id}}", signed_in(_object_page(slug))))
        routes.append(Route(f"/{slug}/{{entity_id}}/status", signed_in(_status(slug), json_api=True)))
        for action, handler in (("rename", objects.rename), ("tags", objects.add_tag),
                                ("tags/remove", objects.remove_tag), ("delete", objects.delete)):
            routes.append(Route(f"/{slug}/{{entity_id}}/{action}", signed_in(_object_action(slug, handler)),
                                methods=["POST"]))
    return SecurityHeaders(Router(routes=routes))
