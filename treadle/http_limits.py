"""What a client may send, and how slowly (docs/behaviour.md, "Request
limits and timeouts"), enforced in the HTTP protocol before the app sees a
request:

- a request head over MAX_HEAD_BYTES is answered 431;
- a Content-Length over the body limit is answered 413 at once, before a
  byte of the body is read; a chunked body is counted as it arrives and is
  answered 413 when it passes the limit;
- a head must be complete within the header timeout, counted from the
  connection's start (so a connection that never sends a byte is closed
  too) or, on a kept-alive connection, from the head's first byte; a body
  within the body timeout, counted from the end of its head. Either is
  answered 408, except a connection that sent nothing of a request, which
  is just closed;
- an idle connection after a response is closed after the keep-alive
  timeout (uvicorn's own timer, `timeout_keep_alive`).

A POST to one of `Limits.upload_paths` (the console's CSV upload, which
streams to disk) may carry up to `max_upload` bytes, and its body timeout
counts from its last progress rather than from its head: a large file
takes longer than any fixed bound, but it keeps moving.

Each answer is an AWS JSON error and ends the connection.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .logs import event
from .protocol import errors, wire

log = logging.getLogger("treadle.http")

# A signed API request's head is about 1 KiB; this leaves room for long
# session tokens and user agents.
MAX_HEAD_BYTES = 16 * 1024
# After an error answer, what the client still sends is read and dropped
# for this long before the connection closes. Closing a socket with unread
# data makes the kernel reset the connection, and a client still sending
# the body it was refused (most send it without waiting for an answer)
# would see the reset instead of the answer.
LINGER_SECONDS = 2.0
_CONTENT_TYPE = wire.CONTENT_TYPE.encode()


@dataclass(frozen=True)
class Limits:
    max_body: int
    header_timeout: float
    # A bound on the whole body, not on the time between two reads: a
    # client sending a byte a second would make progress for ever. The
    # API's bodies are small (the service model's largest, a schema or a
    # recipe, is 128 KiB); the default 30 s lets even a body at the default
    # 32 MiB limit through at 1.1 MB/s.
    body_timeout: float
    max_upload: int = 0
    upload_paths: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, settings) -> "Limits":
        from .config import UPLOAD_PATH

        uploads = (UPLOAD_PATH.encode(),) if settings.effective_upload_dir is not None else ()
        return cls(settings.max_request_bytes, settings.header_timeout, settings.body_timeout,
                   settings.max_upload_bytes, uploads)


class LimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, applying `config.limits` (a `Limits`)."""

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.limits: Limits = config.limits
        self._timer: asyncio.TimerHandle | None = None  # the head's or the body's time, or the linger
        self._in_body = False  # from the end of a head to the end of its body
        self._head_started = False  # a byte of the coming request's head has arrived
        self._head_bytes = 0  # of a head spread over several reads
        self._body_bytes = 0
        self._max_body = self.limits.max_body  # of the request being read
        self._streaming = False  # an upload: its body timeout counts from its last progress
        self._completed = 0  # heads and bodies parsed so far
        self._refused = False  # answered with an error: nothing more is parsed

    # -- the connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_timer(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        completed = self._completed
        super().data_received(data)
        if self._refused:
            return
        if completed == self._completed and not self._in_body:
            # Nothing but head in this read. A read that also finished a
            # head or a body is not counted, so pipelined requests are not
            # refused for the ones before them; on_headers_complete measures
            # each head once it is whole.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(_head_too_large())
                return
        # A timer only for a request this read left unfinished: one that
        # arrives whole in a read, as most do, costs none. Bytes that begin
        # no request (blank lines) start the head's time too, or a stream of
        # them would hold the connection.
        if self._timer is None:
            if self._in_body:
                self._start_timer(self.limits.body_timeout, self._body_timed_out)
            elif self._head_started or completed == self._completed:
                self._start_timer(self.limits.header_timeout, self._head_timed_out)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to what llhttp cannot parse, in the API's format.
        self._refuse(errors.SerializationException("The request is not valid HTTP/1.1"))

    # -- parser callbacks
    def on_message_begin(self) -> None:
        if self._refused:
            return
        self._head_started = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._stop_timer()
        self._completed += 1
        self._head_started, self._head_bytes, self._body_bytes = False, 0, 0
        size, length = len(self.url), 0
        for name, value in self.headers:
            size += len(name) + len(value)
            if name == b"content-length":
                length = int(value)  # llhttp let it through: digits, and only one
        if size > MAX_HEAD_BYTES:
            self._refuse(_head_too_large())
            return
        self._streaming = (self.url.split(b"?", 1)[0] in self.limits.upload_paths
                           and self.parser.get_method() == b"POST")
        self._max_body = self.limits.max_upload if self._streaming else self.limits.max_body
        if length > self._max_body:
            self._refuse(errors.RequestEntityTooLargeException(
                f"The request body ({length} bytes) exceeds the limit of {self._max_body} bytes"))
            return
        super().on_headers_complete()
        self._in_body = True

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)
        if self._body_bytes > self._max_body:  # only a chunked body gets here
            self._refuse(errors.RequestEntityTooLargeException(
                f"The request body exceeds the limit of {self._max_body} bytes"))
            return
        if self._streaming:
            self._start_timer(self.limits.body_timeout, self._body_timed_out)
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._stop_timer()
        self._completed += 1
        self._in_body = False
        super().on_message_complete()

    # -- timers
    def _start_timer(self, seconds: float, callback) -> None:
        self._stop_timer()
        self._timer = self.loop.call_later(seconds, callback)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if not self._head_started:
            self._refuse(None)  # nothing of a request came: nothing to answer
            return
        self._refuse(errors.RequestTimeoutException(
            f"The request head was not complete within {self.limits.header_timeout:g} seconds"))

    def _body_timed_out(self) -> None:
        self._timer = None
        if self._streaming:
            self._refuse(errors.RequestTimeoutException(
                f"The upload made no progress for {self.limits.body_timeout:g} seconds"))
            return
        self._refuse(errors.RequestTimeoutException(
            f"The request body was not complete within {self.limits.body_timeout:g} seconds of its head"))

    # -- the end
    def _refuse(self, error: errors.ServiceError | None) -> None:
        """Ends the connection, parsing nothing more: answers `error` first,
        unless another answer is under way on the connection (one cannot be
        written into another); then it closes once that one is sent."""
        self._refused = True
        self._stop_timer()
        cycle = self.cycle
        if self._in_body:  # `cycle` is this request's
            if not cycle.response_started:
                # Its app is waiting for the body: it ends as if the client
                # had left, and answers nothing.
                cycle.disconnected = True
                cycle.message_event.set()
            answered = cycle.response_started
            under_way = bool(self.pipeline) or (cycle.response_started and not cycle.response_complete)
        else:  # `cycle`, if any, is an earlier request's
            answered = False
            under_way = cycle is not None and not cycle.response_complete
        if under_way:
            self.flow.pause_reading()  # on_response_complete closes
            return
        if error is None or answered or self.transport.is_closing():
            self.transport.close()
            return
        request_id = wire.request_id()
        event(log, "request refused", status=error.status, error=error.code, request_id=request_id)
        self.transport.write(self._error_response(error, request_id))
        self.transport.write_eof()
        self.flow.resume_reading()  # to drop what still comes
        self._timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def on_response_complete(self) -> None:
        if self._refused:
            self.transport.close()  # the answer `_refuse` waited for is sent
        super().on_response_complete()

    def _error_response(self, error: errors.ServiceError, request_id: str) -> bytes:
        body = wire.encode(error.body())
        head = [STATUS_LINE[error.status]]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [b"content-type: ", _CONTENT_TYPE, b"\r\ncontent-length: ", str(len(body)).encode(),
                 b"\r\nx-amzn-requestid: ", request_id.encode(), b"\r\nx-amzn-errortype: ", error.code.encode(),
                 b"\r\nconnection: close\r\n\r\n"]
        return b"".join(head) + body


def _head_too_large() -> errors.ServiceError:
    return errors.RequestHeaderFieldsTooLargeException(f"The request head exceeds {MAX_HEAD_BYTES} bytes")
