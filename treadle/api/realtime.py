"""CreateRealtimeEndpoint, DeleteRealtimeEndpoint and Predict."""
from __future__ import annotations

from ..store.entities import now
from .common import require, require_live
from .services import Call
from .mlmodels import NO_ENDPOINT

KIND = "MLModel"


def create_endpoint(call: Call, params: dict) -> dict:
    model_id = params["MLModelId"]
    settings = call.services.settings
    with call.entities.engine.begin() as conn:
        entity = require_live(call, KIND, model_id, conn)
        info = dict(entity.document.get("EndpointInfo") or NO_ENDPOINT)
        if info["EndpointStatus"] in ("READY", "UPDATING"):
            return {"MLModelId": model_id, "RealtimeEndpointInfo": info}
        info = {
            "EndpointStatus": "UPDATING",
            "EndpointUrl": settings.effective_public_url,
            "PeakRequestsPerSecond": settings.peak_requests_per_second,
            "CreatedAt": now(),
        }
        call.entities.update(call.account, KIND, model_id, {"EndpointInfo": info}, conn)
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
