"""The four object kinds as the console names and reaches them."""
from __future__ import annotations

from dataclasses import dataclass


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
    describe: str

    def url(self, entity_id: str) -> str:
        from urllib.parse import quote

        return f"/console/{self.slug}/{quote(entity_id, safe='')}"


KINDS = {kind.name: kind for kind in (
    Kind("DataSource", "Datasource", "datasources", "DataSourceId", "DataSourceName",
         "GetDataSource", "UpdateDataSource", "DeleteDataSource", "DescribeDataSources"),
    Kind("MLModel", "ML model", "models", "MLModelId", "MLModelName",
         "GetMLModel", "UpdateMLModel", "DeleteMLModel", "DescribeMLModels"),
    Kind("Evaluation", "Evaluation", "evaluations", "EvaluationId", "EvaluationName",
         "GetEvaluation", "UpdateEvaluation", "DeleteEvaluation", "DescribeEvaluations"),
    Kind("BatchPrediction", "Batch prediction", "batch-predictions", "BatchPredictionId", "BatchPredictionName",
         "GetBatchPrediction", "UpdateBatchPrediction", "DeleteBatchPrediction", "DescribeBatchPredictions"),
)}
BY_SLUG = {kind.slug: kind for kind in KINDS.values()}


def enum(shape: str) -> list[str]:
    """An enum of the service model (statuses, model types, sort orders)."""
    from ..protocol.service_model import service_model

    return list(service_model().shape_for(shape).enum)
