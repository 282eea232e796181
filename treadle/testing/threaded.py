"""`server()`: a real Treadle HTTP server in a background thread, for test
suites in other languages (the AWS CLI, the JavaScript or Java SDKs).

It is `treadle serve` on a free loopback port: the same app, SigV4 with a
fresh access key, jobs in worker processes, a temporary data directory
removed when the server stops.
"""
from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

START_SECONDS = 60


@dataclass(frozen=True)
class ThreadedServer:
    url: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    account: str

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that point an AWS SDK or the AWS CLI at
        this server with its credentials."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL_MACHINE_LEARNING": self.url,
        }

    def client(self, **kwargs):
        """A boto3 `machinelearning` client of this server."""
        import boto3

        return boto3.client("machinelearning", endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
                            **kwargs)


@contextlib.contextmanager
def server(*, allow_local_path=(), region: str = "us-east-1", account: str | None = None,
           user: str = "test") -> Iterator[ThreadedServer]:
    """Start the server; yield where it is and its credentials; stop it."""
    import uvicorn

    from ..config import Settings
    from ..http_server import config
    from ..server import create_app
    from ..store.credentials import CredentialStore
    from .mock import folder_list

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="treadle-server-") as folder, listener:
        settings = Settings(data_dir=folder, port=port, region=region, allowed_local_paths=folder_list(allow_local_path))
        app = create_app(settings)
        services = app.state.services
        key = CredentialStore(services.engine, services.master_key).create(user, account)
        http = uvicorn.Server(config(app, settings))
        thread = threading.Thread(target=http.run, kwargs={"sockets": [listener]}, name="treadle-server",
                                  daemon=True)
        thread.start()
        try:
            _wait_started(http, thread)
            yield ThreadedServer(settings.effective_public_url, region, key.access_key_id, key.secret_access_key,
                                 key.account)
        finally:
            http.should_exit = True
            thread.join()
            services.serving.close()
            services.engine.dispose()


def _wait_started(http, thread: threading.Thread) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not http.started:
        if not thread.is_alive():
            raise RuntimeError("the Treadle server stopped while starting; its log says why")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Treadle server did not start within {START_SECONDS} s")
        time.sleep(0.01)
