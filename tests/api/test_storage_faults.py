"""Storage faults: a locked database gives a clean error 500, changes nothing, and the session recovers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from canopy.main import create_app
from tests.conftest import make_settings
from tests.support.ws import login as login_user
from tests.support.ws import node_values, recv, session_socket

pytestmark = pytest.mark.timeout(60)


def add(node_id: str, value: str, base_rev: int) -> dict[str, object]:
    node = {"id": node_id, "value": value, "children": []}
    return {
        "type": "tree_op",
        "data": {"delta": {"action": "add", "path": "/root/children", "node": node}, "base_rev": base_rev},
    }


def test_locked_database_refuses_the_change_cleanly_and_recovers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings)) as tc:
        token = login_user(tc)
        with session_socket(tc, token) as (ws, ready):
            ws.send_json(add("a", "A", 0))
            assert recv(ws)["data"]["rev"] == 1
            seq_before = ready["data"]["seq"] + 1
            blocker = sqlite3.connect(tmp_path / "canopy.db", timeout=0)
            blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock past busy_timeout
            try:
                ws.send_json({**add("b", "B", 1), "id": "blocked"})
                err = recv(ws)
                assert err["type"] == "error" and err["error"]["code"] == 500 and err["id"] == "blocked"
                assert "not applied" in err["error"]["message"]
                ws.send_json({"type": "resync", "data": {}})
                snap = recv(ws)
                assert snap["data"]["rev"] == 1 and node_values(snap["data"]["tree"]) == ["A"]
            finally:
                blocker.rollback()
                blocker.close()
            ws.send_json(add("b", "B", 1))
            update = recv(ws)
            assert update["data"]["rev"] == 2 and update["seq"] == seq_before + 1  # nothing was broadcast meanwhile
    with TestClient(create_app(settings)) as tc, session_socket(tc, token) as (_, again):
        assert node_values(again["data"]["initial_tree"]) == ["A", "B"] and again["data"]["rev"] == 2
