"""Job runners. `JobRunner` is the narrow interface the server uses; the
local runner keeps a scheduler thread that claims jobs from the durable
queue and runs each in a worker process, so CPU-heavy jobs never hold the
API server's GIL."""
from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import multiprocessing.context
import os
import signal
import socket
import sys
import threading
import time
import uuid
from typing import Protocol

from .. import disk
from .queue import JobQueue, JobRef
from .worker import run_job

log = logging.getLogger("treadle.jobs")


# Job workers yield the CPU to the HTTP workers: a training job must not
# stall real-time predictions on the same machine. Where Linux offers it
# they run under SCHED_IDLE, which does more than a high nice value: a CPU
# running only job work counts as idle when a woken HTTP worker looks for a
# CPU, and the waker preempts the job at once instead of queueing behind
# its time slice. Elsewhere, nice 10. On an idle machine neither costs
# training anything.
WORKER_NICENESS = 10

# The longest the scheduler waits after failing, before trying again.
MAX_PAUSE_SECONDS = 10.0


def lower_priority(pid: int = 0) -> None:
    """Lower the priority of process `pid` (0: this one). Linux sets it per
    thread, so this is called while the process has one thread: every
    thread started later (numba, Arrow) inherits it."""
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        try:
            if os.sched_getscheduler(pid) != idle:
                os.sched_setscheduler(pid, idle, os.sched_param(0))
            return
        except OSError:
            pass
    nice = os.getpriority(os.PRIO_PROCESS, pid)
    os.setpriority(os.PRIO_PROCESS, pid, min(19, nice + WORKER_NICENESS))


class _JobProcess(multiprocessing.context.SpawnProcess):
    def start(self) -> None:
        super().start()
        # Lowered from here, right after the exec, rather than in the child:
        # its imports (numpy, numba, pyarrow) would otherwise run at the
        # server's priority, and they take most of a second of CPU. The
        # child has one thread this early.
        lower_priority(self.pid)


class _JobContext(multiprocessing.context.SpawnContext):
    # spawn, not fork: the server process has threads and open sockets.
    Process = _JobProcess


def _worker_init() -> None:
    from ..logs import configure

    die_with_parent()
    # A job's own account of itself goes to the object's log; the server's
    # log gets only what the operator must see (internal errors).
    configure("WARNING")


def job_executor(max_workers: int) -> cf.ProcessPoolExecutor:
    """Spawned worker processes at low priority that die with the server."""
    return cf.ProcessPoolExecutor(max_workers=max_workers, mp_context=_JobContext(), initializer=_worker_init)


def die_with_parent() -> None:
    """A worker must not outlive a server that was killed: its job is handed
    to another run, and a stray worker finishing later would race it (an
    HTTP worker would keep answering on the dead server's port)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


class JobRunner(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def wake(self) -> None: ...


class LocalJobRunner:
    name = "local"  # in metrics

    def __init__(self, services, on_finished=None):
        self.services = services
        self.settings = services.settings
        self.queue = JobQueue(services.entities, self.settings.job_max_attempts)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.on_finished = on_finished or (lambda job, status: None)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._running: dict[cf.Future, JobRef] = {}
        self._thread: threading.Thread | None = None
        self._executor: cf.ProcessPoolExecutor | None = None

    def start(self) -> None:
        self._executor = self._new_executor()
        self._thread = threading.Thread(target=self._loop, name="treadle-jobs", daemon=True)
        self._thread.start()

    def _new_executor(self) -> cf.ProcessPoolExecutor:
        return job_executor(self.settings.job_concurrency)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)
        if self._executor:
            self._shut_down(self._executor)
        self.queue.release_owned(self.owner, "Treadle was stopped while this job was running")

    def _shut_down(self, executor) -> None:
        # Running jobs are abandoned, not awaited: they are handed back to
        # the queue and run again by the next server.
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()

    def _start(self, job: JobRef) -> cf.Future:
        return self._executor.submit(run_job, self.settings, job)

    def capacity(self) -> int:
        """How many jobs may run at once."""
        return self.settings.job_concurrency

    def _lost(self, error: BaseException) -> str:
        """Why a job whose run raised `error` (not the job's own failure) is
        run again: the job's Message while it waits."""
        return f"The worker running this job stopped ({type(error).__name__})"

    def _submit(self, job: JobRef) -> cf.Future:
        future = self._start(job)
        # The scheduler hears of a finished job at once, so the jobs waiting
        # on it start without waiting for the next poll.
        future.add_done_callback(lambda _: self.wake())
        return future

    def _loop(self) -> None:
        lease = self.settings.job_lease_seconds
        last_sweep = 0.0
        pause = self.settings.job_poll_seconds
        while not self._stop.is_set():
            # Cleared before the work it asks for, not after the wait: a
            # wake-up arriving while this pass runs (a job finishing) then
            # ends the next wait at once instead of being lost.
            self._wake.clear()
            try:
                if time.monotonic() - last_sweep > min(5.0, lease / 3):
                    self.queue.renew(self.owner, [job.pk for job in self._running.values()], lease)
                    self.queue.recover_expired()
                    last_sweep = time.monotonic()
                self._collect()
                free = self.capacity() - len(self._running)
                if free > 0:
                    for job in self.queue.claim(self.owner, free, lease):
                        self._running[self._submit(job)] = job
            except Exception as error:
                # What fails here (the queue's database, most often because
                # its disk is full) fails again at once: wait longer after
                # each failure, and let no wake-up cut the wait short.
                pause = min(pause * 2, MAX_PAUSE_SECONDS)
                self._report(error, pause)
                self._stop.wait(pause)
                continue
            pause = self.settings.job_poll_seconds
            self._wake.wait(pause)

    def _report(self, error: Exception, pause: float) -> None:
        full = disk.full_disk(error)
        if full:
            log.error("the disk is full (%s): jobs wait, trying again in %.0f s", full, pause)
        else:
            log.exception("job scheduler error; trying again in %.0f s", pause)

    def _collect(self) -> None:
        broken = False
        for future in [f for f in self._running if f.done()]:
            job = self._running.pop(future)
            error = future.exception()
            if error is None:
                self.on_finished(job, future.result())
                self._wake.set()  # jobs waiting on this one may be ready now
                continue
            log.error("job %s %s lost its worker: %r", job.kind, job.entity_id, error)
            broken = broken or isinstance(error, cf.process.BrokenProcessPool)
            self.queue.requeue(job, self._lost(error))
        if broken:
            self._executor = self._new_executor()
