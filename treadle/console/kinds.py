"""The four object kinds as the console names and reaches them."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Kind:
    name: str  # the API's kind (ResourceType)
    label: str  # for people
    slug: str  # in console URLs
    id_member: str
    name_member: str  # the Update* member that renames
    get: str
    update: str
    delete: str

    def url(self, entity_id: str) -> str:
        return f"/console/{self.slug}/{quote(entity_id, safe='')}"


KINDS = {kind.name: kind for kind in (
    Kind("DataSource", "Datasource", "datasources", "DataSourceId", "DataSourceName",
         "GetDataSource", "UpdateDataSource", "DeleteDataSource"),
    Kind("MLModel", "ML model", "models", "MLModelId", "MLModelName",
         "GetMLModel", "UpdateMLModel", "DeleteMLModel"),
    Kind("Evaluation", "Evaluation", "evaluations", "EvaluationId", "EvaluationName",
         "GetEvaluation", "UpdateEvaluation", "DeleteEvaluation"),
    Kind("BatchPrediction", "Batch prediction", "batch-predictions", "BatchPredictionId", "BatchPredictionName",
         "GetBatchPrediction", "UpdateBatchPrediction", "DeleteBatchPrediction"),
)}
BY_SLUG = {kind.slug: kind for kind in KINDS.values()}


@functools.cache
def enum(shape: str) -> tuple[str, ...]:
    """An enum of the service model (statuses, model types, sort orders)."""
    from ..protocol.service_model import service_model

    return tuple(service_model().shape_for(shape).enum)
