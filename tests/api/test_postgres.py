"""Storage on PostgreSQL and SQLite alike: concurrent migrations, text PostgreSQL cannot hold."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from starlette.testclient import TestClient

from canopy import db
from canopy.config import Settings
from canopy.main import create_app
from tests.conftest import register_and_login
from tests.support.ws import collect_turn, init, login, session_socket

pytestmark = [pytest.mark.backends("sqlite", "postgres"), pytest.mark.timeout(120)]


@pytest.mark.backends("postgres")  # replicas need PostgreSQL; one SQLite process migrates alone
async def test_replicas_migrating_at_once_apply_each_migration_once(settings: Settings) -> None:
    engines = [db.create_engine(settings.sqlalchemy_url) for _ in range(4)]
    try:
        versions = await asyncio.gather(*(db.init_database(engine) for engine in engines))
        assert versions == [len(db.MIGRATIONS)] * 4
        async with engines[0].connect() as conn:
            rows = (await conn.execute(select(db.schema_version.c.version))).scalars().all()
            assert rows == [len(db.MIGRATIONS)]
            assert (await conn.execute(select(func.count()).select_from(db.sessions))).scalar() == 0
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.mark.backends("postgres")
async def test_a_transaction_left_idle_is_ended_by_the_server(settings: Settings) -> None:
    """A replica stopped mid-transaction must not hold the lease row's lock until it wakes up."""
    engine = db.create_engine(settings.sqlalchemy_url, idle_in_transaction_seconds=7)
    try:
        async with engine.connect() as conn:
            shown = (await conn.execute(text("SHOW idle_in_transaction_session_timeout"))).scalar()
        assert shown == "7s"
    finally:
        await engine.dispose()


async def test_a_title_with_nul_is_422_and_stores_nothing(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {await register_and_login(client)}"}
    r = await client.post("/api/sessions", json={"title": "a\x00b"}, headers=headers)
    assert r.status_code == 422
    assert (await client.get("/api/sessions", headers=headers)).json() == []


def test_nul_in_a_prompt_is_stored_as_a_replacement_character(settings: Settings) -> None:
    with TestClient(create_app(settings)) as tc:
        token = login(tc)
        with session_socket(tc, token) as (ws, ready):
            ws.send_json({"type": "user_prompt", "data": {"prompt": "hello\x00there"}})
            assert collect_turn(ws)[-1]["data"]["chunk"] is False
            sid = ready["data"]["session_id"]
    with TestClient(create_app(settings)) as tc, tc.websocket_connect("/ws/session") as ws:
        init(ws, token, session_id=sid)  # a new process: the history comes from the database
        state = tc.get(f"/api/sessions/{sid}", headers={"Authorization": f"Bearer {token}"}).json()
        assert state["history"][0]["content"] == "hello\ufffdthere"


def test_replicas_on_sqlite_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="REPLICAS=3 needs PostgreSQL"):
        Settings(_env_file=None, data_dir=tmp_path, replicas=3)
    ok = Settings(_env_file=None, data_dir=tmp_path, replicas=3, database_url="postgresql://canopy@/canopy?host=/tmp")
    assert ok.clustered and ok.sqlalchemy_url.startswith("postgresql+asyncpg://")
    assert not Settings(_env_file=None, data_dir=tmp_path).clustered
