"""How many SQL statements a socket's attach runs (auth + init_session), over the real app and SQLite.

Each statement costs the event loop SQLAlchemy's statement handling and a hop to the driver's thread;
attaches come in bursts (every tab reconnecting after a deploy). The budgets below are what the code
reaches today (docs/benchmarks.md, notes): a change that adds a query to this path fails here, and
says which statements ran.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from canopy.config import Settings
from canopy.main import create_app
from canopy.services import Services
from tests.conftest import make_settings
from tests.support.ws import Frame, collect_turn, init, login, recv_until

pytestmark = pytest.mark.timeout(60)

# Statements per attach (BEGIN/COMMIT not counted: SQLAlchemy's cursor events do not see them). Before
# these budgets (commit 7516b62) the same cases ran 15, 2, 1, 13, 14 and 13.
NEW_USER_FIRST_ATTACH = 3  # token check, most recent (none), insert: the new session is not read back
REATTACH_IN_MEMORY = 2  # token check, most recent (in memory)
REATTACH_IN_MEMORY_BY_ID = 1  # token check
# token check, then access check (by id) or most recent (own), then the load: row, change sets, changes,
# messages, access, proposals
ATTACH_STORED_BY_ID = 8
ATTACH_STORED_MOST_RECENT = 8
MEMBER_ATTACH_STORED = 8


ADD_A = {"action": "add", "path": "/root/children", "node": {"id": "a", "value": "A"}}
# The storage quota's three measures, written independently of the app's query.
SIZES = (
    "SELECT sum(length(snapshot)) FROM sessions WHERE user_id = ?",
    "SELECT sum(length(delta) + length(inverse)) FROM changes JOIN sessions ON sessions.id = changes.session_id"
    " WHERE sessions.user_id = ?",
    "SELECT sum(length(content) + coalesce(length(meta), 0)) FROM messages"
    " JOIN sessions ON sessions.id = messages.session_id WHERE sessions.user_id = ?",
)


class Statements:
    """The SQL statements the app's engine runs while `recording()` is open."""

    def __init__(self, services: Services) -> None:
        self.seen: list[str] = []
        self._on = False
        event.listen(services.engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self._on:
            self.seen.append(" ".join(statement.split()))

    @contextmanager
    def recording(self) -> Iterator[list[str]]:
        self.seen = []
        self._on = True
        try:
            yield self.seen
        finally:
            self._on = False


def services_of(tc: TestClient) -> Services:
    services: Services = tc.app.state.services  # type: ignore[attr-defined]
    return services


def attach(tc: TestClient, token: str, **data: Any) -> tuple[dict[str, Any], list[str]]:
    """Opens a socket with the token in the URL, sends init_session, waits for its answer; returns
    session_ready and the statements run from the handshake to the answer."""
    statements = Statements(services_of(tc))
    with statements.recording() as seen, tc.websocket_connect(f"/ws/session?token={token}") as ws:
        ready = init(ws, **data)
        ran = list(seen)
    return ready, ran


def snapshot(ws: Any) -> Frame:
    ws.send_json({"type": "resync", "id": "snap", "data": {}})
    data: Frame = recv_until(ws, "tree_snapshot")[-1]["data"]
    return data


def within(ran: list[str], budget: int) -> None:
    assert len(ran) <= budget, f"{len(ran)} statements (budget {budget}):\n" + "\n".join(ran)


@pytest.fixture
def attach_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, offline_chunk_delay_ms=0)


def test_attaching_a_session_in_memory(attach_settings: Settings) -> None:
    with TestClient(create_app(attach_settings), base_url="https://testserver") as tc:
        token = login(tc, "alice")
        first, ran = attach(tc, token)
        within(ran, NEW_USER_FIRST_ATTACH)
        again, ran = attach(tc, token)
        assert again["data"]["session_id"] == first["data"]["session_id"]
        within(ran, REATTACH_IN_MEMORY)
        again, ran = attach(tc, token, session_id=first["data"]["session_id"])
        assert again["data"]["session_id"] == first["data"]["session_id"]
        within(ran, REATTACH_IN_MEMORY_BY_ID)


def test_attaching_a_stored_session(attach_settings: Settings) -> None:
    with TestClient(create_app(attach_settings), base_url="https://testserver") as tc:
        alice, bob = login(tc, "alice"), login(tc, "bob")
        created, _ = attach(tc, alice)
        sid = created["data"]["session_id"]
        r = tc.post(
            f"/api/sessions/{sid}/members",
            json={"username": "bob", "role": "editor"},
            headers={"Authorization": f"Bearer {alice}"},
        )
        assert r.status_code == 201
    with TestClient(create_app(attach_settings), base_url="https://testserver") as tc:
        # The session made on the first attach (never read back) is what a load reads: same session_ready.
        loaded, _ = attach(tc, alice, session_id=sid)
        assert loaded["data"] == created["data"]
        with tc.websocket_connect(f"/ws/session?token={bob}") as ws:  # a change set, a prompt, messages
            init(ws, session_id=sid)
            ws.send_json({"type": "tree_op", "id": "op", "data": {"base_rev": 0, "delta": ADD_A}})
            recv_until(ws, "tree_update")
            ws.send_json({"type": "user_prompt", "id": "p", "data": {"prompt": "add B to root"}})
            collect_turn(ws)
            tree = snapshot(ws)
    for case, budget in (("by id", ATTACH_STORED_BY_ID), ("most recent", ATTACH_STORED_MOST_RECENT)):
        # A new app on the same database: nothing in memory.
        with TestClient(create_app(attach_settings), base_url="https://testserver") as tc:
            ready, ran = attach(tc, alice, **({"session_id": sid} if case == "by id" else {}))
            assert ready["data"]["session_id"] == sid and ready["data"]["role"] == "owner"
            assert (ready["data"]["initial_tree"], ready["data"]["rev"]) == (tree["tree"], tree["rev"])
            within(ran, budget)
    with TestClient(create_app(attach_settings), base_url="https://testserver") as tc:
        ready, ran = attach(tc, bob, session_id=sid)
        assert ready["data"]["role"] == "editor" and ready["data"]["owner"] == "alice"
        within(ran, MEMBER_ATTACH_STORED)


def test_a_users_stored_size_is_one_statement(attach_settings: Settings) -> None:
    """The storage quota's recount (a user's first prompt or edit, then once a minute)."""
    with TestClient(create_app(attach_settings), base_url="https://testserver") as tc:
        token = login(tc, "alice")
        with tc.websocket_connect(f"/ws/session?token={token}") as ws:
            init(ws)
            ws.send_json({"type": "user_prompt", "id": "p", "data": {"prompt": "add B to root"}})
            collect_turn(ws)
        with sqlite3.connect(attach_settings.data_dir / "canopy.db") as db:
            (user_id,) = db.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()
            parts = [db.execute(query, (user_id,)).fetchone()[0] for query in SIZES]
        assert all(part > 0 for part in parts), parts  # a snapshot, changes and messages, each counted
        manager, portal = services_of(tc).sessions, tc.portal
        assert manager is not None and portal is not None
        with Statements(services_of(tc)).recording() as ran:
            size = portal.call(manager.store.stored_size, user_id)
        assert (size, len(ran)) == (sum(parts), 1)
