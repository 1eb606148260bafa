"""How many SQL statements a socket's attach runs (auth + init_session), over the real app on SQLite
and PostgreSQL.

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
from tests.support.ws import Frame, collect_turn, init, login, recv, recv_until

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


@contextmanager
def statements(tc: TestClient) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = services_of(tc).engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def services_of(tc: TestClient) -> Services:
    services: Services = tc.app.state.services  # type: ignore[attr-defined]
    return services


def attach(tc: TestClient, token: str, **data: Any) -> tuple[dict[str, Any], list[str]]:
    """Opens a socket with the token in the URL, sends init_session, waits for its answer; returns
    session_ready and the statements run from the handshake to the answer."""
    with statements(tc) as seen, tc.websocket_connect(f"/ws/session?token={token}") as ws:
        ready = init(ws, **data)
        ran = list(seen)
    return ready, ran


def snapshot(ws: Any) -> Frame:
    ws.send_json({"type": "resync", "id": "snap", "data": {}})
    data: Frame = recv_until(ws, "tree_snapshot")[-1]["data"]
    return data


def within(ran: list[str], budget: int, claims: int = 0) -> None:
    """At most `budget` statements, besides `claims` lease claims (PostgreSQL runs replicas: a session
    is claimed before it is loaded or made; see canopy/cluster/ownership.py)."""
    leases = [statement for statement in ran if "session_leases" in statement]
    assert len(leases) == claims, leases
    rest = [statement for statement in ran if statement not in leases]
    assert len(rest) <= budget, f"{len(rest)} statements (budget {budget}):\n" + "\n".join(rest)


@pytest.fixture
def attach_settings(tmp_path: Path, database_url: str) -> Settings:
    # Leases renew every lease_seconds / 3 on PostgreSQL: long enough that no renewal lands in a count.
    return make_settings(tmp_path, offline_chunk_delay_ms=0, database_url=database_url, lease_seconds=300)


def app(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), base_url="https://testserver")


@pytest.mark.backends("sqlite", "postgres")
def test_attaching_a_session_in_memory(attach_settings: Settings, backend: str) -> None:
    claim = 1 if backend == "postgres" else 0
    with app(attach_settings) as tc:
        token = login(tc, "alice")
        first, ran = attach(tc, token)
        within(ran, NEW_USER_FIRST_ATTACH, claim)
        again, ran = attach(tc, token)
        assert again["data"]["session_id"] == first["data"]["session_id"]
        within(ran, REATTACH_IN_MEMORY)
        again, ran = attach(tc, token, session_id=first["data"]["session_id"])
        assert again["data"]["session_id"] == first["data"]["session_id"]
        within(ran, REATTACH_IN_MEMORY_BY_ID)


def prompt(ws: Any, text: str, frame_id: str) -> list[Frame]:
    ws.send_json({"type": "user_prompt", "id": frame_id, "data": {"prompt": text}})
    return collect_turn(ws)


def fill(tc: TestClient, sid: str, alice: str, bob: str) -> tuple[dict[str, Any], str]:
    """bob (editor) edits and prompts, then in review mode gets one proposal accepted and leaves one open.
    Returns the open proposal and the decided one's id."""
    with tc.websocket_connect(f"/ws/session?token={bob}") as ws:
        init(ws, session_id=sid)
        ws.send_json({"type": "tree_op", "id": "op", "data": {"base_rev": 0, "delta": ADD_A}})
        recv_until(ws, "tree_update")
        prompt(ws, "add B to root", "p1")
        r = tc.patch(f"/api/sessions/{sid}", json={"review_mode": True}, headers=bearer(alice))
        assert r.status_code == 200
        proposals = []
        for i, text in enumerate(("add C to root", "add D to root")):
            made = [f for f in prompt(ws, text, f"r{i}") if f["type"] == "proposal"]
            assert len(made) == 1
            proposals.append(made[0]["data"]["proposal"])
        decision = {"proposal_id": proposals[0]["id"], "accept": "all"}
        ws.send_json({"type": "proposal_decision", "id": "d", "data": decision})
        while (frame := recv(ws))["type"] != "proposal_resolved":
            assert frame["type"] != "error", frame
    return dict(proposals[1]), str(proposals[0]["id"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.backends("sqlite", "postgres")
def test_attaching_a_stored_session(attach_settings: Settings, backend: str) -> None:
    claim = 1 if backend == "postgres" else 0
    with app(attach_settings) as tc:
        alice, bob = login(tc, "alice"), login(tc, "bob")
        created, _ = attach(tc, alice)
        sid = created["data"]["session_id"]
        r = tc.post(f"/api/sessions/{sid}/members", json={"username": "bob", "role": "editor"}, headers=bearer(alice))
        assert r.status_code == 201
    with app(attach_settings) as tc:
        # The session made on the first attach (never read back) is what a load reads: same session_ready.
        loaded, _ = attach(tc, alice, session_id=sid)
        assert loaded["data"] == created["data"]
        still_open, decided = fill(tc, sid, alice, bob)
        with tc.websocket_connect(f"/ws/session?token={alice}") as ws:
            init(ws, session_id=sid)
            tree = snapshot(ws)
    assert [c["value"] for c in tree["tree"]["children"]] == ["A", "B", "C"]
    for case, budget in (("by id", ATTACH_STORED_BY_ID), ("most recent", ATTACH_STORED_MOST_RECENT)):
        # A new app on the same database: nothing in memory.
        with app(attach_settings) as tc:
            ready, ran = attach(tc, alice, **({"session_id": sid} if case == "by id" else {}))
            within(ran, budget, claim)
            data = ready["data"]
            assert (data["session_id"], data["role"], data["review_mode"]) == (sid, "owner", True)
            assert (data["initial_tree"], data["rev"]) == (tree["tree"], tree["rev"])
            assert data["proposals"] == [still_open]  # the decided one is not offered again
    with app(attach_settings) as tc:
        ready, ran = attach(tc, bob, session_id=sid)
        within(ran, MEMBER_ATTACH_STORED, claim)
        assert ready["data"]["role"] == "editor" and ready["data"]["owner"] == "alice"
        with tc.websocket_connect(f"/ws/session?token={bob}") as ws:  # the load knew it was decided
            init(ws, session_id=sid)
            ws.send_json({"type": "proposal_decision", "id": "d", "data": {"proposal_id": decided, "accept": "all"}})
            assert recv(ws)["error"] == {"code": 409, "message": "Proposal already decided"}


def test_a_users_stored_size_is_one_statement(attach_settings: Settings) -> None:
    """The storage quota's recount (a user's first prompt or edit, then once a minute)."""
    with app(attach_settings) as tc:
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
        with statements(tc) as ran:
            size = portal.call(manager.store.stored_size, user_id)
        assert (size, len(ran)) == (sum(parts), 1)
