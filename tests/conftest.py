import os
from importlib.metadata import entry_points

import pytest

from support import (CHROMIUM, CHROMIUM_ARGS, S3Server, Server, drop_postgres_database, postgres_database,
                     service_missing)

# An installed Treadle registers its pytest plugin (the treadle_mock
# fixture) through its entry point; where the installed metadata predates
# the entry point, the checkout's plugin is loaded here.
if not any(point.value == "treadle.pytest_plugin" for point in entry_points(group="pytest11")):
    pytest_plugins = ["treadle.pytest_plugin"]


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """One moto S3 server for the session; every Treadle server uses it."""
    server = S3Server(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


def _start(backend: str, tmp_path_factory, s3, *extra: str) -> Server:
    data_dir = tmp_path_factory.mktemp(f"treadle-{backend}")
    database_url = postgres_database() if backend == "postgresql" else None
    server = Server("", data_dir, database_url, env=s3.env)
    server.default_keys = server.create_keys("alice", "111111111111")
    server.other_keys = server.create_keys("bob", "222222222222")
    server.start(*extra)
    return server


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory, s3):
    """A live server on each metadata backend, shared by a session."""
    server = _start(request.param, tmp_path_factory, s3, "--allow-local-path", str(tmp_path_factory.getbasetemp()))
    server.backend = request.param
    yield server
    server.stop()
    if server.database_url:
        drop_postgres_database(server.database_url)


@pytest.fixture
def ml(server):
    return server.client()


@pytest.fixture
def fresh_server(tmp_path_factory, s3):
    """A private SQLite server for tests that stop or restart it."""
    servers = []

    def make(*extra: str, backend: str = "sqlite") -> Server:
        server = _start(backend, tmp_path_factory, s3, *extra)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
        if server.database_url:
            drop_postgres_database(server.database_url)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright (browsers cannot be
    downloaded here, so Playwright drives the system's executable). Per
    module, not per session: while Playwright's sync API is active the main
    thread counts as running an event loop, and asyncio.run in a later
    test would refuse to start."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        service_missing("Playwright", str(error))
    if not os.path.exists(CHROMIUM):
        service_missing("Chromium", f"{CHROMIUM} does not exist (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
