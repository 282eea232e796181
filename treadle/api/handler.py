"""One API request from its bytes to its answer: authentication, the
operation's name, validation against the service model, the operation, and
errors in the AWS JSON envelope. The HTTP server and the in-process mock
(`treadle.testing`) both answer through it, so the two cannot drift apart.

An `Exchange` is answered in two steps so the server can run the second on
a worker thread: `begin` does what takes microseconds (and answers a
Predict of a mounted model, or an error, at once); `run` calls the
operation.
"""
from __future__ import annotations

import logging
import time

from .. import disk
from ..logs import RequestLog
from ..protocol import errors, wire
from ..protocol.auth import Authenticator, Principal
from ..protocol.validation import validate_input
from .operations import OPERATIONS
from .services import Call, Services

log = logging.getLogger("treadle.api")


def internal_error(error: Exception, request_id: str) -> str:
    """The message of an unexpected failure: the request id that finds the
    details in the server's log, and a full disk said plainly, since only
    the operator can cure it (never with a path: docs/behaviour.md, "Wire
    protocol and errors")."""
    if disk.full_disk(error):
        return f"The server's disk is full, so the request was not carried out (request {request_id})"
    return f"Internal error (request {request_id})"


class Exchange:
    """A request on its way through the handler, then its answer: `payload`
    (the encoded body) is None until it is answered; `error` is the
    ServiceError answered, if any."""

    __slots__ = ("started", "request_id", "operation", "principal", "params", "status", "payload", "error")

    def __init__(self):
        self.started = time.perf_counter()
        self.request_id = wire.request_id()
        self.operation = "-"
        self.principal: Principal | None = None
        self.params: dict | None = None
        self.status = 200
        self.payload: bytes | None = None
        self.error: errors.ServiceError | None = None


class ApiHandler:
    def __init__(self, services: Services, authenticator: Authenticator, metrics=None):
        self.services = services
        self.authenticator = authenticator
        self.metrics = metrics  # a treadle.server_metrics.Metrics, or None to count nothing
        self.request_log = RequestLog(log, "request", ("operation", "status", "duration_ms", "account", "request_id"))
        self.max_body = services.settings.max_request_bytes

    def begin(self, path: str, query: str, headers: dict[str, str], body: bytes, size: int | None = None) -> Exchange:
        """Authenticate, name and validate the request; answer a Predict of a
        mounted model, or a refusal, at once. `headers` maps lower-case
        names to values; `size` is the body's whole size where only its
        start was read (docs/behaviour.md, "Request limits and timeouts")."""
        exchange = Exchange()
        try:
            if (len(body) if size is None else size) > self.max_body:
                raise errors.RequestEntityTooLargeException(f"The request body exceeds {self.max_body} bytes")
            exchange.principal = principal = self.authenticator.verify("POST", path, query, headers, body)
            exchange.operation = operation = wire.operation_from_target(headers.get("x-amz-target"))
            wire.check_content_type(headers.get("content-type"))
            exchange.params = params = validate_input(operation, wire.parse_body(body))
            if operation == "Predict":
                # Scoring a mounted model takes microseconds: answer here,
                # without a thread hop or a database read.
                result = self.services.serving.predict_cached(principal.account, params["MLModelId"],
                                                              params["Record"])
                if result is not None:
                    exchange.payload = wire.encode(result)
        except Exception as error:
            self._fail(exchange, error)
        return exchange

    def run(self, exchange: Exchange) -> None:
        """Call the operation of an exchange `begin` left unanswered."""
        try:
            result = OPERATIONS[exchange.operation](Call(self.services, exchange.principal), exchange.params)
            exchange.payload = wire.encode(result)
        except Exception as error:
            self._fail(exchange, error)

    def end(self, exchange: Exchange) -> None:
        """Count and log the answered exchange."""
        elapsed = time.perf_counter() - exchange.started
        if self.metrics is not None:
            self.metrics.observe(exchange.operation, exchange.status, elapsed)
        principal = exchange.principal
        self.request_log(exchange.operation, exchange.status, round(elapsed * 1000, 2),
                         principal.account if principal else None, exchange.request_id)

    def handle(self, path: str, query: str, headers: dict[str, str], body: bytes) -> Exchange:
        """The whole exchange in the calling thread."""
        exchange = self.begin(path, query, headers, body)
        if exchange.payload is None:
            self.run(exchange)
        self.end(exchange)
        return exchange

    def _fail(self, exchange: Exchange, error: Exception) -> None:
        if not isinstance(error, errors.ServiceError):
            log.exception("unhandled error", extra={"fields": {"request_id": exchange.request_id,
                                                                "operation": exchange.operation}})
            error = errors.InternalServerException(internal_error(error, exchange.request_id))
        exchange.status = error.status
        exchange.error = error
        exchange.payload = wire.encode(error.body())


def response_headers(exchange: Exchange) -> list[tuple[bytes, bytes]]:
    """The answer's headers, as ASGI sends them (lower-case names)."""
    headers = [(b"x-amzn-requestid", exchange.request_id.encode()),
               (b"content-length", str(len(exchange.payload)).encode()),
               (b"content-type", _CONTENT_TYPE)]
    if exchange.error is not None:
        # The JavaScript SDK takes the error's name from this header before
        # the body (where it would otherwise find the numeric `code`).
        headers.append((b"x-amzn-errortype", exchange.error.code.encode()))
    return headers


_CONTENT_TYPE = wire.CONTENT_TYPE.encode()
