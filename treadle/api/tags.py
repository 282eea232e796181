"""AddTags, DescribeTags, DeleteTags (limits in docs/behaviour.md, "Tags")."""
from __future__ import annotations

from ..protocol import errors
from .common import MAX_TAGS, require, require_live
from .services import Call


def _check_keys(keys) -> None:
    for key in keys:
        if key.lower().startswith("aws:"):
            raise errors.InvalidTagException(f"Tag key {key!r} uses the reserved prefix 'aws:'")


def add(call: Call, params: dict) -> dict:
    kind, resource_id = params["ResourceType"], params["ResourceId"]
    missing = [i + 1 for i, tag in enumerate(params["Tags"]) if "Key" not in tag]
    if missing:
        raise errors.InvalidTagException(f"Tags.{missing[0]} has no Key")
    pairs = {tag["Key"]: tag.get("Value") for tag in params["Tags"]}
    _check_keys(pairs)
    store = call.entities
    with store.engine.begin() as conn:
        require_live(call, kind, resource_id, conn)
        current = dict(store.tags(call.account, kind, resource_id, conn))
        total = len(set(current) | set(pairs))
        if total > MAX_TAGS:
            raise errors.TagLimitExceededException(
                f"{kind} {resource_id} would have {total} tags; the limit is {MAX_TAGS}")
        store.set_tags(conn, call.account, kind, resource_id, pairs)
    return {"ResourceId": resource_id, "ResourceType": kind}


def describe(call: Call, params: dict) -> dict:
    kind, resource_id = params["ResourceType"], params["ResourceId"]
    require(call, kind, resource_id)
    tags = []
    for key, value in call.entities.tags(call.account, kind, resource_id):
        tags.append({"Key": key} if value is None else {"Key": key, "Value": value})
    return {"ResourceId": resource_id, "ResourceType": kind, "Tags": tags}


def delete(call: Call, params: dict) -> dict:
    kind, resource_id = params["ResourceType"], params["ResourceId"]
    _check_keys(params["TagKeys"])
    with call.entities.engine.begin() as conn:
        require_live(call, kind, resource_id, conn)
        call.entities.delete_tags(conn, call.account, kind, resource_id, params["TagKeys"])
    return {"ResourceId": resource_id, "ResourceType": kind}
