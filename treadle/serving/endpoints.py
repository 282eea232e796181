"""Real-time endpoints: mounting a model where Predict is served, and the
fast scoring path.

`Serving` is the narrow interface the API layer uses. The in-process
implementation keeps each mounted model in memory with the entity fields
Predict needs, so a request costs no database or storage round trip.
Changes made through any process of this server (a new ScoreThreshold, a
deleted endpoint) apply to the very next request: they move the shared
change counter (`SharedState`), and a model whose entry predates the
counter is re-read first. A cached entry is also re-read after a short
time, so that changes made through another server sharing the database
reach this one too.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Protocol

from ..protocol import errors
from ..store.entities import UNCHANGED, EntityStore
from ..store.models import ModelUnavailable, fail_model
from .shared import SharedState, endpoint_key

log = logging.getLogger("treadle.serving")
MAX_RECORD_BYTES = 100 * 1024
REFRESH_SECONDS = 2.0


class Serving(Protocol):
    def mount(self, account: str, model_id: str) -> dict: ...
    def mount_waiting(self, job=None) -> None: ...
    def invalidate(self, account: str, model_id: str) -> None: ...
    def generation(self) -> int: ...
    def predict_cached(self, account: str, model_id: str, record: dict) -> dict | None: ...
    def predict(self, account: str, entity, record: dict, generation: int) -> dict: ...
    def close(self) -> None: ...


@dataclass
class Mounted:
    model: object  # MLModelArtifact
    threshold: float
    key: int  # the endpoint's key in the shared request counts
    limit: int  # PeakRequestsPerSecond
    generation: int  # the change counter when the entity was read
    checked: float  # monotonic time the entity was last read
    refreshing: bool = False


def record_size(record: dict) -> int:
    # As the record would be one CSV line: values plus separators.
    return sum(len(v.encode()) + 1 for v in record.values())


def check_record(record: dict) -> None:
    if record_size(record) > MAX_RECORD_BYTES:
        raise errors.InvalidInputException("Record is larger than 100 KB")


def _response(mounted: Mounted, record: dict) -> dict:
    model_type = mounted.model.type
    prediction = mounted.model.predict_record(record, mounted.threshold)
    details = {"PredictiveModelType": model_type.name, "Algorithm": "SGD"}
    return {"Prediction": model_type.response(prediction, details)}


class LocalServing:
    def __init__(self, entities: EntityStore, load_model: Callable, peak_rps: int,
                 shared: SharedState | None = None, on_loaded: Callable[[int], None] = lambda count: None):
        self.entities = entities
        self._load_model = load_model
        self.peak_rps = peak_rps
        self.shared = shared or SharedState()
        self.on_loaded = on_loaded  # called with the number of models in memory
        self._mounted: dict[tuple[str, str], Mounted] = {}
        self._lock = threading.Lock()
        # One thread re-reads entities that aged out, so requests keep being
        # answered from memory meanwhile instead of all hitting the database.
        self._refresher = ThreadPoolExecutor(1, thread_name_prefix="treadle-endpoint-refresh")

    def close(self) -> None:
        """Let the refresher's thread end (a server keeps its serving for
        its life; the in-process mock makes one per activation)."""
        self._refresher.shutdown(wait=False)

    # -- endpoint lifecycle --------------------------------------------------
    def mount(self, account: str, model_id: str) -> dict:
        """Load a COMPLETED model and mark its endpoint READY (FAILED if it
        cannot be served); a model still training leaves it UPDATING."""
        generation = self.shared.generation()
        entity = self.entities.get(account, "MLModel", model_id)
        info = dict(entity.document["EndpointInfo"])
        if info.get("EndpointStatus") not in ("UPDATING", "READY"):
            return info
        if entity.status in ("FAILED", "DELETED"):
            return self._settle(account, model_id, "FAILED")
        if entity.status != "COMPLETED":
            return info
        try:
            self._load(account, entity, generation)
        except ModelUnavailable as error:
            fail_model(self.entities, account, model_id, str(error))
            self.shared.changed()
            return dict(self.entities.get(account, "MLModel", model_id).document.get("EndpointInfo") or {})
        except Exception:
            log.exception("loading MLModel %s of account %s for its endpoint", model_id, account)
            return self._settle(account, model_id, "FAILED",
                                "The endpoint could not load the model (an internal error; the server's log has "
                                "the details)")
        info = self._settle(account, model_id, "READY")
        if info.get("EndpointStatus") != "READY":
            self._drop(account, model_id)
        return info

    def mount_waiting(self, job=None) -> None:
        """Endpoints created while their model trained are mounted when its
        job (a `JobRef`) finishes, and every waiting one without a job (at
        start-up, for a server that stopped in between)."""
        if job is not None:
            if job.kind != "MLModel":
                return
            targets = [(job.account, job.entity_id)]
        else:
            targets = self.entities.with_endpoint_status("UPDATING")
        for account, model_id in targets:
            entity = self.entities.get(account, "MLModel", model_id)
            if entity and (entity.document.get("EndpointInfo") or {}).get("EndpointStatus") == "UPDATING":
                self.mount(account, model_id)

    def _settle(self, account: str, model_id: str, status: str, message: str | None = None) -> dict:
        """Move the endpoint to `status` unless it changed while the model
        loaded: a DeleteRealtimeEndpoint or DeleteMLModel committed in the
        meantime wins, rather than being overwritten by READY."""
        def change(doc: dict):
            current = doc.get("EndpointInfo") or {}
            if current.get("EndpointStatus") not in ("UPDATING", "READY"):
                return UNCHANGED
            if status == "READY" and doc["Status"] != "COMPLETED":
                return UNCHANGED
            doc["EndpointInfo"] = {**current, "EndpointStatus": status}
            if message:
                doc["Message"] = message
        entity = self.entities.update(account, "MLModel", model_id, change)
        self.shared.changed()
        return dict(entity.document.get("EndpointInfo") or {})

    def _load(self, account: str, entity, generation: int) -> Mounted:
        doc = entity.document
        mounted = Mounted(self._load_model(account, entity), float(doc.get("ScoreThreshold", 0.5)),
                          endpoint_key(account, entity.entity_id),
                          int(doc["EndpointInfo"].get("PeakRequestsPerSecond") or self.peak_rps),
                          generation, time.monotonic())
        with self._lock:
            self._mounted[(account, entity.entity_id)] = mounted
            count = len(self._mounted)
        self.on_loaded(count)
        return mounted

    def invalidate(self, account: str, model_id: str) -> None:
        """The entity changed: every process re-reads it before its next
        Predict (and keeps the loaded model unless the endpoint is gone)."""
        self.shared.changed()

    def generation(self) -> int:
        """Read before an entity is: a change made after the read moves it."""
        return self.shared.generation()

    def _drop(self, account: str, model_id: str) -> None:
        with self._lock:
            dropped = self._mounted.pop((account, model_id), None) is not None
            count = len(self._mounted)
        if dropped:
            self.on_loaded(count)

    def _allow(self, mounted: Mounted, model_id: str) -> None:
        if not self.shared.allow(mounted.key, mounted.limit):
            raise errors.LimitExceededException(
                f"More than {mounted.limit} requests per second for MLModel {model_id}'s endpoint")

    # -- Predict -------------------------------------------------------------
    def predict_cached(self, account: str, model_id: str, record: dict) -> dict | None:
        """The fast path: None when the model is not (freshly) in memory."""
        mounted = self._mounted.get((account, model_id))
        if mounted is None or mounted.generation != self.shared.generation():
            return None  # not loaded, or something changed: read the entity now
        if time.monotonic() - mounted.checked > REFRESH_SECONDS and not mounted.refreshing:
            mounted.refreshing = True
            self._refresher.submit(self._refresh, account, model_id, mounted)
        check_record(record)
        self._allow(mounted, model_id)
        return _response(mounted, record)

    def _refresh(self, account: str, model_id: str, mounted: Mounted) -> None:
        """Pick up changes made through other servers sharing the database."""
        try:
            entity = self.entities.get(account, "MLModel", model_id)
            info = (entity.document.get("EndpointInfo") or {}) if entity else {}
            if entity is None or entity.status != "COMPLETED" or info.get("EndpointStatus") != "READY":
                self._drop(account, model_id)
                return
            mounted.threshold = float(entity.document.get("ScoreThreshold", 0.5))
            mounted.checked = time.monotonic()
        finally:
            mounted.refreshing = False

    def predict(self, account: str, entity, record: dict, generation: int) -> dict:
        """The slow path, after the API layer read the entity (`generation`:
        the change counter before that read): (re)load the model if needed,
        then score."""
        check_record(record)
        info = entity.document.get("EndpointInfo") or {}
        if entity.status != "COMPLETED" or info.get("EndpointStatus") != "READY":
            self._drop(account, entity.entity_id)
            raise errors.PredictorNotMountedException(
                f"No real-time endpoint is READY for MLModel {entity.entity_id}")
        mounted = self._mounted.get((account, entity.entity_id))
        if mounted is None:
            try:
                mounted = self._load(account, entity, generation)
            except ModelUnavailable as error:
                fail_model(self.entities, account, entity.entity_id, str(error))
                self.shared.changed()
                raise errors.PredictorNotMountedException(f"MLModel {entity.entity_id} cannot predict: {error}")
        else:
            mounted.threshold = float(entity.document.get("ScoreThreshold", 0.5))
            mounted.limit = int(info.get("PeakRequestsPerSecond") or self.peak_rps)
            mounted.generation, mounted.checked = generation, time.monotonic()
        self._allow(mounted, entity.entity_id)
        return _response(mounted, record)
