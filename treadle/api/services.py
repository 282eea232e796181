"""What an operation handler is given: the server's services and the caller."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa

from ..config import Settings
from ..protocol.auth import Principal
from ..store.artifacts import ArtifactStore
from ..store.entities import EntityStore
from ..store.secrets import MasterKey
from ..serving.endpoints import Serving


@dataclass
class Services:
    settings: Settings
    engine: sa.Engine
    entities: EntityStore
    artifacts: ArtifactStore
    master_key: MasterKey
    serving: "Serving | None" = None
    wake_jobs: Callable[[], None] = lambda: None

    def model_changed(self, account: str, model_id: str) -> None:
        # The real-time scorer drops what it cached for the model, so a new
        # ScoreThreshold or a deleted endpoint applies to the next request.
        if self.serving is not None:
            self.serving.invalidate(account, model_id)

    def mount_endpoint(self, account: str, model_id: str) -> dict:
        return self.serving.mount(account, model_id)


@dataclass
class Call:
    services: Services
    principal: Principal

    @property
    def account(self) -> str:
        return self.principal.account

    @property
    def entities(self) -> EntityStore:
        return self.services.entities
