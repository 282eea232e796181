"""Service errors and their wire envelope (AWS JSON 1.1).

Each error is named after a shape in the service model. `__type` is the
bare name (docs/behaviour.md, "Wire protocol and errors"): boto 2 picks its
exception class by that name as it arrives, and botocore and the JavaScript
SDKs read the name after an optional `namespace#` either way. botocore also
copies `message` (and `code`, where the shape has it) to the response.
"""
from __future__ import annotations


class ServiceError(Exception):
    """An error the client sees. `code` is the error shape's name."""

    code = "InternalServerException"
    status = 400
    numeric_code: int | None = None

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        # The model caps ErrorMessage at 2048 characters.
        message = self.message if len(self.message) <= 2048 else self.message[:2045] + "..."
        body = {"__type": self.code, "message": message}
        if self.numeric_code is not None:
            body["code"] = self.numeric_code
        return body


class InvalidInputException(ServiceError):
    code = "InvalidInputException"
    numeric_code = 400


class ResourceNotFoundException(ServiceError):
    code = "ResourceNotFoundException"
    numeric_code = 404


class IdempotentParameterMismatchException(ServiceError):
    code = "IdempotentParameterMismatchException"
    numeric_code = 400


class LimitExceededException(ServiceError):
    code = "LimitExceededException"
    numeric_code = 417


class InternalServerException(ServiceError):
    code = "InternalServerException"
    status = 500
    numeric_code = 500


class PredictorNotMountedException(ServiceError):
    code = "PredictorNotMountedException"


class InvalidTagException(ServiceError):
    code = "InvalidTagException"


class TagLimitExceededException(ServiceError):
    code = "TagLimitExceededException"


# Protocol-level errors that every AWS JSON service returns; they are not in
# the service model but botocore and the SDKs know them by code.
class UnknownOperationException(ServiceError):
    code = "UnknownOperationException"


class SerializationException(ServiceError):
    code = "SerializationException"


class MissingAuthenticationTokenException(ServiceError):
    code = "MissingAuthenticationTokenException"
    status = 403


class UnrecognizedClientException(ServiceError):
    code = "UnrecognizedClientException"
    status = 403


class InvalidSignatureException(ServiceError):
    code = "InvalidSignatureException"
    status = 403


class IncompleteSignatureException(ServiceError):
    code = "IncompleteSignatureException"
    status = 403


class SignatureExpiredException(ServiceError):
    # AWS JSON services answer a request outside the 15-minute window with
    # InvalidSignatureException and a "Signature expired" message.
    code = "InvalidSignatureException"
    status = 403


# Answers of the HTTP layer itself, before a request reaches the API
# (docs/behaviour.md, "Request limits and timeouts"); the first two are the
# names other AWS JSON services give these statuses.
class RequestEntityTooLargeException(ServiceError):
    code = "RequestEntityTooLargeException"
    status = 413


class RequestTimeoutException(ServiceError):
    code = "RequestTimeoutException"
    status = 408


class RequestHeaderFieldsTooLargeException(ServiceError):
    code = "RequestHeaderFieldsTooLargeException"
    status = 431
