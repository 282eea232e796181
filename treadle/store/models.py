"""Trained models in the artifact store.

A model is saved with its SHA-256 in the MLModel's metadata, so a model
whose artifact went missing or was damaged at rest is recognised for what it
is, and the MLModel says so, instead of failing its evaluations, batch
predictions and endpoint with errors about files.
"""
from __future__ import annotations

import hashlib

from ..learning import MLModelArtifact
from .artifacts import ArtifactStore
from .entities import Entity, EntityStore, mark_failed


class ModelUnavailable(Exception):
    """The trained model cannot be used; the text says why, without naming
    where the artifact store keeps it."""


def model_key(account: str, model_id: str) -> str:
    return f"models/{account}/{model_id}.model"


def save_model(artifacts: ArtifactStore, account: str, model_id: str, model: MLModelArtifact) -> dict:
    """Store the model; the fields its MLModel document keeps about it."""
    blob = model.to_bytes()
    key = model_key(account, model_id)
    artifacts.put(key, blob)
    return {"SizeInBytes": len(blob), "_model": key, "_model_sha256": hashlib.sha256(blob).hexdigest()}


def load_model(artifacts: ArtifactStore, entity: Entity) -> MLModelArtifact:
    doc, model_id = entity.document, entity.entity_id
    key = doc.get("_model")
    if not key:
        raise ModelUnavailable(f"MLModel {model_id} has no trained model")
    try:
        blob = artifacts.get(key)
    except FileNotFoundError:
        raise ModelUnavailable(f"the trained model of MLModel {model_id} is missing from the artifact store")
    expected = doc.get("_model_sha256")
    if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
        raise ModelUnavailable(f"the trained model of MLModel {model_id} is corrupt: its checksum does not match "
                               "the one recorded when it was trained")
    if expected is not None:
        # Its bytes are the ones saved: a failure to read them is this
        # server's, not the model's, and must not fail the model for good.
        return MLModelArtifact.from_bytes(blob)
    try:
        return MLModelArtifact.from_bytes(blob)
    except Exception:  # no checksum to tell damage from a bug: unreadable bytes are damage
        raise ModelUnavailable(f"the trained model of MLModel {model_id} is corrupt: it cannot be read")


def fail_model(entities: EntityStore, account: str, model_id: str, reason: str) -> None:
    """A COMPLETED model whose artifact is unusable is FAILED, with its
    endpoint: it can no longer predict, and GetMLModel should say why."""
    message = f"{reason[:1].upper()}{reason[1:]}; train a new MLModel to replace it"

    def change(doc: dict) -> None:
        if doc["Status"] != "DELETED":
            mark_failed(doc, message, endpoint_states=("UPDATING", "READY"))
    entities.update(account, "MLModel", model_id, change)
