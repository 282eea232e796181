"""Real-time endpoints: mounting a model where Predict is served, and the
fast scoring path.

`Serving` is the narrow interface the API layer uses. The in-process
implementation keeps each mounted model in memory with the entity fields
Predict needs, so a request costs no database or storage round trip; a
cached entry is re-read after a short time so that changes made through
another server sharing the database (a new ScoreThreshold, a deleted
endpoint) reach this one too. Changes made through this server apply to
the very next request.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Protocol

from ..protocol import errors
from ..store.entities import EntityStore

MAX_RECORD_BYTES = 100 * 1024
REFRESH_SECONDS = 2.0


class Serving(Protocol):
    def mount(self, account: str, model_id: str) -> dict: ...
    def invalidate(self, account: str, model_id: str) -> None: ...
    def predict_cached(self, account: str, model_id: str, record: dict) -> dict | None: ...
    def predict(self, account: str, entity, record: dict) -> dict: ...
    def loaded_count(self) -> int: ...


class RateLimiter:
    """At most `limit` requests in any one-second window (per endpoint)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.window = 0
        self.count = 0
        self.lock = threading.Lock()

    def allow(self) -> bool:
        now = int(time.monotonic())
        with self.lock:
            if now != self.window:
                self.window, self.count = now, 0
            if self.count >= self.limit:
                return False
            self.count += 1
            return True


@dataclass
class Mounted:
    model: object  # MLModelArtifact
    model_type: str
    threshold: float
    limiter: RateLimiter
    checked: float  # monotonic time the entity was last read; -inf: changed here
    refreshing: bool = False


def record_size(record: dict) -> int:
    # As the record would be one CSV line: values plus separators.
    return sum(len(v.encode()) + 1 for v in record.values())


def check_record(record: dict) -> None:
    if record_size(record) > MAX_RECORD_BYTES:
        raise errors.InvalidInputException("Record is larger than 100 KB")


def _response(mounted: Mounted, record: dict) -> dict:
    prediction = mounted.model.predict_record(record, mounted.threshold)
    details = {"PredictiveModelType": mounted.model_type, "Algorithm": "SGD"}
    if mounted.model_type == "REGRESSION":
        return {"Prediction": {"predictedValue": prediction.score, "details": details}}
    if mounted.model_type == "BINARY":
        # Amazon ML returns one entry, keyed by the predicted label, whose
        # value is the probability of class "1".
        return {"Prediction": {"predictedLabel": prediction.label,
                               "predictedScores": {prediction.label: prediction.score}, "details": details}}
    return {"Prediction": {"predictedLabel": prediction.label, "predictedScores": prediction.scores,
                           "details": details}}


class LocalServing:
    def __init__(self, entities: EntityStore, load_model: Callable, peak_rps: int):
        self.entities = entities
        self._load_model = load_model
        self.peak_rps = peak_rps
        self._mounted: dict[tuple[str, str], Mounted] = {}
        self._lock = threading.Lock()
        # One thread re-reads entities that aged out, so requests keep being
        # answered from memory meanwhile instead of all hitting the database.
        self._refresher = ThreadPoolExecutor(1, thread_name_prefix="treadle-endpoint-refresh")

    # -- endpoint lifecycle --------------------------------------------------
    def mount(self, account: str, model_id: str) -> dict:
        """Load a COMPLETED model and mark its endpoint READY (FAILED if it
        cannot be served); a model still training leaves it UPDATING."""
        entity = self.entities.get(account, "MLModel", model_id)
        info = dict(entity.document["EndpointInfo"])
        if info.get("EndpointStatus") not in ("UPDATING", "READY"):
            return info
        if entity.status in ("FAILED", "DELETED"):
            info["EndpointStatus"] = "FAILED"
            self.entities.update(account, "MLModel", model_id, {"EndpointInfo": info})
            return info
        if entity.status != "COMPLETED":
            return info
        try:
            self._load(account, entity)
        except Exception as error:
            info["EndpointStatus"] = "FAILED"
            self.entities.update(account, "MLModel", model_id,
                                 {"EndpointInfo": info, "Message": f"The endpoint could not load the model: {error}"})
            return info
        info["EndpointStatus"] = "READY"
        self.entities.update(account, "MLModel", model_id, {"EndpointInfo": info})
        return info

    def _load(self, account: str, entity) -> Mounted:
        doc = entity.document
        mounted = Mounted(self._load_model(account, entity), doc["MLModelType"],
                          float(doc.get("ScoreThreshold", 0.5)),
                          RateLimiter(int(doc["EndpointInfo"].get("PeakRequestsPerSecond") or self.peak_rps)),
                          time.monotonic())
        with self._lock:
            previous = self._mounted.get((account, entity.entity_id))
            if previous is not None:
                mounted.limiter = previous.limiter  # keep the rate window across reloads
            self._mounted[(account, entity.entity_id)] = mounted
        return mounted

    def invalidate(self, account: str, model_id: str) -> None:
        """The entity changed: the next Predict re-reads it (and keeps the
        loaded model unless the endpoint is gone)."""
        mounted = self._mounted.get((account, model_id))
        if mounted is not None:
            mounted.checked = float("-inf")

    def _drop(self, account: str, model_id: str) -> None:
        with self._lock:
            self._mounted.pop((account, model_id), None)

    def loaded_count(self) -> int:
        return len(self._mounted)

    # -- Predict -------------------------------------------------------------
    def predict_cached(self, account: str, model_id: str, record: dict) -> dict | None:
        """The fast path: None when the model is not (freshly) in memory."""
        mounted = self._mounted.get((account, model_id))
        if mounted is None or mounted.checked == float("-inf"):
            return None  # not loaded, or changed through this server: read it now
        if time.monotonic() - mounted.checked > REFRESH_SECONDS and not mounted.refreshing:
            mounted.refreshing = True
            self._refresher.submit(self._refresh, account, model_id, mounted)
        check_record(record)
        if not mounted.limiter.allow():
            raise errors.LimitExceededException(
                f"More than {mounted.limiter.limit} requests per second for MLModel {model_id}'s endpoint")
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
            if mounted.checked != float("-inf"):
                mounted.checked = time.monotonic()
        finally:
            mounted.refreshing = False

    def predict(self, account: str, entity, record: dict) -> dict:
        """The slow path, after the API layer read the entity: (re)load the
        model if needed, then score."""
        check_record(record)
        info = entity.document.get("EndpointInfo") or {}
        if entity.status != "COMPLETED" or info.get("EndpointStatus") != "READY":
            self._drop(account, entity.entity_id)
            raise errors.PredictorNotMountedException(
                f"No real-time endpoint is READY for MLModel {entity.entity_id}")
        mounted = self._mounted.get((account, entity.entity_id))
        threshold = float(entity.document.get("ScoreThreshold", 0.5))
        if mounted is None:
            mounted = self._load(account, entity)
        else:
            mounted.threshold, mounted.checked = threshold, time.monotonic()
        if not mounted.limiter.allow():
            raise errors.LimitExceededException(
                f"More than {mounted.limiter.limit} requests per second for MLModel {entity.entity_id}'s endpoint")
        return _response(mounted, record)
