"""The async WebSocket test client over real sockets (websockets), for the stack, the bench and the soak.

`tests/support/ws.py` is its counterpart over Starlette's TestClient."""

from __future__ import annotations

from typing import Any

import orjson
import websockets


async def recv(ws: Any) -> dict[str, Any]:
    while True:  # presence and undo_state frames (unnumbered, on their own schedule) are not measured
        frame: dict[str, Any] = orjson.loads(await ws.recv())
        if frame.get("type") not in ("presence", "undo_state"):
            return frame


async def open_session(url: str, token: str, **kw: Any) -> tuple[Any, dict[str, Any]]:
    """Connects, sends `init_session` with the token and reads `session_ready` (and `chat_history` unless it
    resumed by replay); extra keywords go to `websockets.connect` (ssl=..., for wss)."""
    ws = await websockets.connect(url, ping_interval=None, max_size=2**22, open_timeout=60, **kw)
    await ws.send(orjson.dumps({"type": "init_session", "id": "init", "data": {"token": token}}).decode())
    ready = await recv(ws)
    assert ready["type"] == "session_ready", ready
    if not ready["data"]["replay"]:
        history = await recv(ws)
        assert history["type"] == "chat_history", history
    return ws, ready


async def wait_for(ws: Any, frame_id: str, frame_type: str) -> dict[str, Any]:
    """Reads up to the frame of `frame_type` answering `frame_id`; an error frame for it raises."""
    while True:
        frame = await recv(ws)
        if frame.get("type") == "error" and frame.get("id") == frame_id:
            raise RuntimeError(f"error frame: {frame}")
        if frame.get("type") == frame_type and frame.get("id") == frame_id:
            return frame


def tree_op(frame_id: str, delta: dict[str, Any], base_rev: int = 0) -> str:
    """A serialised `tree_op` frame."""
    return orjson.dumps({"type": "tree_op", "id": frame_id, "data": {"base_rev": base_rev, "delta": delta}}).decode()
