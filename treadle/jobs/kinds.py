"""The work behind each entity kind. A job function takes a JobContext and
returns the fields to set on the entity when it completes."""
from __future__ import annotations

from typing import Callable

from . import batch_prediction, datasource, evaluation, training
from .context import JobContext


JOB_FUNCTIONS: dict[str, Callable[[JobContext], dict]] = {
    "DataSource": datasource.run,
    "MLModel": training.run,
    "Evaluation": evaluation.run,
    "BatchPrediction": batch_prediction.run,
}
