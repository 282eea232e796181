"""What the console's creation forms offer: the account's datasources and
models to choose from, and IDs suggested as Amazon ML's console did."""
from __future__ import annotations

import secrets
import string

from ..protocol import errors
from .app import Console, FormError
from .kinds import KINDS
from .sessions import Session

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
MAX_CHOICES = 500  # the most recent objects a form lists
# Objects another can be made from: inputs may still be on their way (a
# job waits for them), but not failed or deleted.
USABLE = ("PENDING", "INPROGRESS", "COMPLETED")


def suggest_id(prefix: str) -> str:
    """`ds-`, `ml-`, `ev-` or `bp-` and 11 random base62 characters."""
    return f"{prefix}-" + "".join(secrets.choice(_BASE62) for _ in range(11))


async def _recent(console: Console, session: Session, operation: str) -> list[dict]:
    found: list[dict] = []
    params = {"FilterVariable": "CreatedAt", "GE": "0", "SortOrder": "dsc", "Limit": 100}
    while len(found) < MAX_CHOICES:
        page = await console.call(session, operation, params)
        found += [entry for entry in page["Results"] if entry["Status"] in USABLE]
        if not page.get("NextToken"):
            break
        params = {**params, "NextToken": page["NextToken"]}
    return found[:MAX_CHOICES]


async def datasources(console: Console, session: Session, with_statistics: bool = False) -> list[dict]:
    found = await _recent(console, session, "DescribeDataSources")
    return [ds for ds in found if ds.get("ComputeStatistics") or not with_statistics]


async def models(console: Console, session: Session) -> list[dict]:
    return await _recent(console, session, "DescribeMLModels")


def label(entry: dict, id_member: str) -> str:
    """How a choice reads in a list: its name and ID, or the ID alone."""
    name = entry.get("Name")
    return f"{name} ({entry[id_member]})" if name else entry[id_member]


async def check_new_id(console: Console, session: Session, kind: str, entity_id: str, field: str) -> None:
    """A console form creates a new object: an ID already in use is
    refused (FormError on `field`) rather than taken as a retry."""
    if not entity_id:
        raise FormError(field, "Give an ID")
    try:
        await console.call(session, KINDS[kind].get, {KINDS[kind].id_member: entity_id})
    except errors.ResourceNotFoundException:
        return
    except errors.InvalidInputException:
        raise FormError(field, "Use 1 to 64 letters, digits, periods, underscores and hyphens")
    raise FormError(field, f"{KINDS[kind].label} {entity_id} already exists; choose another ID")
