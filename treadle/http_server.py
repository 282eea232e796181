"""uvicorn, configured for Treadle: the request limits of
`treadle.http_limits`, one socket write per response, and a server that
serves connections handed to it (`treadle.connections`).

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

from . import connections
from .config import Settings
from .http_limits import LimitedProtocol, Limits


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
        elif data[:7] == b"HTTP/1." and data[9:10] != b"1":  # slices: data may be any bytes-like
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


class OneWriteProtocol(LimitedProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeadHoldingTransport(transport))

    def on_response_complete(self) -> None:
        # A response that wrote no body (to a HEAD request) ends here.
        self.transport.release()
        super().on_response_complete()


class CountedProtocol(OneWriteProtocol):
    """For a connection handed over by the acceptor: tells it when it ends."""

    def __init__(self, *args, on_closed, **kwargs):
        super().__init__(*args, **kwargs)
        self._on_closed = on_closed

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._on_closed()


class HandedServer(uvicorn.Server):
    """A uvicorn server listening on nothing itself: it serves what the
    acceptor passes over `channel` (uvicorn's own start-up, graceful
    shutdown and connection bookkeeping apply unchanged)."""

    def __init__(self, config: uvicorn.Config, channel, table, index: int, on_shutdown=lambda: None):
        super().__init__(config)
        self.channel, self.table, self.index = channel, table, index
        self._on_shutdown = on_shutdown

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=[])
        if not self.started:
            return

        def protocol(on_closed):
            return CountedProtocol(config=self.config, server_state=self.server_state,
                                   app_state=self.lifespan.state, on_closed=on_closed)
        connections.receive_connections(asyncio.get_running_loop(), self.channel, protocol, self.table, self.index)

    async def shutdown(self, sockets=None) -> None:
        connections.stop_receiving(asyncio.get_running_loop(), self.channel)
        self._on_shutdown()
        await super().shutdown(sockets=sockets)


class Config(uvicorn.Config):
    """uvicorn's configuration, with the limits its protocol applies."""

    def __init__(self, app, limits: Limits, **kwargs):
        super().__init__(app, **kwargs)
        self.limits = limits


def config(app, settings: Settings) -> Config:
    return Config(
        app, Limits.of(settings), host=settings.host, port=settings.port, http=OneWriteProtocol,
        log_config=None, access_log=False, timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.keep_alive_timeout,
        # Treadle serves no WebSocket route: an Upgrade header changes nothing.
        ws="none",
        # Nothing in Treadle reads the client's address or scheme (EndpointUrl
        # and LogUri come from --public-url), so X-Forwarded-* need no parsing.
        proxy_headers=False)
