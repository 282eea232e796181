"""Jobs run inside the process that queues them (the in-process mock of
`treadle.testing`): in threads, as the server runs them in worker
processes, or eagerly, in the thread whose Create* call queued them.

Both take their jobs from the same durable queue as the server's runner,
so its rules hold: a job waits while an input is pending and fails, naming
it, when an input failed. Thread workers are cheap to start where a worker
process takes about a second, and the job functions are ordinary Python
whose numba kernels release the GIL in their loops.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import uuid

from .queue import JobQueue, JobRef
from .runner import LocalJobRunner
from .worker import run_job


def _stores(services) -> tuple:
    return services.entities, services.artifacts, services.master_key


class ThreadJobRunner(LocalJobRunner):
    """The local runner's scheduler, with jobs in threads sharing the
    caller's stores."""

    name = "threads"

    def _new_executor(self) -> cf.ThreadPoolExecutor:
        return cf.ThreadPoolExecutor(self.settings.job_concurrency, thread_name_prefix="treadle-job")

    def _start(self, job: JobRef) -> cf.Future:
        return self._executor.submit(run_job, self.settings, job, _stores(self.services))

    def _shut_down(self, executor) -> None:
        # A thread cannot be stopped: running jobs finish before the stores
        # they write to are closed. Jobs not started yet are dropped.
        executor.shutdown(wait=True, cancel_futures=True)


class EagerJobs:
    """Runs every job that is ready, one at a time, in the calling thread."""

    def __init__(self, services, on_finished=None):
        self.services = services
        self.settings = services.settings
        self.queue = JobQueue(services.entities, self.settings.job_max_attempts)
        self.owner = f"eager:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.on_finished = on_finished or (lambda job, status: None)

    def run_ready(self) -> None:
        """Until the queue has no ready job: a finished job can make those
        waiting on it ready."""
        while True:
            # One at a time: jobs claimed together would wait in this thread
            # while another thread's call could be running them.
            claimed = self.queue.claim(self.owner, 1, self.settings.job_lease_seconds)
            if not claimed:
                return
            job = claimed[0]
            self.on_finished(job, run_job(self.settings, job, _stores(self.services)))
