"""Access keys: created by the operator, secrets sealed at rest."""
from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

import sqlalchemy as sa

from .entities import now
from .secrets import MasterKey
from .tables import credentials

ACCOUNT_PATTERN = re.compile(r"\d{12}")
USER_PATTERN = re.compile(r"[\w+=,.@-]{1,64}")


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str
    account: str
    user_name: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account}:user/{self.user_name}"


def new_account_id() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(12))


class CredentialStore:
    def __init__(self, engine: sa.Engine, master_key: MasterKey):
        from .db import read_only

        self.engine = engine
        self.reader = read_only(engine)
        self.master_key = master_key

    def create(self, user_name: str, account: str | None = None) -> AccessKey:
        if not USER_PATTERN.fullmatch(user_name):
            raise ValueError("user name must be 1-64 characters of letters, digits and +=,.@_-")
        if account is None:
            account = self.account_of_user(user_name) or new_account_id()
        if not ACCOUNT_PATTERN.fullmatch(account):
            raise ValueError("account must be 12 digits")
        alphabet = string.ascii_uppercase + string.digits
        key_id = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
        secret = "".join(secrets.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
        with self.engine.begin() as conn:
            conn.execute(credentials.insert().values(
                access_key_id=key_id, secret_sealed=self.master_key.seal(secret), account=account,
                user_name=user_name, created_at=now(), active=True))
        return AccessKey(key_id, secret, account, user_name)

    def account_of_user(self, user_name: str) -> str | None:
        with self.reader.connect() as conn:
            return conn.execute(sa.select(credentials.c.account)
                                .where(credentials.c.user_name == user_name).limit(1)).scalar()

    def lookup(self, access_key_id: str) -> AccessKey | None:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(credentials).where(
                credentials.c.access_key_id == access_key_id, credentials.c.active == sa.true())).first()
        if row is None:
            return None
        return AccessKey(row.access_key_id, self.master_key.unseal(row.secret_sealed), row.account, row.user_name)

    def is_active(self, access_key_id: str) -> bool:
        """Whether the key exists and is not revoked (its secret stays sealed)."""
        with self.reader.connect() as conn:
            return conn.execute(sa.select(credentials.c.access_key_id).where(
                credentials.c.access_key_id == access_key_id, credentials.c.active == sa.true())).first() is not None

    def list(self) -> list[dict]:
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(credentials.c.access_key_id, credentials.c.account,
                                          credentials.c.user_name, credentials.c.active)).all()
        return [dict(r._mapping) for r in rows]

    def deactivate(self, access_key_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(credentials.update().where(
                credentials.c.access_key_id == access_key_id).values(active=False))
        return result.rowcount > 0
