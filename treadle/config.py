"""Server settings, gathered once from the command line and environment."""
from __future__ import annotations

import functools
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 8686
DEFAULT_ACCOUNT = "000000000000"
# Where the console streams a CSV upload; the HTTP layer gives it its own limits.
UPLOAD_PATH = "/console/new/datasource/upload"
# The largest request body the API reads (docs/behaviour.md, "Request limits
# and timeouts"): well above any request the service model allows (a
# schema or recipe of 128 KiB, a Predict record of 100 KB).
MAX_REQUEST_BYTES = 32 * 1024 * 1024


def default_data_dir() -> Path:
    env = os.environ.get("TREADLE_DATA_DIR")
    if env:
        return Path(env)
    return Path.home() / ".local" / "share" / "treadle"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


@dataclass
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    database_url: str | None = None
    artifacts_url: str | None = None
    public_url: str | None = None
    allowed_local_paths: list[Path] = field(default_factory=list)
    auth: str = "sigv4"
    region: str = "us-east-1"
    job_concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    job_lease_seconds: float = 30.0
    job_poll_seconds: float = 0.5
    job_max_attempts: int = 3
    log_link_seconds: int = 3600
    peak_requests_per_second: int = 200
    workers: int = 1  # HTTP worker processes
    # A Dask scheduler's address: jobs run on its cluster (treadle/jobs/dask_runner.py).
    dask_scheduler: str | None = None
    shared_artifacts: bool = False  # the local artifact folder is mounted at the same path on every worker
    # On a cluster, a job reads its data in parts of about this many bytes (treadle/jobs/parts.py).
    part_bytes: int = field(default_factory=lambda: int(os.environ.get("TREADLE_PART_BYTES") or 64 << 20))
    upload_dir: Path | None = None  # the console's CSV uploads; see effective_upload_dir
    max_upload_bytes: int = 1 << 30
    # docs/behaviour.md, "Request limits and timeouts"
    max_request_bytes: int = MAX_REQUEST_BYTES
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0

    def __post_init__(self):
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.allowed_local_paths = [Path(p).expanduser().resolve() for p in self.allowed_local_paths]
        if self.auth not in ("sigv4", "none"):
            raise ValueError("--auth must be sigv4 or none")
        if self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if self.job_concurrency < 0 or (self.job_concurrency == 0 and not self.dask_scheduler):
            raise ValueError("--jobs must be at least 1")
        if self.max_request_bytes < 1:
            raise ValueError("--max-request-bytes must be at least 1")
        for option, seconds in (("--header-timeout", self.header_timeout), ("--body-timeout", self.body_timeout),
                                ("--keep-alive-timeout", self.keep_alive_timeout)):
            if not 0 < seconds < float("inf"):
                raise ValueError(f"{option} must be a number of seconds above 0")
        if self.max_upload_bytes < 1:
            raise ValueError("--max-upload-bytes must be at least 1")
        if self.upload_dir is not None:
            self.upload_dir = Path(self.upload_dir).expanduser().resolve()
            self._check_upload_dir(self.upload_dir)

    def _check_upload_dir(self, folder: Path) -> None:
        # Uploads become file:// datasources, which are read only below an
        # allowed directory and never inside Treadle's own storage.
        if not any(folder == root or root in folder.parents for root in self.allowed_local_paths):
            raise ValueError("--upload-dir must lie inside an --allow-local-path directory")
        if self.confinement.reserves(str(folder)):
            raise ValueError("--upload-dir must not lie inside Treadle's own storage")

    @property
    def effective_upload_dir(self) -> Path | None:
        """Where the console stores uploaded CSV files: --upload-dir, else
        `uploads` in the first allowed directory; None (uploads are off)
        without an allowed directory."""
        if self.upload_dir is not None:
            return self.upload_dir
        if not self.allowed_local_paths:
            return None
        folder = self.allowed_local_paths[0] / "uploads"
        return None if self.confinement.reserves(str(folder)) else folder

    @property
    def effective_database_url(self) -> str:
        from .store.db import sqlite_url

        return self.database_url or sqlite_url(self.data_dir)

    @property
    def scratch_dir(self) -> Path:
        """Where jobs keep their temporary files; emptied at start-up (see
        treadle/scratch.py)."""
        return self.data_dir / "scratch"

    @property
    def effective_artifacts_url(self) -> str:
        return self.artifacts_url or str(self.data_dir / "artifacts")

    @functools.cached_property
    def confinement(self):
        """The locations requests may name (data/locations.Confinement);
        computed once, as it resolves paths on disk."""
        from .data.locations import Confinement

        reserved = [str(self.data_dir)]
        artifacts = self.effective_artifacts_url
        reserved.append(artifacts if artifacts.startswith("s3://") else
                        str(Path(artifacts.removeprefix("file://")).expanduser().resolve()))
        database = self.effective_database_url
        if database.startswith("sqlite:///"):
            path = Path(database[len("sqlite:///"):]).resolve()
            reserved += [str(path), f"{path}-wal", f"{path}-shm", f"{path}-journal"]
        uploads = self.upload_dir or (self.allowed_local_paths[0] / "uploads" if self.allowed_local_paths else None)
        return Confinement(tuple(self.allowed_local_paths), tuple(reserved), uploads)

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"
