"""An object's log in the artifact store: where it is kept, and how each
attempt of its job adds to it (docs/behaviour.md, "Jobs")."""
from __future__ import annotations

from .artifacts import ArtifactStore


def log_key(account: str, kind: str, entity_id: str) -> str:
    return f"logs/{account}/{kind}/{entity_id}.log"


def append_log(artifacts: ArtifactStore, key: str, attempt: int, lines: list[str]) -> None:
    """Write an attempt's lines after the earlier attempts': a retry's lines
    come under an "--- attempt N ---" heading, even when the attempt before
    it ended without writing any."""
    try:
        earlier = artifacts.get(key)
    except FileNotFoundError:
        earlier = b""
    heading = [f"--- attempt {attempt} ---"] if attempt > 1 else []
    artifacts.put(key, earlier + ("\n".join(heading + lines) + "\n").encode())
