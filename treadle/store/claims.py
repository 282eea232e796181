"""Claims on the objects jobs write into users' locations (batch prediction
results and manifests, staged query results): docs/behaviour.md, "Output
locations are never overwritten by someone else's job".

A claim is a row keyed by the object's URI. The first job to insert it owns
the object from then on; the key's uniqueness is what leaves exactly one
owner when two jobs race for one object, on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa

from .db import read_only
from .entities import now
from .tables import output_claims

BATCH = 500  # URIs per statement, well under every database's limit on parameters


@dataclass(frozen=True)
class Owner:
    account: str
    kind: str
    entity_id: str


class ClaimRefused(Exception):
    """`uri` is claimed by another owner (`taken`), or exists unclaimed."""

    def __init__(self, uri: str, taken: bool):
        super().__init__(uri)
        self.uri = uri
        self.taken = taken


def _key(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()


class OutputClaims:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.reader = read_only(engine)

    def claim(self, owner: Owner, uris: list[str], exists: Callable[[str], bool]) -> None:
        """Claim every object of `uris` for `owner`, or none of them. An
        object the owner claimed before is its own (a retry may replace it);
        one another owner claimed, or one that `exists` without a claim (a
        user's own file), is refused."""
        uris = list(dict.fromkeys(uris))
        while True:
            held = self._held_by(owner, uris)
            fresh = [uri for uri in uris if uri not in held]
            for uri in fresh:
                if exists(uri):
                    raise ClaimRefused(uri, taken=False)
            stamp = now()
            try:
                with self.engine.begin() as conn:
                    for start in range(0, len(fresh), BATCH):
                        conn.execute(output_claims.insert(), [
                            {"uri_sha256": _key(uri), "uri": uri, "account": owner.account,
                             "kind": owner.kind, "entity_id": owner.entity_id, "claimed_at": stamp}
                            for uri in fresh[start:start + BATCH]])
                return
            except sa.exc.IntegrityError:
                # Another job claimed one of them after they were read: the
                # next look finds its claim. Claims are never removed, so
                # this repeats at most once for each URI.
                continue

    def _held_by(self, owner: Owner, uris: list[str]) -> set[str]:
        """Those of `uris` that `owner` holds; refused if another owner holds one."""
        mine = set()
        with self.reader.connect() as conn:
            for start in range(0, len(uris), BATCH):
                by_key = {_key(uri): uri for uri in uris[start:start + BATCH]}
                for row in conn.execute(sa.select(output_claims).where(output_claims.c.uri_sha256.in_(by_key))):
                    if Owner(row.account, row.kind, row.entity_id) != owner:
                        raise ClaimRefused(by_key[row.uri_sha256], taken=True)
                    mine.add(by_key[row.uri_sha256])
        return mine
