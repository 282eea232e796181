"""AWS JSON 1.1 on the wire: target header, body parsing, responses."""
from __future__ import annotations

import json
import random

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


_UUID4_BITS = (0x4000 << 64) | (0x8000 << 48)
_UUID4_MASK = ~((0xF000 << 64) | (0xC000 << 48))


def request_id() -> str:
    """A random (version 4) UUID, as uuid.uuid4() formats it; request IDs
    need to be unique, not unpredictable, and os.urandom plus the UUID
    object cost more than the rest of the request's bookkeeping."""
    digits = f"{random.getrandbits(128) & _UUID4_MASK | _UUID4_BITS:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
