"""Import and export over REST against the real app and SQLite: round trips through all three formats,
one undoable change set seen live by an open tab, 422s that change nothing, limits before apply."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

from canopy.main import create_app
from tests.api.test_outline import XML_CHAR, tree_strategies, with_ids
from tests.conftest import make_settings
from tests.support.ws import login, recv, recv_until, session_socket

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    data = tmp_path_factory.mktemp("interchange")
    app = create_app(make_settings(data, offline_chunk_delay_ms=0, tree_max_nodes=2000, tree_max_depth=12))
    with TestClient(app, base_url="https://testserver") as tc:
        yield tc, data


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def plain(node: dict[str, Any]) -> dict[str, Any]:
    """A tree without ids: what a round trip must keep (values, props, order)."""
    return {"value": node["value"], "props": node.get("props") or {}, "children": [plain(c) for c in node["children"]]}


def state(tc: TestClient, token: str, session_id: str) -> dict[str, Any]:
    r = tc.get(f"/api/sessions/{session_id}", headers=auth(token))
    assert r.status_code == 200, r.text
    return dict(r.json())


def import_new(tc: TestClient, token: str, fmt: str, content: str, **extra: Any) -> dict[str, Any]:
    r = tc.post("/api/sessions/import", json={"format": fmt, "content": content, **extra}, headers=auth(token))
    assert r.status_code == 201, r.text
    return dict(r.json())


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(tree_strategies(XML_CHAR))
def test_export_then_import_keeps_values_props_and_order(
    app_client: tuple[TestClient, Path], node: dict[str, Any]
) -> None:
    tc, _ = app_client
    token = login(tc, "roundtrip")
    tree = with_ids(node)
    original = import_new(tc, token, "json", orjson.dumps({"tree": tree}).decode(), title="Original")
    assert plain(original["tree"]) == plain(tree)
    for fmt in ("json", "markdown", "opml"):
        r = tc.get(f"/api/sessions/{original['session_id']}/export", params={"format": fmt}, headers=auth(token))
        assert r.status_code == 200, r.text
        copy = import_new(tc, token, fmt, r.text)
        assert plain(copy["tree"]) == plain(original["tree"]), fmt
        assert copy["session_id"] != original["session_id"]


def test_export_answers_an_attachment_per_format(app_client: tuple[TestClient, Path]) -> None:
    tc, _ = app_client
    token = login(tc, "exporter")
    created = import_new(tc, token, "markdown", '# Plan\n- Design\n  priority:: "high"\n', title="My plan / v2")
    expected = {
        "json": ("application/json", ".json"),
        "markdown": ("text/markdown; charset=utf-8", ".md"),
        "opml": ("text/x-opml; charset=utf-8", ".opml"),
    }
    for fmt, (media, ext) in expected.items():
        r = tc.get(f"/api/sessions/{created['session_id']}/export", params={"format": fmt}, headers=auth(token))
        assert r.status_code == 200 and r.headers["content-type"] == media
        assert r.headers["content-disposition"] == f'attachment; filename="My-plan-v2{ext}"'
        assert "Design" in r.text
    assert '"priority":"high"' in tc.get(
        f"/api/sessions/{created['session_id']}/export", headers=auth(token)
    ).text.replace(" ", "")
    bad = tc.get(f"/api/sessions/{created['session_id']}/export", params={"format": "pdf"}, headers=auth(token))
    assert bad.status_code == 422
    other = login(tc, "someone-else")
    assert tc.get(f"/api/sessions/{created['session_id']}/export", headers=auth(other)).status_code == 404


def test_opml_export_refuses_control_characters_clearly(app_client: tuple[TestClient, Path]) -> None:
    tc, _ = app_client
    token = login(tc, "control")
    created = import_new(tc, token, "json", orjson.dumps({"value": "R", "children": [{"value": "a\x01b"}]}).decode())
    r = tc.get(f"/api/sessions/{created['session_id']}/export", params={"format": "opml"}, headers=auth(token))
    assert r.status_code == 409 and "U+0001" in r.json()["detail"]


def test_import_into_a_node_is_one_undoable_change_set_seen_live(app_client: tuple[TestClient, Path]) -> None:
    tc, data = app_client
    token = login(tc, "importer")
    with session_socket(tc, token) as (ws, ready):
        session_id = ready["data"]["session_id"]
        ws.send_json(
            {
                "type": "tree_op",
                "data": {
                    "base_rev": ready["data"]["rev"],
                    "delta": {"action": "add", "path": "/root/children", "node": {"id": "tasks", "value": "Tasks"}},
                },
            }
        )
        recv_until(ws, "tree_update")
        r = tc.post(
            f"/api/sessions/{session_id}/import",
            headers=auth(token),
            json={"format": "markdown", "parent_id": "tasks", "content": "- A\n  - A1\n- B\n  done:: true\n"},
        )
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["added"] == 3 and len(result["ids"]) == 2
        updates = [recv(ws), recv(ws)]
        assert [u["data"]["delta"]["node"]["value"] for u in updates] == ["A", "B"]
        assert {u["data"]["origin"] for u in updates} == {"user"} and updates[-1]["data"]["rev"] == result["rev"]
        tasks = state(tc, token, session_id)["tree"]["children"][0]
        assert plain(tasks)["children"] == [
            {"value": "A", "props": {}, "children": [{"value": "A1", "props": {}, "children": []}]},
            {"value": "B", "props": {"done": True}, "children": []},
        ]
        ws.send_json({"type": "undo", "data": {}})
        undone = [recv(ws), recv(ws)]
        assert {u["data"]["origin"] for u in undone} == {"undo"}
    assert state(tc, token, session_id)["tree"]["children"][0]["children"] == []
    with sqlite3.connect(data / "canopy.db") as db:
        sets = db.execute(
            "SELECT actor_via, actor_name FROM change_sets WHERE session_id = ? ORDER BY number", (session_id,)
        ).fetchall()
    assert sets[-1] == ("import", "markdown")


@pytest.mark.parametrize(
    ("fmt", "content", "where"),
    [
        ("markdown", "- a\n  - b\nnot a bullet\n", {"line": 3}),
        (
            "opml",
            "<opml><body><outline text='a'><outline/></outline></body></opml>",
            {"element": "/opml/body/outline[1]/outline[1]"},
        ),
        ("json", '{"tree": {"value": "R", "children": [{"value": 3}]}}', {"element": "$.tree.children[0]"}),
        ("json", '{"tree": ', {"line": 1}),
    ],
)
def test_a_bad_file_is_422_with_where_and_changes_nothing(
    app_client: tuple[TestClient, Path], fmt: str, content: str, where: dict[str, Any]
) -> None:
    tc, _ = app_client
    token = login(tc, "badfiles")
    session_id = tc.post("/api/sessions", json={}, headers=auth(token)).json()["session_id"]
    before = state(tc, token, session_id)
    listed = len(tc.get("/api/sessions", headers=auth(token)).json())
    r = tc.post(
        f"/api/sessions/{session_id}/import",
        json={"format": fmt, "content": content, "parent_id": "root"},
        headers=auth(token),
    )
    assert r.status_code == 422
    body = r.json()
    assert {k: body[k] for k in where} == where and body["detail"] and body["reason"]
    r = tc.post("/api/sessions/import", json={"format": fmt, "content": content}, headers=auth(token))
    assert r.status_code == 422 and {k: r.json()[k] for k in where} == where
    assert state(tc, token, session_id) == before
    assert len(tc.get("/api/sessions", headers=auth(token)).json()) == listed


def test_limits_are_checked_before_anything_is_applied(app_client: tuple[TestClient, Path]) -> None:
    tc, _ = app_client  # the app allows 2000 nodes and 12 levels
    token = login(tc, "limits")
    created = import_new(tc, token, "markdown", "".join(f"- n{i}\n" for i in range(1500)))
    session_id = created["session_id"]
    before = state(tc, token, session_id)
    r = tc.post(
        f"/api/sessions/{session_id}/import",
        headers=auth(token),
        json={"format": "markdown", "parent_id": "root", "content": "".join(f"- m{i}\n" for i in range(600))},
    )
    assert r.status_code == 422 and "exceed 2000 nodes" in r.json()["detail"]
    deep = "".join("  " * i + f"- d{i}\n" for i in range(11))  # 11 levels under a node at depth 2: 13 > 12
    r = tc.post(
        f"/api/sessions/{session_id}/import",
        headers=auth(token),
        json={"format": "markdown", "parent_id": before["tree"]["children"][0]["id"], "content": deep},
    )
    assert r.status_code == 422 and "the limit is 12" in r.json()["detail"]
    too_deep = "".join("  " * i + f"- d{i}\n" for i in range(12))
    r = tc.post("/api/sessions/import", headers=auth(token), json={"format": "markdown", "content": too_deep})
    assert r.status_code == 422 and r.json()["line"] == 12
    assert state(tc, token, session_id) == before


def test_import_bodies_are_validated(app_client: tuple[TestClient, Path]) -> None:
    tc, _ = app_client
    token = login(tc, "bodies")
    session_id = tc.post("/api/sessions", json={}, headers=auth(token)).json()["session_id"]
    for body in (
        {"format": "docx", "content": "x"},
        {"content": "- a"},
        {"format": "json"},
        {"format": "json", "content": "{}", "extra": 1},
    ):
        assert tc.post("/api/sessions/import", json=body, headers=auth(token)).status_code == 422
    r = tc.post(
        f"/api/sessions/{session_id}/import",
        headers=auth(token),
        json={"format": "markdown", "content": "- a\n", "parent_id": "nope"},
    )
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    other = login(tc, "bodies-other")
    r = tc.post(
        f"/api/sessions/{session_id}/import", headers=auth(other), json={"format": "markdown", "content": "- a\n"}
    )
    assert r.status_code == 404
