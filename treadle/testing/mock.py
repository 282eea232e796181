"""`mock_machinelearning`: Treadle answering every botocore
`machinelearning` client of the process, in the process.

One activation at a time: the hook in `hook.py` sends every request to the
active mock. An activation owns a Treadle of its own (`service.py`) on a
temporary data directory, removed when it stops, so each starts empty.
The heavy parts (the server's modules, numpy, numba) are imported by the
first activation, not by `import treadle.testing`.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from .errors import MockMisuseError

JOB_MODES = ("background", "eager")

_lock = threading.Lock()
_active: MachineLearningMock | None = None


def active() -> MachineLearningMock | None:
    """The mock answering requests now, if any."""
    return _active


def folder_list(allow_local_path) -> list[Path]:
    if allow_local_path is None:
        return []
    if isinstance(allow_local_path, (str, os.PathLike)):
        return [Path(allow_local_path)]
    return [Path(path) for path in allow_local_path]


class MachineLearningMock:
    """Made by `mock_machinelearning`; a context manager and a decorator."""

    def __init__(self, jobs: str = "background", allow_local_path=(), peak_requests_per_second: int = 200):
        if jobs not in JOB_MODES:
            raise ValueError(f'jobs must be "background" or "eager", not {jobs!r}')
        self.jobs = jobs
        self.allowed = folder_list(allow_local_path)
        self.peak_requests_per_second = peak_requests_per_second
        self._service = None

    # -- activation ------------------------------------------------------------
    def start(self) -> "MachineLearningMock":
        global _active
        with _lock:
            if _active is not None:
                raise MockMisuseError(
                    "mock_machinelearning is already active, and it cannot be nested: one mock answers every "
                    "machinelearning client of the process. Use the active one (its reset() empties it) or stop "
                    "it first; a test that uses the treadle_mock fixture must not also be decorated with "
                    "@mock_machinelearning or enter it with `with`.")
            self._service = self._new_service()
            _active = self
        return self

    def stop(self) -> None:
        global _active
        with _lock:
            if _active is not self:
                raise MockMisuseError("stop() was called on a mock_machinelearning that is not active")
            service, self._service = self._service, None
            _active = None
        service.close()

    def reset(self) -> None:
        """Empty the service mid-test: every object and job of every account
        is gone, as in a new activation."""
        with _lock:
            if _active is not self:
                raise MockMisuseError("reset() was called on a mock_machinelearning that is not active")
            old, self._service = self._service, self._new_service()
        old.close()

    def _new_service(self):
        from .service import InProcessTreadle

        return InProcessTreadle(self.jobs, self.allowed, self.peak_requests_per_second)

    def __enter__(self) -> "MachineLearningMock":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __call__(self, target):
        from .decorating import decorate

        return decorate(self, target)

    @property
    def data_dir(self) -> Path | None:
        """The active service's temporary data directory (its SQLite
        database, and the artifacts: logs, statistics, models); None while
        the mock is not active."""
        service = self._service
        return service.folder if service is not None else None

    # -- requests --------------------------------------------------------------
    def answer(self, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        """(status, headers, body) of the HTTP answer to a signed request."""
        service = self._service
        if service is None:
            raise MockMisuseError("mock_machinelearning stopped while a request was being answered")
        return service.answer(path, query, headers, body)


def mock_machinelearning(func=None, *, jobs: str = "background", allow_local_path=(),
                         peak_requests_per_second: int = 200):
    """Answer every botocore `machinelearning` client with an in-process
    Treadle: `@mock_machinelearning`, `@mock_machinelearning(jobs="eager")`,
    on a function or a test class, or `with mock_machinelearning() as mock:`.

    jobs: "background" (Create* returns at once, jobs run in threads, as on
    the service) or "eager" (each job runs to its end within its Create*
    call). allow_local_path: a folder or folders that file:// locations may
    name. peak_requests_per_second: each real-time endpoint's Predict limit,
    beyond which the service answers LimitExceededException.
    """
    mock = MachineLearningMock(jobs=jobs, allow_local_path=allow_local_path,
                               peak_requests_per_second=peak_requests_per_second)
    return mock if func is None else mock(func)
