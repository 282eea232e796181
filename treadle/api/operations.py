"""Every operation of the service model, mapped to its handler."""
from __future__ import annotations

from ..protocol.service_model import operation_names
from . import batch_predictions, datasources, evaluations, mlmodels, realtime, tags
from .describe import describe

OPERATIONS = {
    "CreateDataSourceFromS3": datasources.create_from_s3,
    "CreateDataSourceFromRDS": datasources.create_from_rds,
    "CreateDataSourceFromRedshift": datasources.create_from_redshift,
    "GetDataSource": datasources.get,
    "UpdateDataSource": datasources.update,
    "DeleteDataSource": datasources.delete,
    "DescribeDataSources": lambda call, p: describe(call, "DataSource", p, datasources.describe_entry),
    "CreateMLModel": mlmodels.create,
    "GetMLModel": mlmodels.get,
    "UpdateMLModel": mlmodels.update,
    "DeleteMLModel": mlmodels.delete,
    "DescribeMLModels": lambda call, p: describe(call, "MLModel", p, mlmodels.describe_entry),
    "CreateEvaluation": evaluations.create,
    "GetEvaluation": evaluations.get,
    "UpdateEvaluation": evaluations.update,
    "DeleteEvaluation": evaluations.delete,
    "DescribeEvaluations": lambda call, p: describe(call, "Evaluation", p, evaluations.describe_entry),
    "CreateBatchPrediction": batch_predictions.create,
    "GetBatchPrediction": batch_predictions.get,
    "UpdateBatchPrediction": batch_predictions.update,
    "DeleteBatchPrediction": batch_predictions.delete,
    "DescribeBatchPredictions": lambda call, p: describe(call, "BatchPrediction", p, batch_predictions.describe_entry),
    "AddTags": tags.add,
    "DescribeTags": tags.describe,
    "DeleteTags": tags.delete,
    "CreateRealtimeEndpoint": realtime.create_endpoint,
    "DeleteRealtimeEndpoint": realtime.delete_endpoint,
    "Predict": realtime.predict,
}

_missing = set(operation_names()) ^ set(OPERATIONS)
if _missing:  # the service model is the authority; fail loudly on drift
    raise RuntimeError(f"operations and service model disagree: {sorted(_missing)}")
