"""The session's one entry point, end to end over the real app and SQLite: change sets record their
actor, `session_ready` tells the client the server's limits, REST errors come from one handler."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from canopy.main import create_app
from canopy.protocol import PROTOCOL_VERSION
from tests.conftest import make_settings
from tests.support.ws import collect_turn, login, recv_until, session_socket

pytestmark = pytest.mark.timeout(60)


def test_change_sets_record_who_made_them(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, offline_chunk_delay_ms=0)
    with TestClient(create_app(settings), base_url="https://testserver") as tc:
        token = login(tc, "alice")
        with session_socket(tc, token) as (ws, ready):
            ws.send_json(
                {
                    "type": "tree_op",
                    "data": {
                        "base_rev": 0,
                        "delta": {"action": "add", "path": "/root/children", "node": {"id": "a", "value": "A"}},
                    },
                }
            )
            recv_until(ws, "tree_update")
            ws.send_json({"type": "user_prompt", "data": {"prompt": "add X to root"}})
            collect_turn(ws)
        session_id = ready["data"]["session_id"]
    with sqlite3.connect(tmp_path / "canopy.db") as db:
        (user_id,) = db.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()
        sets = db.execute(
            "SELECT origin, actor_user_id, actor_via FROM change_sets WHERE session_id = ? ORDER BY number",
            (session_id,),
        ).fetchall()
    assert sets == [("user", user_id, "user"), ("assistant", user_id, "assistant")]


def test_session_ready_carries_the_protocol_version_and_the_configured_limits(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tree_max_depth=7, tree_max_nodes=321)
    with TestClient(create_app(settings), base_url="https://testserver") as tc:
        token = login(tc)
        with session_socket(tc, token) as (_ws, ready):
            data = ready["data"]
    assert data["protocol_version"] == PROTOCOL_VERSION
    assert data["limits"]["max_depth"] == 7 and data["limits"]["max_nodes"] == 321
    assert data["limits"]["max_value_chars"] == 500


def test_rest_session_errors_come_from_the_one_handler(tc: TestClient) -> None:
    alice = {"Authorization": f"Bearer {login(tc, 'alice')}"}
    bob = {"Authorization": f"Bearer {login(tc, 'bob')}"}
    r = tc.post("/api/sessions", json={"title": "Mine"}, headers=alice)
    assert r.status_code == 201
    sid = r.json()["session_id"]
    for method, body in (("GET", None), ("PATCH", {"title": "Taken"}), ("DELETE", None)):
        r = tc.request(method, f"/api/sessions/{sid}", json=body, headers=bob)
        assert (r.status_code, r.json()) == (404, {"detail": "Session not found"}), method
    r = tc.get(f"/api/sessions/{sid}", headers=alice)
    assert r.status_code == 200 and r.json()["title"] == "Mine"
