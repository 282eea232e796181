"""Handing connections to HTTP workers: the first process accepts every
connection and passes it to the worker with the fewest open.

Workers accepting from one shared socket (or from SO_REUSEPORT sockets)
split keep-alive connections unevenly: whoever wakes first takes every
connection queued by then. Under the Predict benchmark, 16 connections
split 9/7, 14/2, 9/7, 7/9 and 10/6 over five windows, and the busier
worker's clients waited longest (Node's cluster module distributes
connections from its primary for the same reason). Here the
first process's acceptor thread passes each accepted socket over a Unix
socket pair (SCM_RIGHTS) to the worker with the fewest open connections,
and the worker's event loop adopts it (`loop.connect_accepted_socket`)
with uvicorn's protocol, so the connection is served exactly as one the
worker had accepted itself.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import threading
import time

log = logging.getLogger("treadle.connections")
POLL_SECONDS = 0.5


class ConnectionTable:
    """Per worker: connections handed to it (written by the acceptor),
    connections it closed (written by the worker), and whether it takes
    connections yet (written by the worker, reset by the acceptor when the
    worker is replaced). Each cell has one writer, so no lock."""

    def __init__(self, context, size: int):
        self.opened = context.RawArray(ctypes.c_int64, size)
        self.closed = context.RawArray(ctypes.c_int64, size)
        self.ready = context.RawArray(ctypes.c_int8, size)

    def open_count(self, index: int) -> int:
        return self.opened[index] - self.closed[index]


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """(the acceptor's end, the worker's end)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


class Acceptor(threading.Thread):
    def __init__(self, listener: socket.socket, table: ConnectionTable, channels: list[socket.socket],
                 startup_seconds: float):
        super().__init__(name="treadle-acceptor", daemon=True)
        self.listener = listener
        self.table = table
        self.channels = channels
        self.startup_seconds = startup_seconds
        self._stopping = threading.Event()
        self._next = 0  # ties go round the workers

    def replace(self, index: int, channel: socket.socket) -> None:
        """A new worker process took slot `index`."""
        old, self.channels[index] = self.channels[index], channel
        self.table.ready[index] = 0
        self.table.opened[index] = self.table.closed[index] = 0
        old.close()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        self._wait_for_workers()
        self.listener.settimeout(POLL_SECONDS)
        while not self._stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except (socket.timeout, BlockingIOError):
                continue
            except OSError as error:
                if self._stopping.is_set():
                    return
                log.error("accepting a connection failed: %s", error)
                time.sleep(0.05)  # out of file descriptors, say: do not spin
                continue
            with connection:
                try:
                    self._hand(connection)
                except Exception:  # this thread is the server's only way in: it must go on
                    log.exception("handing a connection to a worker failed; it was closed")

    def _wait_for_workers(self) -> None:
        """Connections wait in the listen queue until every worker takes
        them: ones made earlier would all land on the first worker ready."""
        deadline = time.monotonic() + self.startup_seconds
        while not all(self.table.ready) and time.monotonic() < deadline and not self._stopping.is_set():
            time.sleep(0.01)
        if not all(self.table.ready):
            log.error("not every HTTP worker started within %d s; serving without them", self.startup_seconds)

    def _hand(self, connection: socket.socket) -> None:
        table, count = self.table, len(self.channels)
        order = sorted((index for index in range(count) if table.ready[index]),
                       key=lambda index: (table.open_count(index), (index - self._next) % count))
        for index in order:
            try:
                socket.send_fds(self.channels[index], [b"c"], [connection.fileno()], socket.MSG_DONTWAIT)
            except OSError:
                continue  # a worker that died or is not reading: the next one
            table.opened[index] += 1
            self._next = (index + 1) % count
            return
        log.error("no HTTP worker could take a connection; it was closed")


def receive_connections(loop: asyncio.AbstractEventLoop, channel: socket.socket, protocol_factory,
                        table: ConnectionTable, index: int) -> None:
    """In a worker: adopt every connection the acceptor passes, and count
    it closed when it ends."""
    channel.setblocking(False)

    def closed() -> None:
        table.closed[index] += 1

    async def adopt(sock: socket.socket) -> None:
        try:
            await loop.connect_accepted_socket(lambda: protocol_factory(closed), sock)
        except Exception as error:  # the client left before the worker got to it
            closed()
            sock.close()
            log.debug("a handed-over connection could not be served: %s", error)

    def readable() -> None:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(channel, 16, 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                loop.remove_reader(channel.fileno())
                return
            if not message and not fds:  # the acceptor's end closed
                loop.remove_reader(channel.fileno())
                return
            for fd in fds:
                loop.create_task(adopt(socket.socket(fileno=fd)))

    loop.add_reader(channel.fileno(), readable)
    table.ready[index] = 1


def stop_receiving(loop: asyncio.AbstractEventLoop, channel: socket.socket) -> None:
    try:
        loop.remove_reader(channel.fileno())
    except (ValueError, OSError):
        pass
