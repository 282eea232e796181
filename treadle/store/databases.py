"""Databases the operator registered for RDS and Redshift datasources
(docs/behaviour.md, "RDS and Redshift"): identifier -> connection URL,
sealed at rest."""
from __future__ import annotations

import re

import sqlalchemy as sa

from .entities import now
from .secrets import MasterKey
from .tables import databases

IDENTIFIER = re.compile(r"[a-z0-9-]{1,63}")
ENGINES = {"rds": ("mysql", "mariadb"), "redshift": ("postgresql", "postgres", "redshift")}


def engine_for_url(url: str) -> str:
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    for engine, schemes in ENGINES.items():
        if scheme in schemes:
            return engine
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use mysql:// for RDS or postgresql:// for Redshift")


class DatabaseRegistry:
    def __init__(self, engine: sa.Engine, master_key: MasterKey):
        self.engine = engine
        self.master_key = master_key

    def add(self, identifier: str, url: str) -> str:
        if not IDENTIFIER.fullmatch(identifier):
            raise ValueError("identifier must be 1-63 characters of a-z, 0-9 and -")
        kind = engine_for_url(url)
        with self.engine.begin() as conn:
            conn.execute(databases.delete().where(databases.c.identifier == identifier))
            conn.execute(databases.insert().values(identifier=identifier, engine=kind,
                                                   url_sealed=self.master_key.seal(url), created_at=now()))
        return kind

    def get(self, identifier: str) -> tuple[str, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(databases).where(databases.c.identifier == identifier)).first()
        return (row.engine, self.master_key.unseal(row.url_sealed)) if row else None

    def list(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return [(r.identifier, r.engine) for r in conn.execute(sa.select(databases).order_by(databases.c.identifier))]

    def remove(self, identifier: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(databases.delete().where(databases.c.identifier == identifier)).rowcount > 0
