"""Console sessions: who is signed in, kept by the server.

A session starts when someone signs in with an access key id and its
secret (the API's own credentials). The browser holds only a random token
in an HttpOnly, SameSite=Strict cookie; the server keeps its SHA-256, the
account and user, the CSRF token every change must carry, and when it
expires. Signing out deletes it; so does revoking the access key, at the
next request.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from ..config import DEFAULT_ACCOUNT
from ..protocol.auth import Principal
from ..store.credentials import CredentialStore
from ..store.db import read_only
from ..store.secrets import MasterKey
from ..store.tables import console_sessions

COOKIE = "treadle_console"
SESSION_SECONDS = 12 * 3600
# Failed sign-ins tolerated in a window, per access key id from one client
# address and per client address, before further tries are refused for the
# rest of it: enough for typing mistakes (an address may be shared by many
# people), far too few to guess a 40-character secret. Counted per key and
# address, so that nobody elsewhere can lock a key's owner out by failing on
# purpose. Each HTTP worker process counts for itself.
MAX_FAILURES_PER_KEY = 5
MAX_FAILURES_PER_CLIENT = 30
FAILURE_WINDOW = 60.0


@dataclass(frozen=True)
class Session:
    principal: Principal
    access_key_id: str | None
    csrf_token: str
    expires_at: float

    @property
    def account(self) -> str:
        return self.principal.account


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SignInRefused(Exception):
    pass


class SessionStore:
    def __init__(self, engine: sa.Engine, credentials: CredentialStore, master_key: MasterKey):
        self.engine = engine
        self.reader = read_only(engine)
        self.credentials = credentials
        # --auth none: one session for everyone on the loopback address, kept
        # nowhere, whose CSRF token the server can derive again.
        self._anonymous = Session(Principal(DEFAULT_ACCOUNT, "treadle"), None,
                                  master_key.sign("console-anonymous-csrf"), float("inf"))
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    # -- signing in ----------------------------------------------------------
    def sign_in(self, access_key_id: str, secret: str, client: str) -> tuple[str, Session]:
        """Check the credentials; a new session and the cookie's token."""
        access_key_id = access_key_id.strip()
        counted = ((f"key:{access_key_id}:{client}", MAX_FAILURES_PER_KEY),
                   (f"client:{client}", MAX_FAILURES_PER_CLIENT))
        if any(self._throttled(key, limit) for key, limit in counted):
            raise SignInRefused("Too many failed sign-ins; wait a minute and try again")
        found = self.credentials.lookup(access_key_id) if access_key_id else None
        # Compared as bytes in constant time; an unknown key id costs the same.
        expected = (found.secret_access_key if found else secrets.token_urlsafe(30)).encode()
        if found is None or not hmac.compare_digest(expected, secret.strip().encode("utf-8", "replace")):
            for key, _ in counted:
                self._failed(key)
            raise SignInRefused("The access key id or the secret access key is not right")
        return self._start(Principal(found.account, found.user_name), found.access_key_id)

    def anonymous(self) -> Session:
        """The session of the default account (--auth none, loopback only)."""
        return self._anonymous

    def _start(self, principal: Principal, access_key_id: str | None) -> tuple[str, Session]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        stamp = time.time()
        session = Session(principal, access_key_id, csrf, stamp + SESSION_SECONDS)
        with self.engine.begin() as conn:
            conn.execute(console_sessions.delete().where(console_sessions.c.expires_at < stamp))
            conn.execute(console_sessions.insert().values(
                token_hash=_hash(token), account=principal.account, user_name=principal.user_name,
                access_key_id=access_key_id, csrf_token=csrf, created_at=stamp, expires_at=session.expires_at))
        return token, session

    def _throttled(self, key: str, limit: int) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(key, ()) if now - t < FAILURE_WINDOW]
            if recent:
                self._failures[key] = recent
            else:
                self._failures.pop(key, None)
            return len(recent) >= limit

    def _failed(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10000:
                # Forget only what has expired: clearing everything would
                # let a flood of made-up key ids reset every count.
                self._failures = {k: times for k, times in self._failures.items()
                                  if now - times[-1] < FAILURE_WINDOW}
            self._failures.setdefault(key, []).append(now)

    # -- each request --------------------------------------------------------
    def find(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(console_sessions).where(
                console_sessions.c.token_hash == _hash(token))).first()
        if row is None or row.expires_at < time.time():
            return None
        if row.access_key_id is not None and not self.credentials.is_active(row.access_key_id):
            self.end(token)  # the access key was revoked
            return None
        return Session(Principal(row.account, row.user_name), row.access_key_id, row.csrf_token, row.expires_at)

    def end(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(console_sessions.delete().where(console_sessions.c.token_hash == _hash(token)))


def csrf_valid(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf_token.encode(), submitted.encode("utf-8", "replace"))
