"""Shared helpers for tests that drive real servers over HTTP."""
from __future__ import annotations

import contextlib
import errno
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REQUIRE_SERVICES = os.environ.get("TREADLE_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get("TREADLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("TREADLE_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")


CHROMIUM = os.environ.get("TREADLE_TEST_CHROMIUM", "/usr/bin/chromium")
# As a closed network wants it: no sandbox (tests run as root), and none of
# Chromium's own calls home, which this machine would refuse one by one.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("TREADLE_SCREENSHOTS", "/tmp/treadle-screenshots"))


def forget_old_builds(root: Path) -> None:
    """`pip install .` builds in the checkout's build/ folder, and setuptools
    keeps what an older build left there (a module since renamed, say) in
    the wheel: an install test starts from what a fresh checkout has."""
    import shutil

    shutil.rmtree(root / "build", ignore_errors=True)


def service_missing(name: str, reason: str):
    """Skip where a service is absent; fail when CI requires every service."""
    message = f"{name} is not available: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (TREADLE_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of `size` mounted at `path` for the test's duration: a disk
    that can really fill up. Mounting needs root (CI runs as root); where it
    is refused the test is skipped, or failed under TREADLE_REQUIRE_SERVICES=1."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True, timeout=30)
        reason = done.stderr.strip() or f"mount exited with {done.returncode}"
    except OSError as error:
        done, reason = None, str(error)
    if done is None or done.returncode != 0:
        service_missing("A tmpfs mount", reason)
    try:
        yield path
    finally:
        # Lazily: a server that failed to stop may still hold files there.
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True, timeout=30)


def fill(folder: Path) -> Path:
    """Write a file in `folder` until its disk is full; deleting it frees the space."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        block = b"\0" * (1 << 16)
        while True:
            os.write(fd, block)
    except OSError as error:
        assert error.errno == errno.ENOSPC, error
    finally:
        os.close(fd)
    return filler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_database() -> str:
    """Create a fresh, empty PostgreSQL database and return its URL."""
    try:
        import psycopg

        name = "treadle_test_" + uuid.uuid4().hex[:12]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as error:
        service_missing("PostgreSQL", str(error))
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def treadle(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "treadle", *args], capture_output=True, text=True,
                          env=env, timeout=120)


@dataclass
class Keys:
    access_key_id: str
    secret_access_key: str
    account: str
    user: str


@dataclass
class Server:
    url: str
    data_dir: Path
    database_url: str | None
    process: subprocess.Popen | None = None
    args: list[str] = field(default_factory=list)
    log_path: Path | None = None
    env: dict | None = None

    def db_args(self) -> list[str]:
        return ["--data-dir", str(self.data_dir)] + (
            ["--database-url", self.database_url] if self.database_url else [])

    def create_keys(self, user: str, account: str | None = None) -> Keys:
        args = ["credentials", "create", "--user", user, *self.db_args()]
        if account:
            args += ["--account", account]
        done = treadle(*args, env={**os.environ, **(self.env or {})})
        assert done.returncode == 0, done.stderr
        values = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines())
        account_line = done.stderr.strip().splitlines()[-1]
        return Keys(values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"],
                    account_line.split()[2].rstrip(","), user)

    def client(self, keys: Keys | None = None, service: str = "machinelearning", **config):
        keys = keys or self.default_keys
        return boto3.client(
            service, endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=keys.access_key_id, aws_secret_access_key=keys.secret_access_key,
            config=Config(retries={"max_attempts": 1}, **config))

    def start(self, *extra: str, port: int | None = None) -> "Server":
        port = port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.args = ["serve", "--port", str(port), *self.db_args(), *extra]
        self.log_path = self.data_dir / f"server-{port}.log"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "treadle", *self.args],
                                        stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(self.env or {})})
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url + "/health", timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def restart(self) -> "Server":
        """Stop and start again on the same port with the same options."""
        self.stop()
        port = int(self.url.rsplit(":", 1)[1])
        extra = self.args[3 + len(self.db_args()):]  # after "serve --port N <db args>"
        return self.start(*extra, port=port)

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(timeout=30)

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path else ""


class S3Server:
    """moto's S3 server on loopback, reached through the standard AWS
    endpoint settings (AWS_ENDPOINT_URL_S3)."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / "moto.log", "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=self.log, stderr=subprocess.STDOUT)
        except OSError as error:
            service_missing("moto S3 server", str(error))
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                service_missing("moto S3 server", f"exited with {self.process.returncode}")
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        service_missing("moto S3 server", "did not start")

    @property
    def env(self) -> dict:
        return {"AWS_ENDPOINT_URL_S3": self.url, "AWS_ACCESS_KEY_ID": "moto", "AWS_SECRET_ACCESS_KEY": "moto",
                "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="moto", aws_secret_access_key="moto")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class ConsoleSession:
    """A signed-in console user over plain HTTP (no browser): keeps the
    session cookie and sends the Origin a browser sends; forms go with the
    CSRF token of the page they are on."""

    def __init__(self, server: "Server", keys: "Keys | None" = None):
        import requests

        self.base = server.url
        self.http = requests.Session()
        self.http.headers["Origin"] = server.url
        if keys is not None:
            response = self.http.post(server.url + "/console/signin", timeout=30, allow_redirects=False, data={
                "access_key_id": keys.access_key_id, "secret_access_key": keys.secret_access_key})
            assert response.status_code == 303 and response.headers["location"] == "/console/objects", \
                response.text

    def get(self, path: str, **options):
        return self.http.get(self.base + path, timeout=30, **options)

    def page(self, path: str) -> str:
        answer = self.get(path, allow_redirects=False)
        assert answer.status_code == 200, answer.text[-2000:]
        return answer.text

    def csrf(self, path: str = "/console/objects") -> str:
        return csrf_token(self.page(path))

    def submit(self, page_path: str, action: str, data: dict, csrf: bool = True, **options):
        """Post a form found on `page_path` to `action`."""
        token = {"csrf": self.csrf(page_path)} if csrf else {}
        return self.http.post(self.base + action, data={**data, **token}, allow_redirects=False, timeout=60,
                              **options)


def csrf_token(page: str) -> str:
    import html
    import re

    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return html.unescape(match.group(1))


def wait_for(predicate, timeout: float = 60, interval: float = 0.1, message: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def signed_post(url: str, keys: "Keys | None", operation: str, body: bytes, *, region: str = "us-east-1",
                service: str = "machinelearning", when=None, content_type="application/x-amz-json-1.1",
                extra_headers=None, target_prefix="AmazonML_20141212", timeout=10):
    """POST a request signed with botocore's SigV4 signer (optionally at a
    chosen time), returning (status, parsed JSON body or raw bytes)."""
    import json
    from unittest import mock

    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"Content-Type": content_type} if content_type else {}
    if operation is not None:
        headers["X-Amz-Target"] = f"{target_prefix}.{operation}"
    headers.update(extra_headers or {})
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    if keys is not None:
        signer = SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), service, region)
        if when is None:
            signer.add_auth(request)
        else:
            with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
                signer.add_auth(request)
    prepared = request.prepare()
    response = requests.post(url, data=body, headers=dict(prepared.headers), timeout=timeout)
    try:
        return response.status_code, json.loads(response.content)
    except ValueError:
        return response.status_code, response.content


def signed_get(url: str, keys: "Keys", timeout=10):
    """GET a Treadle route with a SigV4 signature (service machinelearning)."""
    import json

    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "machinelearning", "us-east-1").add_auth(request)
    response = requests.get(url, headers=dict(request.headers), timeout=timeout)
    try:
        return response.status_code, json.loads(response.content)
    except ValueError:
        return response.status_code, response.content


def settle(getter, timeout: float = 120, **key):
    """Poll a Get* call until the object is COMPLETED or FAILED."""
    def done():
        got = getter(**key)
        return got if got["Status"] in ("COMPLETED", "FAILED") else None
    return wait_for(done, timeout=timeout, interval=0.2, message=f"{key} to finish")
