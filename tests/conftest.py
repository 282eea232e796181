import pytest

from support import Server, drop_postgres_database, postgres_database


def _start(backend: str, tmp_path_factory, *extra: str) -> Server:
    data_dir = tmp_path_factory.mktemp(f"treadle-{backend}")
    database_url = postgres_database() if backend == "postgresql" else None
    server = Server("", data_dir, database_url)
    server.default_keys = server.create_keys("alice", "111111111111")
    server.other_keys = server.create_keys("bob", "222222222222")
    server.start(*extra)
    return server


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """A live server on each metadata backend, shared by a session."""
    server = _start(request.param, tmp_path_factory, "--allow-local-path", str(tmp_path_factory.getbasetemp()))
    server.backend = request.param
    yield server
    server.stop()
    if server.database_url:
        drop_postgres_database(server.database_url)


@pytest.fixture
def ml(server):
    return server.client()


@pytest.fixture
def fresh_server(tmp_path_factory):
    """A private SQLite server for tests that stop or restart it."""
    servers = []

    def make(*extra: str, backend: str = "sqlite") -> Server:
        server = _start(backend, tmp_path_factory, *extra)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
        if server.database_url:
            drop_postgres_database(server.database_url)
