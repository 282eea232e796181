"""Real-time endpoints: mounting a model where Predict is served.

`Serving` is the narrow interface the API layer uses; the in-process
implementation below keeps loaded models in memory.
"""
from __future__ import annotations

import threading
from typing import Protocol

from ..protocol import errors
from ..store.entities import EntityStore


class Serving(Protocol):
    def mount(self, account: str, model_id: str) -> dict: ...
    def forget(self, account: str, model_id: str) -> None: ...
    def predict(self, account: str, entity, record: dict) -> dict: ...


class LocalServing:
    def __init__(self, entities: EntityStore, load_model):
        self.entities = entities
        self._load_model = load_model
        self._models: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def mount(self, account: str, model_id: str) -> dict:
        entity = self.entities.get(account, "MLModel", model_id)
        info = dict(entity.document["EndpointInfo"])
        if entity.status != "COMPLETED":
            # The endpoint waits for training; the job system mounts it when
            # the model completes (or marks it FAILED with the model).
            return info
        try:
            model = self._load_model(account, entity)
        except Exception as error:  # the model artifact could not be served
            info["EndpointStatus"] = "FAILED"
            self.entities.update(account, "MLModel", model_id,
                                 {"EndpointInfo": info, "Message": f"Endpoint failed: {error}"})
            return info
        with self._lock:
            self._models[(account, model_id)] = model
        info["EndpointStatus"] = "READY"
        self.entities.update(account, "MLModel", model_id, {"EndpointInfo": info})
        return info

    def forget(self, account: str, model_id: str) -> None:
        with self._lock:
            self._models.pop((account, model_id), None)

    def loaded_count(self) -> int:
        return len(self._models)

    def predict(self, account: str, entity, record: dict) -> dict:
        raise errors.PredictorNotMountedException(
            f"MLModel {entity.entity_id} is not mounted on this server")
