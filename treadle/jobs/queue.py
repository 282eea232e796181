"""The durable job queue kept with the metadata.

Claiming is an UPDATE guarded by the job's state, so several servers sharing
one PostgreSQL database never run the same job twice; leases that stop being
renewed (a crashed server) send the job back to the queue.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..store.entities import EntityStore, mark_failed, now
from ..store.tables import jobs


@dataclass(frozen=True)
class JobRef:
    pk: int
    account: str
    kind: str
    entity_id: str
    attempt: int


def dependencies(kind: str, doc: dict) -> list[tuple[str, str, str]]:
    """(kind, id, role) of the entities a job must wait for."""
    if kind == "MLModel":
        return [("DataSource", doc["TrainingDataSourceId"], "training datasource")]
    if kind == "Evaluation":
        return [("MLModel", doc["MLModelId"], "MLModel"),
                ("DataSource", doc["EvaluationDataSourceId"], "evaluation datasource")]
    if kind == "BatchPrediction":
        return [("MLModel", doc["MLModelId"], "MLModel"),
                ("DataSource", doc["BatchPredictionDataSourceId"], "batch prediction datasource")]
    return []


class JobQueue:
    def __init__(self, entities: EntityStore, max_attempts: int = 3):
        self.entities = entities
        self.engine = entities.engine
        self.max_attempts = max_attempts

    def claim(self, owner: str, limit: int, lease_seconds: float) -> list[JobRef]:
        """Start up to `limit` queued jobs whose inputs are ready; fail those
        whose inputs failed."""
        claimed: list[JobRef] = []
        with self.engine.begin() as conn:
            queued = conn.execute(sa.select(jobs).where(jobs.c.state == "queued").order_by(jobs.c.pk)).all()
            for job in queued:
                if len(claimed) >= limit:
                    break
                # Locked: a DeleteX committed between this read and the
                # update below would otherwise be overwritten by INPROGRESS.
                entity = self.entities.get(job.account, job.kind, job.entity_id, conn, lock=True)
                if entity is None or entity.status in ("DELETED", "FAILED", "COMPLETED"):
                    self._done(conn, job.pk)
                    continue
                verdict = self._inputs(conn, job.account, job.kind, entity.document)
                if verdict == "wait":
                    continue
                if verdict is not None:  # an input failed: so does this job
                    self._done(conn, job.pk)
                    self.entities.update(job.account, job.kind, job.entity_id,
                                         lambda doc: mark_failed(doc, verdict), conn)
                    continue
                taken = conn.execute(jobs.update().where(jobs.c.pk == job.pk, jobs.c.state == "queued").values(
                    state="running", owner=owner, attempts=job.attempts + 1,
                    lease_expires=now() + lease_seconds))
                if taken.rowcount != 1:
                    continue  # another server took it
                stamp = now()
                self.entities.update(job.account, job.kind, job.entity_id, {
                    "Status": "INPROGRESS", "StartedAt": stamp, "Message": None}, conn)
                claimed.append(JobRef(job.pk, job.account, job.kind, job.entity_id, job.attempts + 1))
        return claimed

    def _inputs(self, conn, account: str, kind: str, doc: dict) -> str | None:
        waiting = False
        for dep_kind, dep_id, role in dependencies(kind, doc):
            dep = self.entities.get(account, dep_kind, dep_id, conn)
            if dep is None or dep.status == "DELETED":
                return f"The {role} {dep_id} was deleted before this job could run"
            if dep.status == "FAILED":
                reason = dep.document.get("Message", "no reason given")
                return f"The {role} {dep_id} FAILED: {reason}"
            if dep.status != "COMPLETED":
                waiting = True
        return "wait" if waiting else None

    def _done(self, conn, pk: int) -> None:
        conn.execute(jobs.update().where(jobs.c.pk == pk).values(state="done", owner=None, lease_expires=None))

    def finish(self, pk: int, conn=None) -> None:
        if conn is None:
            with self.engine.begin() as c:
                self._done(c, pk)
        else:
            self._done(conn, pk)

    def renew(self, owner: str, pks: list[int], lease_seconds: float) -> None:
        if not pks:
            return
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.pk.in_(pks), jobs.c.owner == owner,
                                             jobs.c.state == "running")
                         .values(lease_expires=now() + lease_seconds))

    def requeue(self, job: JobRef, reason: str) -> None:
        """A job whose worker vanished: run it again, or fail it once it has
        been tried max_attempts times. Never leave it INPROGRESS."""
        with self.engine.begin() as conn:
            self._retry_or_fail(conn, job.pk, job.account, job.kind, job.entity_id, job.attempt, reason)

    def _retry_or_fail(self, conn, pk, account, kind, entity_id, attempts, reason) -> None:
        # The entity row first, then the job's, in run_job's order. A job
        # whose worker committed its result after this job was picked as
        # lost (its state is no longer "running") is left as it finished.
        entity = self.entities.get(account, kind, entity_id, conn, lock=True)
        if entity is None or entity.status in ("DELETED", "COMPLETED", "FAILED"):
            self._done(conn, pk)
            return
        retry = attempts < self.max_attempts
        taken = conn.execute(jobs.update().where(jobs.c.pk == pk, jobs.c.state == "running").values(
            state="queued" if retry else "done", owner=None, lease_expires=None))
        if taken.rowcount != 1:
            return
        if retry:
            self.entities.update(account, kind, entity_id, {
                "Status": "PENDING", "StartedAt": None, "Message": f"{reason}; the job was queued again"}, conn)
        else:
            message = f"{reason}; the job was tried {attempts} times and will not be retried"
            self.entities.update(account, kind, entity_id, lambda doc: mark_failed(doc, message), conn)

    def recover_expired(self) -> int:
        """Jobs whose lease ran out (their server stopped): retry or fail."""
        with self.engine.begin() as conn:
            expired = conn.execute(sa.select(jobs).where(
                jobs.c.state == "running", jobs.c.lease_expires < now())).all()
            for job in expired:
                self._retry_or_fail(conn, job.pk, job.account, job.kind, job.entity_id, job.attempts,
                                    "Treadle stopped while this job was running")
        return len(expired)

    def release_owned(self, owner: str, reason: str) -> None:
        """On a clean shutdown, hand this server's running jobs back at once."""
        with self.engine.begin() as conn:
            mine = conn.execute(sa.select(jobs).where(jobs.c.state == "running", jobs.c.owner == owner)).all()
            for job in mine:
                # A clean stop is not the job's fault: it does not use up a try.
                conn.execute(jobs.update().where(jobs.c.pk == job.pk).values(attempts=job.attempts - 1))
                self._retry_or_fail(conn, job.pk, job.account, job.kind, job.entity_id, job.attempts - 1, reason)
