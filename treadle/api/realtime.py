"""CreateRealtimeEndpoint, DeleteRealtimeEndpoint and Predict."""
from __future__ import annotations

from ..protocol import errors
from ..store.entities import UNCHANGED, now
from .common import require, require_live
from .context import Call
from .mlmodels import NO_ENDPOINT

KIND = "MLModel"


def create_endpoint(call: Call, params: dict) -> dict:
    model_id = params["MLModelId"]
    require_live(call, KIND, model_id)
    settings = call.services.settings
    started = []

    def start(doc: dict):
        # Decided under the row lock: a DeleteMLModel committed since the
        # check above must not be followed by a new endpoint.
        if doc["Status"] == "DELETED":
            raise errors.InvalidInputException(f"{KIND} {model_id} is DELETED and cannot be changed")
        if (doc.get("EndpointInfo") or NO_ENDPOINT)["EndpointStatus"] in ("READY", "UPDATING"):
            return UNCHANGED
        doc["EndpointInfo"] = {
            "EndpointStatus": "UPDATING",
            "EndpointUrl": settings.effective_public_url,
            "PeakRequestsPerSecond": settings.peak_requests_per_second,
            "CreatedAt": now(),
        }
        started.append(True)

    entity = call.entities.update(call.account, KIND, model_id, start)
    info = dict(entity.document["EndpointInfo"])
    if started:
        info = call.services.mount_endpoint(call.account, model_id)
    return {"MLModelId": model_id, "RealtimeEndpointInfo": info}


def delete_endpoint(call: Call, params: dict) -> dict:
    model_id = params["MLModelId"]
    require(call, KIND, model_id)
    call.entities.update(call.account, KIND, model_id, {"EndpointInfo": dict(NO_ENDPOINT)})
    call.services.model_changed(call.account, model_id)
    return {"MLModelId": model_id, "RealtimeEndpointInfo": dict(NO_ENDPOINT)}


def predict(call: Call, params: dict) -> dict:
    # The change counter is read before the entity, so a change landing in
    # between is seen by the next request rather than lost.
    generation = call.services.serving.generation()
    entity = require(call, KIND, params["MLModelId"])
    return call.services.serving.predict(call.account, entity, params["Record"], generation)
