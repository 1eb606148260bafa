from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from canopy.config import Settings
from canopy.main import create_app
from tests.fake_llm.fixture import fake_llm  # noqa: F401 - the session-wide fake LLM server fixture
from tests.helpers import TEST_SECRET
from tests.pg import LocalPostgres, available

BACKENDS = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`@pytest.mark.backends("sqlite", "postgres")` runs a test once per storage backend
    (through the `database_url` fixture); unmarked tests keep SQLite only."""
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None and "backend" in metafunc.fixturenames:
        unknown = set(marker.args) - set(BACKENDS)
        assert not unknown, f"unknown backends: {unknown}"
        metafunc.parametrize("backend", marker.args)


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """One throwaway PostgreSQL cluster for the whole test session (Debian's postgresql 15)."""
    if not available():
        pytest.fail("PostgreSQL 15 is not installed (apt-get install postgresql; `make test` installs it)")
    cluster = LocalPostgres()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """'' (SQLite in the test's DATA_DIR) or a fresh PostgreSQL database, dropped afterwards."""
    if backend == "sqlite":
        yield ""
        return
    cluster: LocalPostgres = request.getfixturevalue("postgres")
    name = cluster.create_database()
    yield cluster.url_for(name)
    cluster.drop_database(name)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path, "secret_key": TEST_SECRET, "database_url": ""}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, offline_chunk_delay_ms=0, database_url=database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        yield c


async def register_and_login(
    client: httpx.AsyncClient, username: str = "alice", password: str = "correct horse"
) -> str:
    r = await client.post("/api/auth/register", json={"username": username, "password": password})
    assert r.status_code == 201, r.text
    r = await client.post("/api/auth/login", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.fixture
def ws_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, offline_chunk_delay_ms=0, database_url=database_url)


@pytest.fixture
def tc(ws_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(ws_settings), base_url="https://testserver") as client:
        yield client
