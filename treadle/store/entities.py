"""Entity persistence: one row per DataSource, MLModel, Evaluation or
BatchPrediction, keyed by (account, kind, id).

The row's `document` holds the entity's wire fields (plus private fields whose
names start with `_`); the indexed columns are derived from the document on
every write, so they can never disagree with it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import sqlalchemy as sa

from .tables import entities, jobs, tags

KINDS = ("DataSource", "MLModel", "Evaluation", "BatchPrediction")


def _endpoint_status(doc: dict) -> str | None:
    info = doc.get("EndpointInfo")
    return info.get("EndpointStatus") if info else None


# column -> how to read it from a document, per kind
INDEXED_COLUMNS: dict[str, Callable[[str, dict], object]] = {
    "name": lambda kind, doc: doc.get("Name"),
    "status": lambda kind, doc: doc["Status"],
    "created_at": lambda kind, doc: doc["CreatedAt"],
    "updated_at": lambda kind, doc: doc["LastUpdatedAt"],
    "iam_user": lambda kind, doc: doc["CreatedByIamUser"],
    "location": lambda kind, doc: doc.get("DataLocationS3") if kind == "DataSource" else doc.get("InputDataLocationS3"),
    "datasource_id": lambda kind, doc: doc.get({
        "MLModel": "TrainingDataSourceId",
        "Evaluation": "EvaluationDataSourceId",
        "BatchPrediction": "BatchPredictionDataSourceId",
    }.get(kind, "")),
    "mlmodel_id": lambda kind, doc: doc.get("MLModelId") if kind != "MLModel" else None,
    "model_type": lambda kind, doc: doc.get("MLModelType"),
    "algorithm": lambda kind, doc: doc.get("Algorithm"),
    "endpoint_status": lambda kind, doc: _endpoint_status(doc),
}

ID_FIELD = {
    "DataSource": "DataSourceId",
    "MLModel": "MLModelId",
    "Evaluation": "EvaluationId",
    "BatchPrediction": "BatchPredictionId",
}


def now() -> float:
    """Epoch seconds with millisecond precision, as the service returns them."""
    return round(time.time(), 3)


def mark_failed(doc: dict, message: str, endpoint_states: tuple[str, ...] = ("UPDATING",)) -> None:
    """Fail an entity's document in place; an endpoint created while the
    model was training fails with it rather than waiting for ever (a READY
    one too, with `endpoint_states`, when the trained model is lost)."""
    doc.update(Status="FAILED", Message=message[:10240], FinishedAt=now())
    endpoint = doc.get("EndpointInfo")
    if endpoint and endpoint.get("EndpointStatus") in endpoint_states:
        doc["EndpointInfo"] = {**endpoint, "EndpointStatus": "FAILED"}


@dataclass
class Entity:
    account: str
    kind: str
    entity_id: str
    document: dict
    pk: int | None = None

    @property
    def status(self) -> str:
        return self.document["Status"]


def _columns(kind: str, doc: dict) -> dict:
    return {column: read(kind, doc) for column, read in INDEXED_COLUMNS.items()}


def _row_to_entity(row) -> Entity:
    return Entity(row.account, row.kind, row.entity_id, json.loads(row.document), row.pk)


UNCHANGED = object()  # returned by an update's change function: write nothing


# Built once: the most frequent query, and building a statement costs about
# as much as running it on SQLite.
_GET = sa.select(entities).where(entities.c.account == sa.bindparam("account"),
                                 entities.c.kind == sa.bindparam("kind"),
                                 entities.c.entity_id == sa.bindparam("entity_id"))
_GET_LOCKED = _GET.with_for_update()


class EntityStore:
    def __init__(self, engine: sa.Engine):
        from .db import read_only

        self.engine = engine
        self.reader = read_only(engine)

    # -- reads -------------------------------------------------------------
    def get(self, account: str, kind: str, entity_id: str, conn=None, lock: bool = False) -> Entity | None:
        """`lock` (with `conn`): hold the row until the transaction ends, so
        a decision made on its status still holds when it is written."""
        query = _GET_LOCKED if lock else _GET
        key = {"account": account, "kind": kind, "entity_id": entity_id}
        if conn is not None:
            row = conn.execute(query, key).first()
        else:
            with self.reader.connect() as c:
                row = c.execute(query, key).first()
        return _row_to_entity(row) if row else None

    def query(self, account: str, kinds: Iterable[str], where: Iterable, order_by: list, limit: int) -> list[Entity]:
        statement = (sa.select(entities)
                     .where(entities.c.account == account, entities.c.kind.in_(list(kinds)), *where)
                     .order_by(*order_by).limit(limit))
        with self.reader.connect() as c:
            return [_row_to_entity(row) for row in c.execute(statement)]

    def with_endpoint_status(self, status: str) -> list[tuple[str, str]]:
        with self.reader.connect() as c:
            rows = c.execute(sa.select(entities.c.account, entities.c.entity_id).where(
                entities.c.kind == "MLModel", entities.c.endpoint_status == status)).all()
        return [(r.account, r.entity_id) for r in rows]

    # -- writes ------------------------------------------------------------
    def insert(self, conn, account: str, kind: str, entity_id: str, doc: dict) -> Entity:
        result = conn.execute(entities.insert().values(
            account=account, kind=kind, entity_id=entity_id, document=json.dumps(doc),
            **_columns(kind, doc)))
        return Entity(account, kind, entity_id, doc, result.inserted_primary_key[0])

    def update(self, account: str, kind: str, entity_id: str,
               change: Callable[[dict], dict | None] | dict, conn=None, touch: bool = True) -> Entity:
        """Apply `change` (a dict of fields, or a function editing the
        document) under a row lock and return the new entity. A function
        decides on the current document, so a change committed by another
        process in between is seen, not overwritten; it returns UNCHANGED
        to write nothing."""
        if conn is None:
            with self.engine.begin() as c:
                return self.update(account, kind, entity_id, change, c, touch)
        row = conn.execute(
            sa.select(entities).where(entities.c.account == account, entities.c.kind == kind,
                                      entities.c.entity_id == entity_id).with_for_update()).first()
        if row is None:
            raise KeyError(entity_id)
        doc = json.loads(row.document)
        if callable(change):
            replaced = change(doc)
            if replaced is UNCHANGED:
                return _row_to_entity(row)
            if replaced is not None:
                doc = replaced
        else:
            for key, value in change.items():
                if value is None:
                    doc.pop(key, None)
                else:
                    doc[key] = value
        if touch:
            doc["LastUpdatedAt"] = max(now(), doc.get("LastUpdatedAt", 0))
        conn.execute(entities.update().where(entities.c.pk == row.pk).values(
            document=json.dumps(doc), **_columns(kind, doc)))
        return Entity(account, kind, entity_id, doc, row.pk)

    # -- tags ----------------------------------------------------------------
    def tags(self, account: str, kind: str, entity_id: str, conn=None) -> list[tuple[str, str | None]]:
        query = (sa.select(tags.c.key, tags.c.value)
                 .where(tags.c.account == account, tags.c.kind == kind, tags.c.entity_id == entity_id)
                 .order_by(tags.c.key))
        if conn is not None:
            return [tuple(r) for r in conn.execute(query)]
        with self.reader.connect() as c:
            return [tuple(r) for r in c.execute(query)]

    def set_tags(self, conn, account: str, kind: str, entity_id: str, pairs: dict[str, str | None]) -> None:
        for key, value in pairs.items():
            conn.execute(tags.delete().where(
                tags.c.account == account, tags.c.kind == kind, tags.c.entity_id == entity_id, tags.c.key == key))
            conn.execute(tags.insert().values(account=account, kind=kind, entity_id=entity_id, key=key, value=value))

    def delete_tags(self, conn, account: str, kind: str, entity_id: str, keys: list[str]) -> None:
        conn.execute(tags.delete().where(tags.c.account == account, tags.c.kind == kind,
                                         tags.c.entity_id == entity_id, tags.c.key.in_(keys)))

    # -- jobs ----------------------------------------------------------------
    def enqueue(self, conn, account: str, kind: str, entity_id: str) -> None:
        conn.execute(jobs.insert().values(account=account, kind=kind, entity_id=entity_id,
                                          state="queued", attempts=0, created_at=now()))
