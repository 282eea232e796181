"""The `machinelearning` service model, loaded from botocore at run time.

botocore's model is the authority on operations, shapes, enums, lengths and
patterns; nothing here retypes it.
"""
from __future__ import annotations

import functools

import botocore.session
from botocore.model import OperationModel, ServiceModel

SERVICE_NAME = "machinelearning"


@functools.cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model(SERVICE_NAME)


@functools.cache
def target_prefix() -> str:
    return service_model().metadata["targetPrefix"]


def operation_names() -> list[str]:
    return list(service_model().operation_names)


@functools.cache
def operation_model(name: str) -> OperationModel:
    return service_model().operation_model(name)
