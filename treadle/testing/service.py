"""The Treadle behind one activation of the mock: the server's own services
on a temporary data directory (SQLite), its request handler with the
`--auth none` rules (the account is a 12-digit access key id, else
000000000000), and its jobs in threads or run eagerly."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..api.handler import ApiHandler, response_headers
from ..api.location_checks import LocationNotAllowed
from ..config import Settings
from ..data import locations
from ..jobs.inprocess import EagerJobs, ThreadJobRunner
from ..jobs.queue import dependencies
from ..protocol.auth import Authenticator
from ..server import build_services
from ..store.entities import ID_FIELD
from .errors import MockMisuseError

# The EndpointUrl of every real-time endpoint, as Amazon ML gives it in
# us-east-1: code that sends Predict there reaches the mock while it is
# active, and never a server on this machine.
REALTIME_URL = "https://realtime.machinelearning.us-east-1.amazonaws.com"

# The operations that queue a job, and the kind of object each creates.
CREATES = {
    "CreateDataSourceFromS3": "DataSource",
    "CreateDataSourceFromRDS": "DataSource",
    "CreateDataSourceFromRedshift": "DataSource",
    "CreateMLModel": "MLModel",
    "CreateEvaluation": "Evaluation",
    "CreateBatchPrediction": "BatchPrediction",
}


class InProcessTreadle:
    def __init__(self, jobs: str, allowed: list[Path], peak_requests_per_second: int):
        self.folder = Path(tempfile.mkdtemp(prefix="treadle-mock-"))
        self.allowed = allowed
        settings = Settings(data_dir=self.folder, auth="none", allowed_local_paths=allowed, public_url=REALTIME_URL,
                            peak_requests_per_second=peak_requests_per_second)
        # s3:// locations are reached with the AWS configuration in force
        # from now on: inside moto's mock_aws, its mocked S3.
        locations.s3_client.cache_clear()
        self.services = services = build_services(settings)
        self.handler = ApiHandler(services, Authenticator("none"))

        def finished(job, status):
            services.serving.mount_waiting(job)

        self.eager = self.runner = None
        if jobs == "eager":
            self.eager = EagerJobs(services, finished)
        else:
            self.runner = ThreadJobRunner(services, finished)
            services.wake_jobs = self.runner.wake
            self.runner.start()

    def answer(self, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        exchange = self.handler.handle(path, query, headers, body)
        if isinstance(exchange.error, LocationNotAllowed):
            raise MockMisuseError(self._not_allowed(exchange.error.uri))
        kind = CREATES.get(exchange.operation)
        if self.eager is not None and kind is not None and exchange.error is None:
            self.eager.run_ready()
            self._check_ran(exchange.principal.account, kind, exchange.params[ID_FIELD[kind]])
        headers = {name.decode(): value.decode() for name, value in response_headers(exchange)}
        return exchange.status, headers, exchange.payload

    def _not_allowed(self, uri: str) -> str:
        allowed = ", ".join(str(path) for path in self.allowed) or "none"
        return (f"{uri} is outside the folders this mock lets requests name ({allowed}). Allow the folder that "
                f"holds it: mock_machinelearning(allow_local_path=[folder]), or "
                f"@pytest.mark.treadle_mock(allow_local_path=[folder]) with the treadle_mock fixture.")

    def _check_ran(self, account: str, kind: str, entity_id: str) -> None:
        """An eager Create* returns once its job has run: a job still
        waiting for an input is a test that cannot work this way."""
        entity = self.services.entities.get(account, kind, entity_id)
        if entity is None or entity.status != "PENDING":
            return
        for input_kind, input_id, role in dependencies(kind, entity.document):
            source = self.services.entities.get(account, input_kind, input_id)
            if source is not None and source.status in ("PENDING", "INPROGRESS"):
                raise MockMisuseError(
                    f'{kind} {entity_id} cannot run with jobs="eager": its {role} {input_id} is still '
                    f"{source.status}. An eager job runs within its Create* call, so its inputs must have "
                    f"finished before it is created: create them first, one call after the other, or use "
                    f'mock_machinelearning(jobs="background") and wait for them (a waiter, or Get* until '
                    f"COMPLETED). {kind} {entity_id} stays PENDING and runs once its inputs finish.")

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.services.serving.close()
        self.services.engine.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)
        locations.s3_client.cache_clear()
