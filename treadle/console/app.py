"""The console's plumbing: sessions on every page, CSRF on every change,
security headers, templates, and calls into the API's own operations.

Pages call the same operation handlers as the wire protocol, after the
same validation against the service model, so an account sees and changes
exactly what it could through the API, with the same errors.
"""
from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import parse_qsl, quote, urlsplit

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ..api.operations import OPERATIONS
from ..api.services import Call, Services
from ..protocol import errors
from ..protocol.validation import validate_input
from .sessions import COOKIE, Session, SessionStore, csrf_valid

log = logging.getLogger("treadle.console")
HERE = Path(__file__).parent
MAX_FORM_BYTES = 1 << 20

# No inline script or style anywhere: every script and stylesheet is a file
# served from /console/static/, so injected markup cannot run.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every console response,
    and a Server-Timing header with the time the server took to answer (what
    bench/console.py measures, and what a browser's developer tools show)."""

    def __init__(self, app):
        self.app = app
        self._headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope, receive, send):
        started = time.perf_counter()

        async def with_headers(message):
            if message["type"] == "http.response.start":
                timing = f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), *self._headers,
                                                  (b"server-timing", timing)]}
            await send(message)
        await self.app(scope, receive, with_headers)


class FormError(Exception):
    """Bad input on a console form: shown next to `field`."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["number"] = lambda value: "" if value is None else f"{value:,}"
    env.filters["quote"] = lambda value: quote(str(value), safe="")
    return env


def _when(epoch) -> str:
    import datetime as dt

    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(float(epoch), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class Console:
    def __init__(self, services: Services, sessions: SessionStore, anonymous: bool):
        self.services = services
        self.settings = services.settings
        self.sessions = sessions
        self.anonymous = anonymous  # --auth none: no sign-in, the default account
        self.templates = _environment()
        self.secure_cookies = self.settings.effective_public_url.startswith("https://")

    # -- API operations ------------------------------------------------------
    async def call(self, session: Session, operation: str, params: dict) -> dict:
        """The operation as the API would run it for this account."""
        checked = validate_input(operation, params)
        return await run_in_threadpool(OPERATIONS[operation], Call(self.services, session.principal), checked)

    # -- responses -------------------------------------------------------------
    def render(self, request: Request, session: Session | None, template: str, status: int = 200,
               **context) -> HTMLResponse:
        body = self.templates.get_template(template).render(
            session=session, csrf=session.csrf_token if session else "", anonymous=self.anonymous,
            path=request.url.path, **context)
        return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store"})

    def set_cookie(self, response: Response, token: str, max_age: int) -> None:
        response.set_cookie(COOKIE, token, max_age=max_age, path="/console", httponly=True, samesite="strict",
                            secure=self.secure_cookies)

    # -- requests --------------------------------------------------------------
    async def session(self, request: Request) -> Session | None:
        """The request's session (with --auth none, the default account's)."""
        if self.anonymous:
            return self.sessions.anonymous()
        token = request.cookies.get(COOKIE)
        return await run_in_threadpool(self.sessions.find, token) if token else None


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (every console form but
    the CSV upload, which streams): the last value of each field."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise errors.InvalidInputException("The form is larger than 1 MB")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise errors.InvalidInputException("The form is not UTF-8")


def same_origin(request: Request) -> bool:
    """A change must come from a page of this server: the Origin the
    browser sends (or, failing that, the Referer) names this host."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return False
    return urlsplit(origin).netloc == request.headers.get("host")


Handler = Callable[[Console, Request, Session], Awaitable[Response]]


def page(console: Console, handler: Handler, *, json_api: bool = False):
    """A route for signed-in users. GET and HEAD need a session; any other
    method also needs the same origin and the session's CSRF token (the
    `csrf` form field or the X-CSRF-Token header)."""
    @functools.wraps(handler)
    async def route(request: Request) -> Response:
        session = await console.session(request)
        if session is None:
            if json_api or request.method not in ("GET", "HEAD"):
                return JSONResponse({"error": "Sign in first"}, status_code=401)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/console/signin?next={quote(target, safe='')}", status_code=303)
        try:
            if request.method not in ("GET", "HEAD"):
                # The origin first: nothing of a cross-site request is read.
                if not same_origin(request):
                    return _refused(console, request, session)
                if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                    request.state.form = await read_form(request)
                submitted = request.headers.get("x-csrf-token") or form_of(request).get("csrf")
                if not csrf_valid(session, submitted):
                    return _refused(console, request, session)
            return await handler(console, request, session)
        except errors.ServiceError as error:
            # What the operation refused, as the API would say it: a missing
            # object, an ID in the address the API would not accept, a limit.
            missing = isinstance(error, errors.ResourceNotFoundException)
            return console.render(request, session, "error.html", status=404 if missing else error.status,
                                  title="Not found" if missing else "Refused", message=error.message)
    return route


def _refused(console: Console, request: Request, session: Session) -> Response:
    return console.render(request, session, "error.html", status=403, title="Refused",
                          message="This change did not come from a console page (its CSRF token is missing or "
                                  "wrong). Reload the page and try again.")


def form_of(request: Request) -> dict[str, str]:
    return getattr(request.state, "form", {})
