"""The work behind each entity kind. A job function takes a JobContext and
returns the fields to set on the entity when it completes."""
from __future__ import annotations

from typing import Callable

from . import datasource
from .context import JobContext, JobFailed


def _not_built(what: str) -> Callable[[JobContext], dict]:
    def run(ctx: JobContext) -> dict:
        raise JobFailed(f"This Treadle version cannot {what} yet; the job did no work")
    return run


JOB_FUNCTIONS: dict[str, Callable[[JobContext], dict]] = {
    "DataSource": datasource.run,
    "MLModel": _not_built("train models"),
    "Evaluation": _not_built("evaluate models"),
    "BatchPrediction": _not_built("run batch predictions"),
}
