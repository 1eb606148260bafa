"""Helpers for WebSocket tests over Starlette's TestClient (real app, real SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from canopy.protocol import server_frames

Frame = dict[str, Any]


def login(tc: TestClient, username: str = "alice", password: str = "pw-first1") -> str:
    r = tc.post("/api/auth/register", json={"username": username, "password": password})
    assert r.status_code in (201, 409), r.text
    r = tc.post("/api/auth/login", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


# Unnumbered frames sent on their own schedule (anyone's presence, this user's undo availability): checked,
# and skipped unless asked for.
UNSOLICITED = frozenset(("presence", "undo_state"))


def recv(ws: Any, presence: bool = False, undo_state: bool = False) -> Frame:
    """The next frame; `presence` and `undo_state` frames are checked and skipped unless asked for."""
    while True:
        frame: Frame = ws.receive_json()
        server_frames.validate_python(frame)  # every frame the server sends matches the published schema
        kind = frame["type"]
        if kind not in UNSOLICITED or (presence and kind == "presence") or (undo_state and kind == "undo_state"):
            return frame


def recv_until(ws: Any, frame_type: str) -> list[Frame]:
    out = []
    while True:
        frame = recv(ws)
        out.append(frame)
        if frame["type"] == frame_type:
            return out


def collect_turn(ws: Any) -> list[Frame]:
    """Frames up to and including the end of a turn: the final assistant_response or a turn error."""
    out = []
    while True:
        frame = recv(ws)
        out.append(frame)
        if frame["type"] == "assistant_response" and not frame["data"]["chunk"]:
            return out
        if frame["type"] == "error" and frame["error"]["code"] in (500, 502, 504) and "seq" in frame:
            return out


def init(ws: Any, token: str | None = None, **data: Any) -> Frame:
    payload = {k: v for k, v in {"token": token, **data}.items() if v is not None}
    ws.send_json({"type": "init_session", "data": payload, "id": "init"})
    ready = recv(ws)
    assert ready["type"] == "session_ready", ready
    if not ready["data"]["replay"]:
        history = recv(ws)
        assert history["type"] == "chat_history"
    return ready


def close_code(ws: Any) -> int:
    """Reads until the server closes; returns the close code."""
    try:
        while True:
            ws.receive_json()
    except WebSocketDisconnect as exc:
        return int(exc.code)


@contextmanager
def session_socket(tc: TestClient, token: str, **data: Any) -> Iterator[tuple[Any, Frame]]:
    with tc.websocket_connect("/ws/session") as ws:
        yield ws, init(ws, token, **data)


def node_values(tree: Frame) -> list[str]:
    return [c["value"] for c in tree["children"]]
