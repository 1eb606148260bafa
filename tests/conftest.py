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


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path, "secret_key": TEST_SECRET, "database_url": ""}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, offline_chunk_delay_ms=0)


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
def ws_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, offline_chunk_delay_ms=0)


@pytest.fixture
def tc(ws_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(ws_settings), base_url="https://testserver") as client:
        yield client
