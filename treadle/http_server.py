"""uvicorn, configured for Treadle: one socket write per response.

An ASGI app sends a response as two messages, its head and its body, and
uvicorn's httptools protocol writes each to the socket as it comes: two
send() calls, and two wake-ups of the client, for a Predict answer of a
couple of hundred bytes. On 2 cores under load those writes were a fifth of
the server's time. `OneWriteProtocol` keeps back a response head until the
body follows (or the response completes, or the connection closes) and
writes both at once; everything else is uvicorn's own protocol.
"""
from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .config import Settings


class _HeadHoldingTransport:
    """Holds at most one response head, which the next write, the end of
    the response or the end of the connection sends. Interim responses
    (100 Continue) go straight out: the client waits for them."""

    def __init__(self, transport: asyncio.Transport):
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif data.startswith(b"HTTP/1.") and data[9:10] != b"1":
            self._head = bytes(data)
            return
        self._transport.write(data)

    def writelines(self, chunks) -> None:
        self.write(b"".join(chunks))

    def release(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def write_eof(self) -> None:
        self.release()
        self._transport.write_eof()

    def close(self) -> None:
        self.release()
        self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeadHoldingTransport(transport))

    def on_response_complete(self) -> None:
        # A response that wrote no body (to a HEAD request) ends here.
        self.transport.release()
        super().on_response_complete()


def config(app, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=settings.host, port=settings.port, http=OneWriteProtocol, log_config=None,
        access_log=False, timeout_graceful_shutdown=10,
        # Nothing in Treadle reads the client's address or scheme (EndpointUrl
        # and LogUri come from --public-url), so X-Forwarded-* need no parsing.
        proxy_headers=False)
