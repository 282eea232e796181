"""Jobs on a Dask cluster (`treadle serve --dask-scheduler tcp://HOST:PORT`).

The durable queue stays the truth: this runner claims jobs from the
metadata database exactly as the local runner does, renews their leases
while they run, and hands each to the cluster as one task, named after the
job so the Dask dashboard shows what runs. A task whose worker dies is run
again by Dask itself (its scheduler's `allowed-failures`); only when Dask
gives up does the queue count a failed attempt. A server that stops lets
its leases lapse and another server runs the job again, so the queue's
retry and Dask's never act on the same failure.

Cluster mode needs storage every worker reaches: PostgreSQL for the
metadata, and `s3://` artifacts or a folder mounted at the same path on
every worker (`--shared-artifacts`). Workers need the server's master key
(TREADLE_MASTER_KEY) to read sealed secrets; the server checks it on every
worker it finds at start-up.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
import uuid
from pathlib import Path

from ..config import Settings
from ..store.secrets import MASTER_KEY_ENV
from .parts import DaskParts
from .context import WorkLost
from .queue import JobRef
from .runner import LocalJobRunner
from .worker import run_job

log = logging.getLogger("treadle.jobs")
CAPACITY_SECONDS = 5.0  # how long the cluster's thread count is taken as known


class ClusterMisconfigured(Exception):
    """What cluster mode needs and is missing, said so an operator can set it."""


def cluster_problems(settings: Settings) -> list[str]:
    """What stops `settings` from running jobs on a Dask cluster."""
    problems = []
    try:
        import distributed  # noqa: F401
    except ImportError:
        problems.append("Dask is not installed: pip install 'treadle[dask]'")
    if not settings.effective_database_url.startswith(("postgresql", "postgres")):
        problems.append("every Dask worker must reach the metadata: give --database-url postgresql://...")
    if not (settings.effective_artifacts_url.startswith("s3://") or settings.shared_artifacts):
        problems.append("every Dask worker must reach the artifacts: give --artifacts-url s3://bucket/prefix, or "
                        "--shared-artifacts if the artifact folder is mounted at the same path on every worker")
    if not os.environ.get(MASTER_KEY_ENV):
        problems.append(f"servers and Dask workers must share one master key: set {MASTER_KEY_ENV} (a Fernet key) "
                        "for the server and for every worker")
    return problems


def key_fingerprint() -> str | None:
    """The master key in this process's environment, by its hash (run on
    each worker at start-up; the key itself never crosses the network)."""
    key = os.environ.get(MASTER_KEY_ENV)
    return hashlib.sha256(key.encode()).hexdigest() if key else None


def run_on_worker(settings: Settings, job: JobRef) -> str:
    """`run_job` on a Dask worker: its scratch space is the worker's own
    local directory, not the server's data dir, which the worker may not have."""
    from distributed import get_worker

    if not os.environ.get(MASTER_KEY_ENV):
        raise ClusterMisconfigured(f"this Dask worker has no {MASTER_KEY_ENV}: start it with the server's master key")
    worker = get_worker()
    local = Path(worker.local_directory) / "treadle"
    # The artifact folder stays the server's (mounted at the same path on
    # every worker, --shared-artifacts), even where it is the data dir's default.
    return run_job(dataclasses.replace(settings, data_dir=local, artifacts_url=settings.effective_artifacts_url), job,
                   where=f"Dask worker {worker.name} ({worker.address})",
                   parts=DaskParts(job.kind, job.entity_id, job.attempt))


class DaskJobRunner(LocalJobRunner):
    name = "dask"

    def __init__(self, services, on_finished=None):
        super().__init__(services, on_finished)
        self.scheduler = self.settings.dask_scheduler
        self._capacity, self._capacity_at = 0, 0.0

    def _new_executor(self):
        from distributed import Client

        client = Client(self.scheduler, timeout=30, set_as_default=False)
        self._check_workers(client)
        return client

    def _check_workers(self, client) -> None:
        mine = key_fingerprint()
        theirs = client.run(key_fingerprint)
        wrong = sorted(address for address, fingerprint in theirs.items() if fingerprint != mine)
        if wrong:
            client.close()
            raise ClusterMisconfigured(
                f"Dask workers {', '.join(wrong)} do not have this server's {MASTER_KEY_ENV}: start every worker "
                "with the same master key")
        if not theirs:
            log.warning("the Dask cluster at %s has no workers yet: jobs wait for them", self.scheduler)

    def capacity(self) -> int:
        """Jobs at once: --jobs, else the cluster's threads, as it grows and shrinks."""
        if self.settings.job_concurrency:
            return self.settings.job_concurrency
        if time.monotonic() - self._capacity_at > CAPACITY_SECONDS:
            self._capacity = sum(self._executor.nthreads().values())
            self._capacity_at = time.monotonic()
        return self._capacity

    def _start(self, job: JobRef):
        key = f"treadle-{job.kind}-{job.entity_id}-attempt{job.attempt}-{uuid.uuid4().hex[:8]}"
        return self._executor.submit(run_on_worker, self.settings, job, key=key, pure=False)

    def _shut_down(self, client) -> None:
        # The jobs are handed back to the queue; their tasks are not needed.
        client.cancel(list(self._running))
        client.close()

    def _lost(self, error: BaseException) -> str:
        if isinstance(error, (ClusterMisconfigured, WorkLost)):
            return str(error)
        return f"the Dask cluster could not run this job ({type(error).__name__}: {error})"
