"""The outbox byte budget and back-pressure, over the real `make api` process and real TCP sockets.

A tab that stops reading (a tiny receive buffer, never read) keeps asking for snapshots of a
multi-MiB tree while another tab keeps changing it: the server stops reading that tab, keeps its
queue under `WS_OUTBOX_MAX_BYTES` and closes it with 1013; a third tab's pings keep coming back.
"""

from __future__ import annotations

import json
import re
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.sync.client import connect
from websockets.uri import parse_uri

from tests.helpers import ApiProcess, wait_until

BUDGET = 4 * 1024 * 1024
VALUE = "x" * 480
PASSWORD = "stalled-reader-test-7391"


class StalledClient:
    """A WebSocket client on a plain socket that reads only when told to (websockets' sans-I/O protocol)."""

    def __init__(self, url: str, receive_buffer: int) -> None:
        uri = parse_uri(url)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(30)
        self.sock.connect((uri.host, uri.port))
        self.proto = ClientProtocol(uri, max_size=None)
        self.proto.send_request(self.proto.connect())
        self._flush()
        self.frames: list[dict[str, Any]] = []
        self.close_code: int | None = None
        while self.proto.state is State.CONNECTING:
            self._read()
        assert self.proto.state is State.OPEN, self.proto.handshake_exc

    def _flush(self) -> None:
        for chunk in self.proto.data_to_send():
            if chunk:
                self.sock.sendall(chunk)

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            self.proto.receive_eof()
        else:
            self.proto.receive_data(data)
        for event in self.proto.events_received():
            if not isinstance(event, Frame):
                continue  # the handshake response
            if event.opcode is Opcode.TEXT:
                self.frames.append(json.loads(bytes(event.data)))
            elif event.opcode is Opcode.CLOSE:
                self.close_code = Close.parse(event.data).code
        self._flush()

    def send(self, frame: dict[str, Any]) -> None:
        self.proto.send_text(json.dumps(frame).encode())
        self._flush()

    def read_until(self, frame_type: str) -> None:
        while not any(f["type"] == frame_type for f in self.frames):
            self._read()

    def read_to_close(self) -> int:
        while self.close_code is None:
            self._read()
        return self.close_code


def _metric(api: ApiProcess, name: str, label: str = "") -> float:
    text = httpx.get(api.url + "/metrics", timeout=10).text
    match = re.search(rf"^{re.escape(name)}{re.escape(label)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _token(api: ApiProcess, username: str) -> str:
    with httpx.Client(base_url=api.url) as c:
        assert c.post("/api/auth/register", json={"username": username, "password": PASSWORD}).status_code == 201
        return str(c.post("/api/auth/login", data={"username": username, "password": PASSWORD}).json()["access_token"])


def _recv_type(ws: Any, frame_type: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(ws.recv(timeout=30))
        assert frame["type"] != "error", frame
        if frame["type"] == frame_type:
            return frame


def _add_big_node(ws: Any, n: int) -> None:
    node = {"id": f"b{n}", "value": "block", "children": [{"id": f"b{n}-{i}", "value": VALUE} for i in range(100)]}
    ws.send(
        json.dumps(
            {
                "type": "tree_op",
                "id": f"op{n}",
                "data": {"base_rev": 0, "delta": {"action": "add", "path": "/root/children", "node": node}},
            }
        )
    )
    _recv_type(ws, "tree_update")


def _ping_rtt(ws: Any, n: int) -> float:
    start = time.perf_counter()
    ws.send(json.dumps({"type": "ping", "id": f"ping{n}", "data": {}}))
    pong = _recv_type(ws, "pong")
    assert pong["id"] == f"ping{n}"
    return time.perf_counter() - start


def test_a_stalled_reader_is_paused_then_closed_1013_within_its_byte_budget(tmp_path: Path) -> None:
    api = ApiProcess(
        tmp_path,
        env_overrides={
            "WS_OUTBOX_MAX_BYTES": str(BUDGET),
            "RATE_LIMIT_FRAMES_PER_SECOND": "1000",
            "RATE_LIMIT_FRAME_BURST": "1000",
        },
    )
    api.start()
    ws_url = api.url.replace("http", "ws") + "/ws/session"
    try:
        alice, bob = _token(api, "alice"), _token(api, "bob")
        with connect(ws_url, max_size=None) as editor, connect(ws_url) as other:
            editor.send(json.dumps({"type": "init_session", "id": "i", "data": {"token": alice}}))
            session_id = _recv_type(editor, "session_ready")["data"]["session_id"]
            for n in range(40):  # ~2 MiB of tree
                _add_big_node(editor, n)
            editor.send(json.dumps({"type": "resync", "id": "size", "data": {}}))
            tree_bytes = len(json.dumps(_recv_type(editor, "tree_snapshot")["data"]["tree"]))
            assert tree_bytes > 2 * 1024 * 1024
            other.send(json.dumps({"type": "init_session", "id": "i", "data": {"token": bob}}))
            _recv_type(other, "session_ready")
            rtts = [_ping_rtt(other, n) for n in range(10)]

            stalled = StalledClient(ws_url, receive_buffer=4096)
            stalled.send({"type": "init_session", "id": "i", "data": {"token": alice, "session_id": session_id}})
            stalled.read_until("chat_history")  # attached; from here on it never reads
            for n in range(30):
                stalled.send({"type": "resync", "id": f"r{n}", "data": {}})
            wait_until(
                lambda: _metric(api, "canopy_budget_refusals_total", '{budget="ws_outbox_paused"}') >= 1,
                what="the server pauses reading the stalled tab",
            )
            # The editor's changes go on being broadcast to the stalled tab until its budget is spent.
            n = 40
            while _metric(api, "canopy_budget_refusals_total", '{budget="ws_outbox"}') < 1:
                assert n < 40 + 2 * BUDGET // 50_000, "the stalled tab was never closed"
                _add_big_node(editor, n)
                rtts.append(_ping_rtt(other, n))
                n += 1
            resyncs_read = _metric(api, "canopy_ws_frames_in_total", '{type="resync"}') - 1  # minus "size"
            peak = _metric(api, "canopy_ws_outbox_peak_bytes")

            assert stalled.read_to_close() == 1013
            snapshots = [f for f in stalled.frames if f["type"] == "tree_snapshot"]
            rtts.append(_ping_rtt(other, n))
        # Paused: it stopped taking resyncs once a snapshot waited; never more than the budget queued.
        assert resyncs_read < 30, resyncs_read
        assert len(snapshots) <= resyncs_read
        assert 0 < peak <= BUDGET, peak
        print(
            f"tree {tree_bytes} B; peak queued {peak:.0f} B; {resyncs_read:.0f}/30 resyncs read; other tab's "
            f"ping RTT median {statistics.median(rtts) * 1000:.1f} ms, max {max(rtts) * 1000:.1f} ms "
            f"over {len(rtts)} pings"
        )
    finally:
        assert api.stop() == 0
