"""Per-user and per-address quotas (issue #12, finding 4), over the real app and SQLite.

Each test goes one request past a limit: it gets the documented error naming the limit, and
nothing changes (the session list, the tree and its rev, the open sockets).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from canopy.main import create_app
from canopy.realtime.replay import ReplayBuffer
from tests.conftest import make_settings
from tests.support.ws import Frame, init, login, recv, recv_until


@contextmanager
def client(tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, offline_chunk_delay_ms=0, **overrides)
    with TestClient(create_app(settings), base_url="https://testserver") as tc:
        yield tc


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _session_ids(tc: TestClient, token: str) -> list[str]:
    r = tc.get("/api/sessions", headers=_auth(token))
    assert r.status_code == 200
    return sorted(s["session_id"] for s in r.json())


def _refused_then_closed(ws: Any, code: int, names: str) -> Frame:
    error = recv(ws)
    assert error["type"] == "error" and error["error"]["code"] == code, error
    assert names in error["error"]["message"]
    try:
        ws.receive_json()
        raise AssertionError("the socket stayed open")
    except WebSocketDisconnect as exc:
        assert exc.code == 1013
    return error


def _tree_op(ws: Any, delta: dict[str, Any], fid: str) -> Frame:
    ws.send_json({"type": "tree_op", "id": fid, "data": {"base_rev": 0, "delta": delta}})
    return _answer(ws, fid)


def _answer(ws: Any, fid: str) -> Frame:
    while True:
        frame = recv(ws)
        if frame.get("id") == fid and frame["type"] in ("tree_update", "error"):
            return frame


def _snapshot(ws: Any) -> Frame:
    ws.send_json({"type": "resync", "id": "snap", "data": {}})
    snapshot: Frame = recv_until(ws, "tree_snapshot")[-1]["data"]
    return snapshot


def _add(nid: str, value: str) -> dict[str, Any]:
    return {"action": "add", "path": "/root/children", "node": {"id": nid, "value": value}}


def test_sessions_per_user_past_the_limit_is_409_and_creates_nothing(tmp_path: Path) -> None:
    with client(tmp_path, max_sessions_per_user=3, sessions_created_per_minute=100) as tc:
        token = login(tc)
        for _ in range(3):
            assert tc.post("/api/sessions", headers=_auth(token), json={}).status_code == 201
        before = _session_ids(tc, token)
        r = tc.post("/api/sessions", headers=_auth(token), json={"title": "one too many"})
        assert r.status_code == 409 and "MAX_SESSIONS_PER_USER" in r.json()["detail"], r.text
        assert _session_ids(tc, token) == before
        # another user has their own allowance; deleting one makes room again
        assert tc.post("/api/sessions", headers=_auth(login(tc, "bob")), json={}).status_code == 201
        assert tc.delete(f"/api/sessions/{before[0]}", headers=_auth(token)).status_code == 204
        assert tc.post("/api/sessions", headers=_auth(token), json={}).status_code == 201


def test_session_creation_rate_past_the_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    with client(tmp_path, sessions_created_per_minute=2) as tc:
        token = login(tc)
        for _ in range(2):
            assert tc.post("/api/sessions", headers=_auth(token), json={}).status_code == 201
        before = _session_ids(tc, token)
        r = tc.post("/api/sessions", headers=_auth(token), json={})
        assert r.status_code == 429 and "SESSIONS_CREATED_PER_MINUTE" in r.json()["detail"], r.text
        assert 1 <= int(r.headers["Retry-After"]) <= 61
        assert _session_ids(tc, token) == before


def test_sockets_per_user_past_the_limit_get_429_then_1013(tmp_path: Path) -> None:
    with client(tmp_path, ws_max_sockets_per_user=2) as tc:
        token, bob = login(tc), login(tc, "bob")
        with tc.websocket_connect("/ws/session") as first, tc.websocket_connect("/ws/session") as second:
            init(first, token)
            init(second, token)
            with tc.websocket_connect("/ws/session") as third:
                third.send_json({"type": "init_session", "id": "i", "data": {"token": token}})
                error = _refused_then_closed(third, 429, "WS_MAX_SOCKETS_PER_USER")
                assert error["id"] == "i"
            with tc.websocket_connect(f"/ws/session?token={token}") as by_query:
                _refused_then_closed(by_query, 429, "WS_MAX_SOCKETS_PER_USER")
            # the open ones are untouched, another user is not affected
            first.send_json({"type": "ping", "id": "p", "data": {}})
            assert recv(first)["type"] == "pong"
            with tc.websocket_connect("/ws/session") as other:
                init(other, bob)
        # closed sockets give their places back
        with tc.websocket_connect("/ws/session") as again:
            init(again, token)


def test_unauthenticated_sockets_per_address_past_the_limit_get_429_then_1013(tmp_path: Path) -> None:
    with client(tmp_path, ws_max_unauthenticated_per_ip=2) as tc:
        token = login(tc)
        with tc.websocket_connect("/ws/session") as a, tc.websocket_connect("/ws/session") as b:
            with tc.websocket_connect("/ws/session") as c:
                _refused_then_closed(c, 429, "WS_MAX_UNAUTHENTICATED_PER_IP")
            init(a, token)  # authenticating frees its unauthenticated place
            with tc.websocket_connect("/ws/session") as d:
                init(d, token)
            b.send_json({"type": "ping", "id": "p", "data": {}})
            assert recv(b)["type"] == "pong"


def test_tree_bytes_past_the_limit_is_409_and_changes_nothing(tmp_path: Path) -> None:
    with client(tmp_path, tree_max_bytes=4096) as tc, tc.websocket_connect("/ws/session") as ws:
        init(ws, login(tc))
        assert _tree_op(ws, _add("a", "x" * 400), "ok")["type"] == "tree_update"
        before = _snapshot(ws)
        ops = [_add(f"n{i}", "y" * 400) for i in range(10)]
        answers = [_tree_op(ws, op, f"op{i}") for i, op in enumerate(ops)]
        refused = [a for a in answers if a["type"] == "error"]
        assert refused and all(a["error"]["code"] == 409 for a in refused)
        assert "TREE_MAX_BYTES" in refused[0]["error"]["message"]
        after = _snapshot(ws)
        assert after["rev"] == before["rev"] + len(answers) - len(refused)
        grown = len(str(after["tree"]))
        # the refused one changed nothing: one more try is refused again and the tree is the same
        again = _tree_op(ws, _add("late", "z" * 400), "late")
        assert again["type"] == "error" and again["error"]["code"] == 409
        assert _snapshot(ws) == after and grown < 4096 + 500


def test_replay_buffer_is_bounded_in_bytes(tmp_path: Path) -> None:
    buffer = ReplayBuffer(max_frames=100, max_bytes=1000)
    for seq in range(1, 11):
        buffer.append((seq, b"x" * 300))
    assert [seq for seq, _ in buffer] == [8, 9, 10] and buffer.byte_size == 900
    # over the session's byte budget an old last_seq resumes with a snapshot, not a replay
    with client(tmp_path, replay_buffer_max_bytes=2000) as tc:
        token = login(tc)
        with tc.websocket_connect("/ws/session") as ws:
            ready = init(ws, token)
            session_id = ready["data"]["session_id"]
            last_seq = _tree_op(ws, _add("a", "v"), "a")["seq"]
            for i in range(10):  # ~5 KB of frames after last_seq: more than the buffer keeps
                assert _tree_op(ws, _add(f"b{i}", "w" * 400), f"b{i}")["type"] == "tree_update"
        with tc.websocket_connect("/ws/session") as ws:
            assert init(ws, token, session_id=session_id, last_seq=last_seq)["data"]["replay"] is False
            near = _tree_op(ws, _add("c", "v"), "c")["seq"]
            assert _tree_op(ws, _add("d", "v"), "d")["type"] == "tree_update"
        with tc.websocket_connect("/ws/session") as ws:  # a recent last_seq still replays
            assert init(ws, token, session_id=session_id, last_seq=near)["data"]["replay"] is True


def test_storage_quota_past_the_limit_is_413_and_changes_nothing(tmp_path: Path) -> None:
    with (
        client(
            tmp_path,
            user_storage_max_bytes=1024 * 1024,
            tree_max_bytes=64 * 1024 * 1024,
            rate_limit_frame_burst=200,
            rate_limit_frames_per_second=200,
        ) as tc,
        tc.websocket_connect("/ws/session") as ws,
    ):
        init(ws, login(tc))
        answers = []
        for i in range(20):  # 20 frames of ~50 KB: charged twice each, past 1 MiB
            node = {
                "id": f"n{i}",
                "value": "big",
                "children": [{"id": f"n{i}-{k}", "value": "v" * 480} for k in range(100)],
            }
            answers.append(_tree_op(ws, {"action": "add", "path": "/root/children", "node": node}, f"op{i}"))
            if answers[-1]["type"] == "error":
                break
        refused = answers[-1]
        assert refused["type"] == "error" and refused["error"]["code"] == 413, refused
        assert "USER_STORAGE_MAX_BYTES" in refused["error"]["message"]
        before = _snapshot(ws)
        assert before["rev"] == len(answers) - 1
        assert _snapshot(ws) == before
        # undo stays open: it is how a user gets back under the quota
        ws.send_json({"type": "undo", "id": "u", "data": {}})
        assert _answer(ws, "u")["type"] == "tree_update"
