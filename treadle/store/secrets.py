"""The server's master key: it seals stored secrets and signs tokens and links.

SigV4 verification needs each access key's secret itself (the signature is an
HMAC), so secrets cannot be hashed; they are sealed with Fernet (AES-CBC +
HMAC) under a master key that lives outside the metadata database: a file in
the data directory (mode 0600), or TREADLE_MASTER_KEY for several servers
that share one database.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

MASTER_KEY_ENV = "TREADLE_MASTER_KEY"


class MasterKey:
    def __init__(self, key: bytes):
        self._fernet = Fernet(key)
        # Separate derived keys so a token signature can never be replayed
        # as a sealed secret or the other way round.
        raw = base64.urlsafe_b64decode(key)
        self._signing_key = hmac.new(raw, b"treadle-signing", hashlib.sha256).digest()

    @classmethod
    def load(cls, data_dir: str | os.PathLike) -> "MasterKey":
        from_env = os.environ.get(MASTER_KEY_ENV)
        if from_env:
            return cls(from_env.encode())
        path = Path(data_dir) / "master.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def unseal(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as error:
            raise ValueError("sealed value does not match this server's master key") from error

    def sign(self, message: str) -> str:
        digest = hmac.new(self._signing_key, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def verify(self, message: str, signature: str) -> bool:
        # Compared as bytes: compare_digest refuses str with non-ASCII characters.
        return hmac.compare_digest(self.sign(message).encode(), signature.encode("utf-8", "replace"))
