"""What a job function is given, wherever it runs (a local process or a
Dask worker): the entity, the stores, and a log."""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field

from ..config import Settings
from ..store.artifacts import ArtifactStore
from ..store.entities import Entity, EntityStore
from ..store.models import ModelUnavailable, fail_model, load_model
from ..store.secrets import MasterKey


def json_bytes(value) -> bytes:
    """JSON for stored results: numpy values become plain numbers, and NaN
    or infinities (the mean of an all-missing column) become null."""
    def clean(item):
        if isinstance(item, float):
            return item if item == item and item not in (float("inf"), float("-inf")) else None
        if isinstance(item, dict):
            return {str(k): clean(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(v) for v in item]
        if hasattr(item, "tolist"):  # numpy arrays and scalars
            return clean(item.tolist())
        return item
    return json.dumps(clean(value), allow_nan=False, default=str).encode()


# A job function's result may hold, under this key, fields to set only
# where the document has none when the job ends: a value the user set while
# the job ran (a ScoreThreshold, say) wins over the job's default.
DEFAULTS = "_defaults"


class JobFailed(Exception):
    """A failure the user can act on; its text becomes the entity's Message."""


class WorkLost(Exception):
    """The cluster lost part of a job's work (a Dask worker holding a
    training shard stopped): the job is not failed but handed back to the
    queue and run again, as when the worker running the job itself stops."""


@dataclass
class JobContext:
    settings: Settings
    entities: EntityStore
    artifacts: ArtifactStore
    master_key: MasterKey
    entity: Entity
    lines: list[str] = field(default_factory=list)
    # On a Dask cluster, what runs the job's parts (treadle/jobs/parts.py); None in one process.
    parts: object | None = None
    _checked: tuple[float, bool] = (0.0, False)

    @property
    def account(self) -> str:
        return self.entity.account

    @property
    def document(self) -> dict:
        return self.entity.document

    def log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.lines.append(f"{stamp} {message}")

    def cancelled(self, now: bool = False) -> bool:
        """Whether this job's object was deleted, asked of the metadata at most
        once a second (`now`: asked at once)."""
        at, deleted = self._checked
        if not deleted and (now or time.monotonic() - at >= 1.0):
            found = self.entities.get(self.account, self.entity.kind, self.entity.entity_id)
            deleted = found is None or found.status == "DELETED"
            self._checked = (time.monotonic(), deleted)
        return deleted

    def model(self, entity: Entity):
        """The trained model of an MLModel this job uses. One that cannot be
        used fails its MLModel too (docs/behaviour.md, "Jobs")."""
        try:
            return load_model(self.artifacts, entity)
        except ModelUnavailable as error:
            fail_model(self.entities, entity.account, entity.entity_id, str(error))
            raise JobFailed(f"MLModel {entity.entity_id} cannot be used: {error}")

    def scratch(self, prefix: str) -> tempfile.TemporaryDirectory:
        """A temporary folder of this job's own in the server's scratch
        space, which the server empties when it starts: what a killed job
        leaves there does not outlive the next start."""
        return tempfile.TemporaryDirectory(prefix=prefix, dir=self.scratch_root)

    @property
    def scratch_root(self) -> str:
        root = self.settings.scratch_dir
        root.mkdir(parents=True, exist_ok=True)
        return str(root)

    def statistics(self, datasource: Entity) -> dict:
        """A datasource's stored statistics; empty when it has none."""
        key = datasource.document.get("_statistics")
        return json.loads(self.artifacts.get(key)) if key else {}

    def input(self, kind: str, entity_id: str) -> Entity:
        entity = self.entities.get(self.account, kind, entity_id)
        if entity is None:
            raise JobFailed(f"{kind} {entity_id} no longer exists")
        return entity
