"""Runs one job to its end: the function is called where the runner put it
(a local worker process, later a Dask worker) and records the outcome in the
metadata store itself, so the runner only has to start it."""
from __future__ import annotations

import functools
import logging
import time
import traceback
import uuid

from .. import disk
from ..config import Settings
from ..data.locations import LocationError
from ..data.records import TooManyRejections
from ..store import db
from ..store.artifacts import ArtifactStore, open_artifacts
from ..store.entities import EntityStore, mark_failed, now
from ..store.job_logs import append_log, log_key
from ..store.secrets import MasterKey
from .context import DEFAULTS, JobContext, JobFailed, WorkLost
from .kinds import JOB_FUNCTIONS
from .queue import JobQueue, JobRef

log = logging.getLogger("treadle.jobs")


@functools.cache
def _stores(database_url: str, artifacts_url: str, data_dir):
    # One engine and store per worker process, reused by every job it runs.
    engine = db.create_engine(database_url)
    return EntityStore(engine), open_artifacts(artifacts_url), MasterKey.load(data_dir)


def stores_for(settings: Settings) -> tuple[EntityStore, ArtifactStore, MasterKey]:
    """This process's metadata and artifact stores and master key."""
    return _stores(settings.effective_database_url, settings.effective_artifacts_url, settings.data_dir)


def run_job(settings: Settings, job: JobRef, stores: tuple[EntityStore, ArtifactStore, MasterKey] | None = None,
            where: str | None = None, parts=None) -> str:
    """`stores`: the metadata and artifact stores and master key to use; by
    default the process's own, opened from `settings`. `where`: what runs
    the job (a Dask worker), for its log. `parts`: what runs the job's
    parts on a cluster (`parts.DaskParts`); without it the job reads in one piece."""
    entities, artifacts, master_key = stores or stores_for(settings)
    entity = entities.get(job.account, job.kind, job.entity_id)
    if entity is None:
        JobQueue(entities).finish(job.pk)
        return "gone"
    ctx = JobContext(settings, entities, artifacts, master_key, entity, parts=parts)
    ctx.log(f"{job.kind} {job.entity_id}: job started (attempt {job.attempt})" + (f" on {where}" if where else ""))
    cpu_started = time.process_time()
    fields: dict = {}
    try:
        fields = dict(JOB_FUNCTIONS[job.kind](ctx) or {})
        status, message = "COMPLETED", None
    except (JobFailed, LocationError, TooManyRejections) as failure:  # the data's fault: its Message says how
        status, message = "FAILED", str(failure)
    except WorkLost as lost:
        ctx.log(f"{lost}: the job is run again")
        raise
    except Exception as error:
        full = disk.full_disk(error)
        if full:
            # A full disk fails the job rather than retrying it: space
            # seldom comes back by itself within a job's few attempts, each
            # attempt would redo the work that filled the disk, and the
            # object would wait PENDING meanwhile with nothing said. Failing
            # says why at once. The error's own text would name server paths.
            status, message = "FAILED", f"The disk holding this server's working files is full ({full})"
        else:
            # A bug, not bad input. The details (a traceback, server paths)
            # go to the server's log only: the object's log and Message are
            # the user's, and name just the reference to look it up by.
            reference = uuid.uuid4().hex[:12]
            log.error("job %s %s of account %s failed (reference %s):\n%s", job.kind, job.entity_id, job.account,
                      reference, traceback.format_exc())
            ctx.log(f"internal error (reference {reference})")
            status, message = "FAILED", (f"Internal error while processing this {job.kind} (reference "
                                         f"{reference}; the server's log has the details)")
    compute_ms = int(round((time.process_time() - cpu_started) * 1000))
    ctx.log(f"job finished: {status}" + (f": {message}" if message else "") + f" (compute time {compute_ms} ms)")
    try:
        append_log(artifacts, log_key(job.account, job.kind, job.entity_id), job.attempt, ctx.lines)
    except Exception:
        # The outcome is recorded all the same: a job whose outcome is lost
        # would be run again, and fail to write its log again.
        log.exception("could not write the log of %s %s", job.kind, job.entity_id)

    defaults = fields.pop(DEFAULTS, {})

    def record(doc: dict) -> None:
        # `doc` is the current document, read under the row lock: changes
        # made while the job ran (a delete, a new ScoreThreshold) are kept.
        doc.update({k: v for k, v in fields.items() if v is not None})
        doc["FinishedAt"] = now()
        if doc["Status"] == "DELETED":
            return  # deleted while running: the result is kept, the status stays
        if status == "COMPLETED":
            doc.update(Status=status, ComputeTime=compute_ms)
            doc.pop("Message", None)
            for key, value in defaults.items():
                doc.setdefault(key, value)
        else:
            mark_failed(doc, message)

    with entities.engine.begin() as conn:
        entities.update(job.account, job.kind, job.entity_id, record, conn)
        JobQueue(entities).finish(job.pk, conn)
    return status
