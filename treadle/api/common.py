"""Pieces shared by the entity operations: creation with idempotency,
lookup, rendering through the service model, tag propagation."""
from __future__ import annotations

import functools
import hashlib
import json

from ..protocol import errors
from ..protocol.service_model import service_model
from ..store.entities import ID_FIELD, Entity, now
from .services import Call

MAX_TAGS = 50


def request_fingerprint(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def base_document(call: Call, kind: str, entity_id: str, name: str | None) -> dict:
    stamp = now()
    doc = {
        ID_FIELD[kind]: entity_id,
        "CreatedByIamUser": call.principal.arn,
        "CreatedAt": stamp,
        "LastUpdatedAt": stamp,
        "Status": "PENDING",
    }
    if name is not None:
        doc["Name"] = name
    return doc


def create_entity(call: Call, kind: str, entity_id: str, params: dict, doc: dict,
                  inherit_tags_from: list[tuple[str, str]] = (), job: bool = True) -> dict:
    """Insert a new entity and queue its job, or accept an identical retry.

    Idempotency follows the service: the same ID with the same parameters
    returns the ID again; with different parameters it is an
    IdempotentParameterMismatchException.
    """
    fingerprint = request_fingerprint(params)
    doc["_fingerprint"] = fingerprint
    store = call.entities
    with store.engine.begin() as conn:
        existing = store.get(call.account, kind, entity_id, conn)
        if existing is not None:
            if existing.document.get("_fingerprint") != fingerprint:
                raise errors.IdempotentParameterMismatchException(
                    f"{ID_FIELD[kind]} {entity_id} already exists with different parameters")
            return {ID_FIELD[kind]: entity_id}
        store.insert(conn, call.account, kind, entity_id, doc)
        inherited: dict[str, str | None] = {}
        # Farther sources first, so the nearer object's tags win (docs/behaviour.md, "Tags").
        for source_kind, source_id in inherit_tags_from:
            inherited.update(dict(store.tags(call.account, source_kind, source_id, conn)))
        if inherited:
            store.set_tags(conn, call.account, kind, entity_id, inherited)
        if job:
            store.enqueue(conn, call.account, kind, entity_id)
    call.services.wake_jobs()
    return {ID_FIELD[kind]: entity_id}


def create_from_model(call: Call, kind: str, entity_id: str, params: dict, name: str | None,
                      datasource_member: str, extra: dict | None = None) -> dict:
    """Evaluations and batch predictions: a model applied to a datasource.
    They inherit both inputs' tags, the model's winning on conflict."""
    if call.entities.get(call.account, kind, entity_id) is not None:
        return create_entity(call, kind, entity_id, params, {})
    model = require_input(call, "MLModel", params["MLModelId"], "MLModelId")
    datasource = require_input(call, "DataSource", params[datasource_member], datasource_member)
    doc = base_document(call, kind, entity_id, name)
    doc.update({"MLModelId": model.entity_id, datasource_member: datasource.entity_id, **(extra or {})})
    if datasource.document.get("DataLocationS3"):
        doc["InputDataLocationS3"] = datasource.document["DataLocationS3"]
    return create_entity(call, kind, entity_id, params, doc,
                         inherit_tags_from=[("DataSource", datasource.entity_id), ("MLModel", model.entity_id)])


def require(call: Call, kind: str, entity_id: str, conn=None) -> Entity:
    """The entity, or ResourceNotFoundException. With `conn`, its row stays
    locked until that transaction ends, so a decision made on it still
    holds when the transaction writes (no Delete can commit in between)."""
    entity = call.entities.get(call.account, kind, entity_id, conn, lock=conn is not None)
    if entity is None:
        raise errors.ResourceNotFoundException(f"No {kind} exists with ID {entity_id}")
    return entity


def require_input(call: Call, kind: str, entity_id: str, member: str) -> Entity:
    """An entity named as an input of a Create call: absent or deleted is bad input."""
    entity = call.entities.get(call.account, kind, entity_id)
    if entity is None:
        raise errors.InvalidInputException(f"{member}: no {kind} exists with ID {entity_id}")
    if entity.status == "DELETED":
        raise errors.InvalidInputException(f"{member}: {kind} {entity_id} is DELETED")
    return entity


def require_live(call: Call, kind: str, entity_id: str, conn=None) -> Entity:
    entity = require(call, kind, entity_id, conn)
    if entity.status == "DELETED":
        raise errors.InvalidInputException(f"{kind} {entity_id} is DELETED and cannot be changed")
    return entity


@functools.cache
def _member_names(shape_name: str) -> tuple[str, ...]:
    # botocore builds a new shape, and its members, on every shape_for.
    return tuple(service_model().shape_for(shape_name).members)


def render(shape_name: str, doc: dict) -> dict:
    """The document's members that the named output shape declares, in the
    shape's order; private and absent fields are left out."""
    return {name: doc[name] for name in _member_names(shape_name) if doc.get(name) is not None}


def log_uri(call: Call, kind: str, entity_id: str) -> str:
    import time
    from urllib.parse import quote

    expires = int(time.time()) + call.services.settings.log_link_seconds
    path = f"/logs/{call.account}/{kind}/{quote(entity_id)}"
    signature = call.services.master_key.sign(f"{path}\n{expires}")
    return f"{call.services.settings.effective_public_url}{path}?Expires={expires}&Signature={signature}"


def with_log(call: Call, kind: str, entity: Entity, shape: str) -> dict:
    doc = dict(entity.document)
    if doc.get("StartedAt") is not None or doc["Status"] in ("COMPLETED", "FAILED"):
        doc["LogUri"] = log_uri(call, kind, entity.entity_id)
    return render(shape, doc)


def delete_entity(call: Call, kind: str, entity_id: str) -> dict:
    require(call, kind, entity_id)
    call.entities.update(call.account, kind, entity_id, {"Status": "DELETED"})
    return {ID_FIELD[kind]: entity_id}


def rename(call: Call, kind: str, entity_id: str, name: str) -> dict:
    with call.entities.engine.begin() as conn:
        require_live(call, kind, entity_id, conn)
        call.entities.update(call.account, kind, entity_id, {"Name": name}, conn)
    return {ID_FIELD[kind]: entity_id}
