"""The real `make api` process: SIGKILL mid-session loses nothing acknowledged; SIGTERM closes sockets with 1001."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.helpers import ApiProcess

pytestmark = pytest.mark.timeout(120)


def token_for(api: ApiProcess, username: str) -> str:
    with httpx.Client(base_url=api.url) as c:
        c.post("/api/auth/register", json={"username": username, "password": "pw-first1"})
        return str(
            c.post("/api/auth/login", data={"username": username, "password": "pw-first1"}).json()["access_token"]
        )


def recv(ws: ClientConnection) -> dict[str, Any]:
    while True:  # presence and undo_state frames (unnumbered, on their own schedule) are not what these tests read
        frame: dict[str, Any] = json.loads(ws.recv(timeout=20))
        if frame["type"] not in ("presence", "undo_state"):
            return frame


def open_session(api: ApiProcess, token: str, **data: Any) -> tuple[ClientConnection, dict[str, Any]]:
    ws = connect(api.url.replace("http", "ws") + "/ws/session")
    ws.send(json.dumps({"type": "init_session", "data": {"token": token, **data}}))
    ready = recv(ws)
    assert ready["type"] == "session_ready"
    if not ready["data"]["replay"]:
        assert recv(ws)["type"] == "chat_history"
    return ws, ready


def test_sigkill_mid_session_keeps_every_acknowledged_change(tmp_path: Path) -> None:
    # Slow chunks keep the turn running while the process is killed.
    api = ApiProcess(tmp_path, {"OFFLINE_CHUNK_DELAY_MS": "400"})
    api.start()
    token = token_for(api, "dave")
    acknowledged: list[dict[str, Any]] = []
    try:
        ws, ready = open_session(api, token)
        sid = ready["data"]["session_id"]
        for i in range(5):
            node = {"id": f"n{i}", "value": f"Node {i}", "children": []}
            delta = {"action": "add", "path": "/root/children", "node": node}
            ws.send(json.dumps({"type": "tree_op", "data": {"delta": delta, "base_rev": i}}))
            acknowledged.append(recv(ws))
        ws.send(json.dumps({"type": "user_prompt", "data": {"prompt": "Add 'X', 'Y' and 'Z' under root"}}))
        while True:  # wait until the turn has changed the tree, then kill while it is still streaming text
            frame = recv(ws)
            if frame["type"] == "tree_update":
                acknowledged.append(frame)
            if frame["type"] == "assistant_response":
                break
        api.kill_worker_hard()
        with pytest.raises(ConnectionClosed):
            while True:
                recv(ws)
    finally:
        api.stop(signal.SIGKILL)
    assert [a["data"]["rev"] for a in acknowledged] == list(range(1, 9))
    last_seq = max(a["seq"] for a in acknowledged)

    restarted = ApiProcess(tmp_path, port=api.port)
    restarted.start()
    try:
        ws, ready = open_session(restarted, token, session_id=sid, last_seq=last_seq)
        tree = ready["data"]["initial_tree"]
        assert [c["value"] for c in tree["children"]] == [f"Node {i}" for i in range(5)] + ["X", "Y", "Z"]
        assert ready["data"]["rev"] == 8 and ready["data"]["seq"] >= last_seq
        # The interrupted turn is one change set: a single undo removes all three of its nodes.
        ws.send(json.dumps({"type": "undo", "data": {}}))
        assert [recv(ws)["data"]["delta"]["action"] for _ in range(3)] == ["remove"] * 3
        ws.close()
    finally:
        restarted.stop()


def test_sigterm_flushes_the_turn_and_closes_sockets_with_1001(tmp_path: Path) -> None:
    api = ApiProcess(tmp_path, {"OFFLINE_CHUNK_DELAY_MS": "400"})
    api.start()
    token = token_for(api, "erin")
    ws, ready = open_session(api, token)
    ws.send(json.dumps({"type": "user_prompt", "data": {"prompt": "add Flush to root"}}))
    while recv(ws)["type"] != "tree_update":
        pass
    assert api.stop(signal.SIGTERM) == 0
    frames = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            frames.append(recv(ws))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    final = [f for f in frames if f["type"] == "assistant_response" and not f["data"]["chunk"]]
    assert len(final) == 1 and final[0]["data"]["cancelled"] is True

    restarted = ApiProcess(tmp_path, port=api.port)
    restarted.start()
    try:
        with httpx.Client(base_url=restarted.url) as c:
            state = c.get(
                f"/api/sessions/{ready['data']['session_id']}", headers={"Authorization": f"Bearer {token}"}
            ).json()
        assert [m["role"] for m in state["history"]] == ["user", "assistant"]
        assert state["history"][1].get("cancelled") is True
        assert [n["value"] for n in state["tree"]["children"]] == ["Flush"]
    finally:
        restarted.stop()
