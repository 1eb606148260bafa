"""The AG-UI endpoint against the real app (offline assistant, SQLite): event order, state snapshot plus
JSON Patch deltas equal to the tree, tool calls, a second run during a turn, auth and bad input.
(The official @ag-ui/client runs against the whole stack in tests/stack/test_node_clients.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from canopy.agents.agui_state import TreeState
from canopy.main import create_app
from tests.conftest import make_settings
from tests.support.ws import collect_turn, login, recv, session_socket

pytestmark = pytest.mark.timeout(120)


def run_input(prompt: str, **extra: Any) -> dict[str, Any]:
    return {
        "threadId": "t1",
        "runId": "r1",
        "state": {},
        "tools": [],
        "context": [],
        "forwardedProps": {},
        "messages": [
            {"id": "m0", "role": "assistant", "content": "Hello"},
            {"id": "m1", "role": "user", "content": prompt},
        ],
        **extra,
    }


def run(tc: TestClient, token: str, session_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with tc.stream(
        "POST",
        f"/api/agui/sessions/{session_id}",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
    ) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    return [json.loads(chunk.removeprefix("data: ")) for chunk in text.split("\n\n") if chunk.strip()]


def unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def apply_patch(doc: Any, patch: list[dict[str, Any]]) -> None:
    """RFC 6902 add/remove/replace, enough to replay the server's deltas independently of its code."""
    for op in patch:
        *parents, last = [unescape(p) for p in op["path"].split("/")[1:]]
        target = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            if op["op"] == "add":
                target.insert(int(last), op["value"])
            elif op["op"] == "remove":
                del target[int(last)]
            else:
                target[int(last)] = op["value"]
        elif op["op"] == "remove":
            del target[last]
        else:
            target[last] = op["value"]


@pytest.fixture
def tc(tmp_path: Path) -> Any:
    with TestClient(create_app(make_settings(tmp_path, offline_chunk_delay_ms=0)), base_url="https://testserver") as c:
        yield c


def test_a_run_streams_state_tool_calls_and_text_and_ends_the_tree(tc: TestClient) -> None:
    access = login(tc)
    session_id = tc.post("/api/sessions", json={}, headers={"Authorization": f"Bearer {access}"}).json()["session_id"]
    pat = tc.post(
        "/api/tokens", json={"name": "Copilot", "scope": "write"}, headers={"Authorization": f"Bearer {access}"}
    ).json()["token"]
    events = run(tc, pat, session_id, run_input("Add 'Design', 'Build' and 'Launch' under root"))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "RUN_STARTED" and kinds[1] == "STATE_SNAPSHOT" and kinds[-1] == "RUN_FINISHED"
    assert events[0]["threadId"] == "t1" and events[0]["runId"] == "r1"
    assert kinds.count("TOOL_CALL_START") == 3 == kinds.count("TOOL_CALL_END") == kinds.count("TOOL_CALL_RESULT")
    assert "TEXT_MESSAGE_START" in kinds and kinds.count("TEXT_MESSAGE_START") == kinds.count("TEXT_MESSAGE_END")
    args = [json.loads(e["delta"]) for e in events if e["type"] == "TOOL_CALL_ARGS"]
    assert [a["node"]["value"] for a in args] == ["Design", "Build", "Launch"]
    state = events[1]["snapshot"]
    for event in events:
        if event["type"] == "STATE_DELTA":
            apply_patch(state, event["delta"])
    tree = tc.get(f"/api/sessions/{session_id}", headers={"Authorization": f"Bearer {access}"}).json()
    assert state == TreeState(tree["tree"], tree["rev"]).snapshot()
    assert [state["nodes"][c]["value"] for c in state["nodes"]["root"]["children"]] == ["Design", "Build", "Launch"]


def test_state_deltas_follow_moves_updates_and_removals() -> None:
    state = TreeState(
        {
            "id": "root",
            "value": "R",
            "children": [
                {
                    "id": "a",
                    "value": "A",
                    "props": {"k/~": 1},
                    "children": [{"id": "a1", "value": "A1", "children": []}],
                },
                {"id": "b", "value": "B", "children": []},
            ],
        },
        1,
    )
    doc = state.snapshot()
    deltas: list[dict[str, Any]] = [
        {"action": "move", "path": "/root/a", "to": "/root/b/children", "index": 0},
        {"action": "update", "path": "/root/b/a", "fields": {"value": "A!", "props": {"k/~": None, "n": 2}}},
        {
            "action": "add",
            "path": "/root/children",
            "index": 0,
            "node": {"id": "c", "value": "C", "children": [{"id": "c1", "value": "C1", "children": []}]},
        },
        {"action": "remove", "path": "/root/b"},
    ]
    for rev, delta in enumerate(deltas, start=2):
        apply_patch(doc, state.apply(delta, rev))
    assert doc == state.snapshot()
    assert doc["rev"] == 5 and doc["nodes"]["root"]["children"] == ["c"] and set(doc["nodes"]) == {"root", "c", "c1"}


def test_a_second_run_during_a_turn_fails_cleanly(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, offline_chunk_delay_ms=300)
    with TestClient(create_app(settings), base_url="https://testserver") as tc:
        access = login(tc)
        with session_socket(tc, access) as (ws, ready):
            session_id = ready["data"]["session_id"]
            ws.send_json({"type": "user_prompt", "data": {"prompt": "Add 'A', 'B' and 'C' under root"}})
            while recv(ws)["type"] != "assistant_response":  # the turn is running
                pass
            events = run(tc, access, session_id, run_input("Add 'D' under root"))
            assert [e["type"] for e in events] == ["RUN_STARTED", "STATE_SNAPSHOT", "RUN_ERROR"]
            assert events[-1]["code"] == "409" and "already running" in events[-1]["message"]
            collect_turn(ws)


def test_auth_scopes_and_bad_input(tc: TestClient) -> None:
    access = login(tc)
    headers = {"Authorization": f"Bearer {access}"}
    mine = tc.post("/api/sessions", json={}, headers=headers).json()["session_id"]
    other = tc.post("/api/sessions", json={}, headers=headers).json()["session_id"]
    read = tc.post("/api/tokens", json={"name": "r", "scope": "read"}, headers=headers).json()["token"]
    limited = tc.post("/api/tokens", json={"name": "l", "scope": "write", "session_id": other}, headers=headers).json()[
        "token"
    ]
    url = f"/api/agui/sessions/{mine}"
    for token, code in ((None, 401), ("cnp_nope", 401), ("not-a-jwt", 401), (read, 403), (limited, 403)):
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        assert tc.post(url, json=run_input("hi"), headers=auth).status_code == code
    assert tc.post("/api/agui/sessions/nope", json=run_input("hi"), headers=headers).status_code == 404
    for body in (
        run_input(""),
        run_input("x" * 4001),
        {"threadId": "t"},
        {**run_input("hi"), "messages": [{"id": "1", "role": "assistant", "content": "only me"}]},
    ):
        r = tc.post(url, json=body, headers=headers)
        assert r.status_code == 422, r.text
    assert tc.get(f"/api/sessions/{mine}", headers=headers).json()["history"] == []
