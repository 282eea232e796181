"""AWS JSON 1.1 on the wire: target header, body parsing, responses."""
from __future__ import annotations

import json

from . import errors
from .service_model import operation_names, target_prefix

CONTENT_TYPE = "application/x-amz-json-1.1"
_OPERATIONS = frozenset(operation_names())


def operation_from_target(target: str | None) -> str:
    if not target:
        raise errors.UnknownOperationException("Missing X-Amz-Target header")
    prefix, _, name = target.partition(".")
    if prefix != target_prefix() or name not in _OPERATIONS:
        raise errors.UnknownOperationException(f"Unknown operation {target!r}")
    return name


def check_content_type(value: str | None) -> None:
    media_type = (value or "").split(";", 1)[0].strip().lower()
    if media_type != CONTENT_TYPE:
        raise errors.SerializationException(
            f"Content-Type must be {CONTENT_TYPE}, not {value or 'absent'!r}")


def parse_body(body: bytes):
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise errors.SerializationException(f"The request body is not valid JSON: {error}")
    except ValueError:
        # Python refuses integers of more than 4,300 digits; no member of
        # the service model holds one.
        raise errors.SerializationException("The request body holds a number with too many digits")
    except RecursionError:
        raise errors.SerializationException("The request body is nested too deeply")


def encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
