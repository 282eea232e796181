"""`treadle serve` as one or several HTTP worker processes on one port.

Each worker is a whole API server (every operation, Predict from memory).
With more than one, the first process binds the port and its acceptor
thread hands each connection to the worker with the fewest open
(`treadle.connections`). The first process is also the only one running
the job runner, so `--jobs` stays the machine's job concurrency; the others
wake it through a shared event when they queue a job. What the workers
must agree on between requests lives in the database, except the few
things that change per request: the real-time change counter and
per-endpoint request counts (`treadle.serving.shared`) and the metrics
(prometheus_client's multiprocess files).

Workers are spawned, not forked (the first process has threads), die with
the first process, and are started again if they die on their own.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
from dataclasses import dataclass

from . import connections, http_server, scratch
from .config import Settings
from .logs import event

log = logging.getLogger("treadle.workers")
_QUIET_EXIT = {0, -signal.SIGINT, -signal.SIGTERM}
STARTUP_SECONDS = 120


@dataclass
class WorkerGroup:
    """What the HTTP workers of one server share (picklable for spawn)."""
    serving: object  # treadle.serving.shared.SharedState
    jobs_wanted: object  # a multiprocessing Event: a worker queued a job
    connections: connections.ConnectionTable
    metrics_dir: str | None


def run(settings: Settings, log_level: str) -> int:
    """Serve until SIGINT or SIGTERM, with `settings.workers` processes; the
    exit status (3 when the server could not start, as uvicorn's)."""
    with scratch.owned(settings):
        return _serve(settings, log_level)


def _serve(settings: Settings, log_level: str) -> int:
    import uvicorn

    if settings.workers == 1:
        from .server import create_app

        server = uvicorn.Server(http_server.config(create_app(settings), settings))
        _quiet_signals()
        server.run()
        return 0 if server.started else 3

    # Before prometheus_client is first imported (by treadle.server).
    metrics_dir = tempfile.mkdtemp(prefix="treadle-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from .serving.shared import SharedState
    from .server import create_app

    context = multiprocessing.get_context("spawn")
    group = WorkerGroup(SharedState(context), context.Event(),
                        connections.ConnectionTable(context, settings.workers), metrics_dir)
    app = create_app(settings, group=group, primary=True)
    config = http_server.config(app, settings)
    listener = config.bind_socket()
    listener.listen(config.backlog)  # bind_socket leaves that to the server, which is ours here
    pairs = [connections.channel_pair() for _ in range(settings.workers)]
    acceptor = connections.Acceptor(listener, group.connections, [ours for ours, _ in pairs], STARTUP_SECONDS)
    spawner = _Spawner(context, settings, log_level, group, acceptor)
    server = http_server.HandedServer(config, pairs[0][1], group.connections, 0, on_shutdown=acceptor.stop)
    try:
        for index in range(1, settings.workers):
            spawner.spawn(index, pairs[index][1])
        spawner.start()
        acceptor.start()
        _quiet_signals()
        server.run()
        return 0 if server.started else 3
    finally:
        acceptor.stop()
        spawner.stop()
        listener.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _quiet_signals() -> None:
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the
    # signal against the handlers it found; quiet ones make that final
    # re-raise a no-op, so a clean shutdown exits with status 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)


class _Spawner:
    """Starts the extra workers, and starts again any that die on their own."""

    def __init__(self, context, settings: Settings, log_level: str, group: WorkerGroup,
                 acceptor: connections.Acceptor):
        self.context = context
        self.args = (settings, log_level, group)
        self.acceptor = acceptor
        self.processes: dict[int, multiprocessing.Process] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="treadle-workers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def spawn(self, index: int, channel: socket.socket) -> None:
        process = self.context.Process(target=_worker_main, args=(index, channel, *self.args),
                                       name=f"treadle-worker-{index}", daemon=True)
        process.start()
        channel.close()  # the worker has its own copy now
        self.processes[index] = process
        event(log, "worker started", worker=index, worker_pid=process.pid)

    def _watch(self) -> None:
        from multiprocessing.connection import wait

        while not self._stopping.is_set():
            by_sentinel = {p.sentinel: index for index, p in self.processes.items()}
            ready = wait(list(by_sentinel), timeout=1.0)
            for sentinel in ready:
                index = by_sentinel[sentinel]
                process = self.processes[index]
                process.join()
                if self._stopping.is_set():
                    return
                if process.exitcode in _QUIET_EXIT:
                    continue  # asked to stop (a terminal's Ctrl-C reaches every worker)
                log.error("worker %d (pid %d) exited with %s; starting it again",
                          index, process.pid, process.exitcode)
                self._forget_metrics(process.pid)
                ours, theirs = connections.channel_pair()
                self.acceptor.replace(index, ours)
                self.spawn(index, theirs)

    def _forget_metrics(self, pid: int) -> None:
        metrics_dir = self.args[2].metrics_dir
        if metrics_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, metrics_dir)

    def stop(self) -> None:
        self._stopping.set()
        for process in self.processes.values():
            if process.is_alive():
                process.terminate()
        for process in self.processes.values():
            process.join(timeout=15)
            if process.is_alive():
                process.kill()
                process.join()


def _worker_main(index: int, channel: socket.socket, settings: Settings, log_level: str,
                 group: WorkerGroup) -> None:
    from .jobs.runner import die_with_parent
    from .logs import configure

    die_with_parent()
    configure(log_level.upper())
    from .server import create_app

    app = create_app(settings, group=group, primary=False)
    _quiet_signals()
    http_server.HandedServer(http_server.config(app, settings), channel, group.connections, index).run()
