"""Describe* for all four kinds: filters, sort order, keyset pagination with
signed, account-bound NextTokens (docs/behaviour.md, "Identifiers,
idempotency and objects' life")."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

import sqlalchemy as sa

from ..protocol import errors
from ..store.tables import entities
from .services import Call

# FilterVariable -> indexed column (data for all four Describe operations).
FILTER_COLUMNS = {
    "CreatedAt": "created_at",
    "LastUpdatedAt": "updated_at",
    "Status": "status",
    "Name": "name",
    "IAMUser": "iam_user",
    "DataLocationS3": "location",
    "TrainingDataURI": "location",
    "DataURI": "location",
    "TrainingDataSourceId": "datasource_id",
    "DataSourceId": "datasource_id",
    "MLModelId": "mlmodel_id",
    "MLModelType": "model_type",
    "Algorithm": "algorithm",
    "RealtimeEndpointStatus": "endpoint_status",
}
TIME_COLUMNS = {"created_at", "updated_at"}
COMPARATORS = ("EQ", "GT", "LT", "GE", "LE", "NE", "Prefix")
DEFAULT_LIMIT = 100


def _time_value(comparator: str, text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidInputException(
            f"{comparator} value {text!r} is neither epoch seconds nor an ISO 8601 time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(column_name: str, params: dict) -> list:
    column = entities.c[column_name]
    is_time = column_name in TIME_COLUMNS
    sortable = column if is_time else sa.func.coalesce(column, "")
    conditions = []
    for comparator in COMPARATORS:
        if comparator not in params:
            continue
        raw = params[comparator]
        if comparator == "Prefix":
            if is_time:
                raise errors.InvalidInputException("Prefix cannot be used with a time FilterVariable")
            conditions.append(sortable.like(_escape_like(raw) + "%", escape="\\"))
            continue
        value = _time_value(comparator, raw) if is_time else raw
        conditions.append({
            "EQ": sortable == value, "NE": sortable != value, "GT": sortable > value,
            "LT": sortable < value, "GE": sortable >= value, "LE": sortable <= value,
        }[comparator])
    return conditions


def _fingerprint(call: Call, kinds: tuple[str, ...], query: dict) -> str:
    return hashlib.sha256(json.dumps([call.account, list(kinds), query], sort_keys=True).encode()).hexdigest()[:32]


def _encode_token(call: Call, fingerprint: str, last_value, last_pk: int) -> str:
    body = json.dumps({"q": fingerprint, "v": last_value, "pk": last_pk}, separators=(",", ":"))
    signature = call.services.master_key.sign("describe\n" + body)
    return base64.urlsafe_b64encode(f"{body}\n{signature}".encode()).decode()


def _decode_token(call: Call, fingerprint: str, token: str):
    # Signed and bound to the caller's account and query: a token cannot be
    # forged, or replayed by another account or with another filter.
    try:
        body, signature = base64.urlsafe_b64decode(token.encode()).decode().rsplit("\n", 1)
    except Exception:
        raise errors.InvalidInputException("NextToken is not a token this server issued")
    if not call.services.master_key.verify("describe\n" + body, signature):
        raise errors.InvalidInputException("NextToken is not a token this server issued")
    data = json.loads(body)
    if data["q"] != fingerprint:
        raise errors.InvalidInputException("NextToken belongs to a different Describe request")
    return data["v"], data["pk"]


def describe(call: Call, kind: str, params: dict, entry) -> dict:
    variable = params.get("FilterVariable")
    used = [c for c in COMPARATORS if c in params]
    if used and not variable:
        raise errors.InvalidInputException(f"{used[0]} needs a FilterVariable to compare against")
    column_name = FILTER_COLUMNS[variable] if variable else "created_at"
    where = _conditions(column_name, params) if variable else []
    query = {k: params.get(k) for k in ("FilterVariable", "SortOrder", *COMPARATORS)}
    rows, token = page_of(call, (kind,), column_name, where, query, descending=params.get("SortOrder") == "dsc",
                          limit=params.get("Limit", DEFAULT_LIMIT), token=params.get("NextToken"),
                          with_deleted=variable == "Status")
    result = {"Results": [entry(call, row) for row in rows]}
    if token:
        result["NextToken"] = token
    return result


def page_of(call: Call, kinds: tuple[str, ...], column_name: str, where: list, query: dict, *,
            descending: bool, limit: int, token: str | None, with_deleted: bool):
    """One page of the account's objects of `kinds` matching `where`,
    sorted by `column_name` (then creation order), and the token of the next
    page. `query` describes the request, binding its tokens to it. Deleted
    objects are listed only `with_deleted` (a filter on Status)."""
    column = entities.c[column_name]
    sort_key = column if column_name in TIME_COLUMNS else sa.func.coalesce(column, "")
    where = list(where)
    if not with_deleted:
        where.append(entities.c.status != "DELETED")
    fingerprint = _fingerprint(call, kinds, query)
    if token:
        last_value, last_pk = _decode_token(call, fingerprint, token)
        if descending:
            where.append(sa.or_(sort_key < last_value, sa.and_(sort_key == last_value, entities.c.pk < last_pk)))
        else:
            where.append(sa.or_(sort_key > last_value, sa.and_(sort_key == last_value, entities.c.pk > last_pk)))
    order = [sort_key.desc(), entities.c.pk.desc()] if descending else [sort_key.asc(), entities.c.pk.asc()]
    rows = call.entities.query(call.account, kinds, where, order, limit + 1)
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], _encode_token(call, fingerprint, _column_value(last, column_name), last.pk)


def _column_value(entity, column_name: str):
    from ..store.entities import INDEXED_COLUMNS

    value = INDEXED_COLUMNS[column_name](entity.kind, entity.document)
    if value is None and column_name not in TIME_COLUMNS:
        return ""
    return value
