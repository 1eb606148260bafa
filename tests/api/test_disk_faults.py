"""Disk full and I/O errors under the real `make api` process: a clean error, no crash, nothing half-written.

The fault is injected from outside, with no mock: the worker's file-size limit (RLIMIT_FSIZE) is
lowered with `prlimit`. Python ignores SIGXFSZ, so every write past the limit fails with EFBIG, which
SQLite reports as `disk I/O error` (SQLITE_IOERR_WRITE). With a limit of one byte every write to the
database, its WAL and its journal fails, while reads go on. Only the soft limit is lowered, so lifting
it needs no privilege. The worker's own log is a regular file too and would lose every line written
under the limit, so `PipedApi` sends the output through a FIFO instead (pipes have no size limit).

A second test fills a small tmpfs for real (root only): SQLite then reports `database or disk is full`
(SQLITE_FULL).
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import resource
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from canopy.protocol import server_frames
from tests.helpers import ApiProcess, wait_until

pytestmark = pytest.mark.timeout(120)

Frame = dict[str, Any]
NOT_APPLIED = "Storage unavailable; the change was not applied"
NOT_STORED = "Storage unavailable; the message was not stored"
SQLITE_IOERR = "disk I/O error"  # SQLITE_IOERR_WRITE: a write failed with EFBIG
SQLITE_FULL = "database or disk is full"
TURN_PROMPT = "Add 'X', 'Y' and 'Z' under root"


@dataclass
class PipedApi(ApiProcess):
    """`ApiProcess` whose output goes through a FIFO drained by a thread, so the log survives the size limit."""

    captured: bytearray = field(default_factory=bytearray)

    def start(self) -> None:
        assert self.log_path is not None, "give the FIFO a path outside the data directory"
        os.mkfifo(self.log_path)
        threading.Thread(target=self._drain, args=(self.log_path,), daemon=True).start()
        super().start()  # opening the FIFO for writing meets the reader opening it

    def _drain(self, fifo: Path) -> None:
        with open(fifo, "rb", buffering=0) as out:
            while chunk := out.read(65536):
                self.captured.extend(chunk)

    def logs(self) -> str:
        return bytes(self.captured).decode(errors="replace")


def worker_pid(api: ApiProcess) -> int:
    master = api.gunicorn_pid()
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, f"gunicorn should run exactly one worker: {children}"
    return int(children[0])


@contextmanager
def file_size_limit(pid: int, limit: int) -> Iterator[None]:
    """Writes of `pid` past `limit` bytes fail with EFBIG until the block ends."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))


def add_op(node_id: str, base_rev: int) -> dict[str, Any]:
    node = {"id": node_id, "value": node_id.upper(), "children": []}
    return {"delta": {"action": "add", "path": "/root/children", "node": node}, "base_rev": base_rev}


class Tab:
    """One browser tab over a real WebSocket. Every frame must match the published schema, and the
    broadcast `seq` must have no gap, so a frame the server broadcast and the tab missed shows up."""

    def __init__(self, api: ApiProcess, token: str, **init: Any) -> None:
        self.ws = connect(api.url.replace("http", "ws", 1) + "/ws/session")
        self.seq: int | None = None
        self._pings = 0
        self.send("init_session", {"token": token, **init})
        self.ready = self.recv()
        assert self.ready["type"] == "session_ready", json.dumps(self.ready)
        self.seq = self.ready["data"]["seq"]
        self.history: list[Frame] | None = None
        if not self.ready["data"]["replay"]:
            chat = self.recv()
            assert chat["type"] == "chat_history"
            self.history = chat["data"]["messages"]

    @property
    def session_id(self) -> str:
        return str(self.ready["data"]["session_id"])

    def send(self, frame_type: str, data: dict[str, Any], frame_id: str | None = None) -> None:
        frame: Frame = {"type": frame_type, "data": data}
        if frame_id is not None:
            frame["id"] = frame_id
        self.ws.send(json.dumps(frame))

    def recv(self) -> Frame:
        frame: Frame = json.loads(self.ws.recv(timeout=20))
        server_frames.validate_python(frame)
        while frame["type"] in ("presence", "undo_state"):  # unnumbered, on their own schedule: not read here
            frame = json.loads(self.ws.recv(timeout=20))
            server_frames.validate_python(frame)
        if "seq" in frame and self.seq is not None:
            assert frame["seq"] == self.seq + 1, f"seq gap: {self.seq} then {frame['seq']}"
            self.seq = frame["seq"]
        return frame

    def fence(self) -> list[Frame]:
        """Every frame sent before the answer to a fresh ping. A connection's frames are handled in
        order, and a broadcast reaches every tab's queue before the sender's request ends, so this
        is exactly what the server sent up to now."""
        self._pings += 1
        ping_id = f"fence-{self._pings}"
        self.send("ping", {}, ping_id)
        frames = []
        while (frame := self.recv())["type"] != "pong" or frame.get("id") != ping_id:
            frames.append(frame)
        return frames

    def request(self, frame_type: str, data: dict[str, Any], frame_id: str) -> list[Frame]:
        self.send(frame_type, data, frame_id)
        return self.fence()

    def state(self) -> tuple[int, list[str]]:
        (snapshot,) = self.request("resync", {}, "resync")
        assert snapshot["type"] == "tree_snapshot"
        return snapshot["data"]["rev"], [c["value"] for c in snapshot["data"]["tree"]["children"]]

    def turn(self) -> list[Frame]:
        """Frames up to the end of a turn: the final `assistant_response` or a turn `error`."""
        frames = []
        while True:
            frames.append(frame := self.recv())
            if frame["type"] == "assistant_response" and not frame["data"]["chunk"]:
                return frames
            if frame["type"] == "error" and "seq" in frame:
                return frames

    def close(self) -> None:
        self.ws.close()


def assert_refused(frames: list[Frame], frame_id: str, message: str = NOT_APPLIED) -> None:
    """A request the storage refused: one `error` 500 for the sender only (no seq), nothing else."""
    assert len(frames) == 1, frames
    (error,) = frames
    assert error["type"] == "error" and error["id"] == frame_id and "seq" not in error, error
    assert error["error"] == {"code": 500, "message": message}


def assert_unavailable(r: httpx.Response) -> None:
    """A REST write the storage refused: 503 with Retry-After, through the app's middleware."""
    assert (r.status_code, r.json()) == (503, {"detail": "Storage unavailable; try again later"}), r.text
    assert r.headers["retry-after"] == "5" and r.headers["x-request-id"]


def rest(api: ApiProcess, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    """One request on its own connection."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=api.url, headers=headers, timeout=20) as client:
        return client.request(method, path, **kwargs)


def login(api: ApiProcess, username: str) -> tuple[str, str]:
    """Registers and logs in; returns the access token and the refresh cookie."""
    assert rest(api, "POST", "/api/auth/register", json={"username": username, "password": "pw-first1"}).is_success
    r = rest(api, "POST", "/api/auth/login", data={"username": username, "password": "pw-first1"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"]), str(r.cookies["canopy_refresh"])


def refresh(api: ApiProcess, cookie: str) -> httpx.Response:
    # The cookie is Secure, so a plain-http client would not send it back on its own.
    return rest(api, "POST", "/api/auth/refresh", headers={"Cookie": f"canopy_refresh={cookie}"})


def database(db_file: Path) -> closing[sqlite3.Connection]:
    # Read-only: the files stay as the crash left them for the restarted API to recover. Closed on exit,
    # so nothing keeps the file (or the tmpfs) busy.
    return closing(sqlite3.connect(f"file:{db_file}?mode=ro", uri=True))


def integrity(db_file: Path) -> str:
    with database(db_file) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def stored_changes(db_file: Path, session_id: str) -> list[tuple[int, Any]]:
    with database(db_file) as db:
        rows = db.execute("SELECT rev, delta FROM changes WHERE session_id = ? ORDER BY rev", (session_id,))
        return [(rev, json.loads(delta)) for rev, delta in rows]


def as_logged(updates: list[Frame]) -> list[tuple[int, Any]]:
    return [(u["data"]["rev"], u["data"]["delta"]) for u in updates]


def test_disk_io_errors_are_refused_cleanly_and_nothing_half_written_survives_a_crash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db_file = data / "canopy.db"
    # Slow text chunks leave time to inject the fault between a turn's tree changes and its final answer.
    api = PipedApi(data, {"OFFLINE_CHUNK_DELAY_MS": "500"}, log_path=tmp_path / "api.fifo")
    api.start()
    acked: list[Frame] = []  # every tree_update the tabs were sent: exactly what must be stored
    try:
        master, worker = api.gunicorn_pid(), worker_pid(api)
        token, refresh_cookie = login(api, "fay")
        tab = Tab(api, token)
        sid = tab.session_id
        other = Tab(api, token, session_id=sid)  # a second tab sees every broadcast

        # 1. Before the fault: direct edits are acknowledged by tree_update.
        for i in range(3):
            frames = tab.request("tree_op", add_op(f"n{i}", i), f"op-{i}")
            assert [(f["type"], f["data"]["rev"]) for f in frames] == [("tree_update", i + 1)]
            acked += frames
        assert other.fence() == acked

        # 2. During the fault every write fails; reads, pings and the worker go on.
        with file_size_limit(worker, 1):
            assert_refused(tab.request("tree_op", add_op("lost", 3), "op-lost"), "op-lost")
            assert_refused(tab.request("undo", {}, "undo-lost"), "undo-lost")
            # The user's message cannot be stored, so the turn never starts: no chat_message, no turn frames.
            assert_refused(
                tab.request("user_prompt", {"prompt": "Add 'Lost' under root"}, "prompt-lost"),
                "prompt-lost",
                NOT_STORED,
            )
            assert tab.state() == (3, ["N0", "N1", "N2"])
            assert other.fence() == []  # nothing was broadcast

            for method, path, kwargs in [
                ("POST", "/api/sessions", {"json": {"title": "During the fault"}}),
                ("PATCH", f"/api/sessions/{sid}", {"json": {"title": "During the fault"}}),
            ]:
                r = rest(api, method, path, token, **kwargs)
                assert_unavailable(r)
            r = rest(api, "POST", "/api/auth/register", json={"username": "ghost", "password": "pw-first1"})
            assert_unavailable(r)
            r = rest(api, "POST", "/api/auth/login", data={"username": "fay", "password": "pw-first1"})
            assert_unavailable(r)
            assert "access_token" not in r.text and "canopy_refresh" not in r.cookies
            assert_unavailable(refresh(api, refresh_cookie))  # the rotation rolls back: the cookie stays valid

            state = rest(api, "GET", f"/api/sessions/{sid}", token).json()
            assert (state["rev"], state["title"], state["history"]) == (3, "Untitled session", [])
            assert [s["session_id"] for s in rest(api, "GET", "/api/sessions", token).json()] == [sid]
            assert rest(api, "GET", "/api/readyz").status_code == 200  # readiness checks reads only
            wait_until(lambda: SQLITE_IOERR in api.logs())
        assert (api.gunicorn_pid(), worker_pid(api)) == (master, worker)  # nothing crashed or restarted

        # 3. Lifted: the same sockets work again.
        frames = tab.request("tree_op", add_op("n3", 3), "op-3")
        assert [(f["type"], f["data"]["rev"]) for f in frames] == [("tree_update", 4)]
        acked += frames
        assert other.fence() == frames

        # 4. The fault starts mid-turn, after the turn's tree changes, before its answer is stored.
        tab.send("user_prompt", {"prompt": TURN_PROMPT}, "turn")
        turn: list[Frame] = []
        while not turn or turn[-1]["type"] != "assistant_response":  # the first text chunk
            turn.append(tab.recv())
        with file_size_limit(worker, 1):
            turn += tab.turn()
        assert turn[0]["type"] == "chat_message" and turn[0]["data"]["content"] == TURN_PROMPT
        updates = [f for f in turn if f["type"] == "tree_update"]
        assert [(u["data"]["rev"], u["data"]["origin"]) for u in updates] == [
            (5, "assistant"),
            (6, "assistant"),
            (7, "assistant"),
        ]
        acked += updates
        end = turn[-1]
        assert end["type"] == "error" and end["id"] == "turn"
        assert end["error"] == {"code": 500, "message": "The answer could not be stored"}
        assert [f for f in turn if f["type"] == "assistant_response" and not f["data"]["chunk"]] == []
        assert other.fence() == turn  # the other tab saw the same turn, ended by the same one error

        frames = tab.request("tree_op", add_op("n4", 7), "op-4")
        assert [(f["type"], f["data"]["rev"]) for f in frames] == [("tree_update", 8)]
        acked += frames
        assert tab.state() == (8, ["N0", "N1", "N2", "N3", "X", "Y", "Z", "N4"])
        assert rest(api, "POST", "/api/sessions", token, json={"title": "After the fault"}).status_code == 201
        r = rest(api, "PATCH", f"/api/sessions/{sid}", token, json={"title": "Renamed after the fault"})
        assert r.status_code == 200
        history = rest(api, "GET", f"/api/sessions/{sid}", token).json()["history"]
        assert [(m["role"], m["content"]) for m in history] == [("user", TURN_PROMPT)]  # the answer was never stored
        new_refresh = refresh(api, refresh_cookie)
        assert new_refresh.status_code == 200, new_refresh.text
        assert (api.gunicorn_pid(), worker_pid(api)) == (master, worker)
        last_seq = tab.seq
        assert last_seq is not None

        # 5. Crash with no chance to flush, then read what is stored.
        api.kill_worker_hard()
    finally:
        api.stop(signal.SIGKILL)

    assert integrity(db_file) == "ok"
    assert stored_changes(db_file, sid) == as_logged(acked)
    with database(db_file) as db:
        rev, title, seq_ceiling = db.execute(
            "SELECT rev, title, seq_ceiling FROM sessions WHERE id = ?", (sid,)
        ).fetchone()
        assert (rev, title) == (8, "Renamed after the fault") and seq_ceiling >= last_seq
        titles = sorted(t for (t,) in db.execute("SELECT title FROM sessions"))
        assert titles == ["After the fault", "Renamed after the fault"]
        sets = db.execute("SELECT origin, undone FROM change_sets WHERE session_id = ? ORDER BY number", (sid,))
        assert list(sets) == [("user", 0)] * 4 + [("assistant", 0), ("user", 0)]
        messages = db.execute("SELECT role, content FROM messages WHERE session_id = ? ORDER BY id", (sid,))
        assert list(messages) == [("user", TURN_PROMPT)]
        assert [u for (u,) in db.execute("SELECT username FROM users")] == ["fay"]
        assert db.execute("SELECT count(*) FROM refresh_tokens").fetchone()[0] == 2  # login, then one rotation

    restarted = ApiProcess(data, port=api.port, log_path=tmp_path / "restarted.log")
    restarted.start()
    try:
        tab = Tab(restarted, token, session_id=sid, last_seq=last_seq)
        assert tab.ready["data"]["rev"] == 8 and tab.ready["data"]["seq"] >= last_seq
        assert [c["value"] for c in tab.ready["data"]["initial_tree"]["children"]] == [
            "N0",
            "N1",
            "N2",
            "N3",
            "X",
            "Y",
            "Z",
            "N4",
        ]
        assert tab.history is not None and [m["role"] for m in tab.history] == ["user"]
        # The undo stack survived: the last edit, then the whole turn as one change set.
        frames = tab.request("undo", {}, "undo-1")
        assert [(f["data"]["delta"], f["data"]["rev"]) for f in frames] == [
            ({"action": "remove", "path": "/root/n4"}, 9)
        ]
        frames = tab.request("undo", {}, "undo-2")
        assert [(f["data"]["delta"]["action"], f["data"]["rev"]) for f in frames] == [
            ("remove", 10),
            ("remove", 11),
            ("remove", 12),
        ]
        assert tab.state() == (12, ["N0", "N1", "N2", "N3"])
        tab.close()
    finally:
        assert restarted.stop() == 0
    assert integrity(db_file) == "ok"


def test_a_storage_error_over_rest_is_answered_on_a_connection_that_stays_open(tmp_path: Path) -> None:
    api = PipedApi(tmp_path / "data", log_path=tmp_path / "api.fifo")
    api.start()
    try:
        token, _ = login(api, "gus")
        worker = worker_pid(api)
        conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=20)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with file_size_limit(worker, 1):
            conn.request("POST", "/api/sessions", body=b'{"title": "t"}', headers=headers)
            r = conn.getresponse()
            body = json.loads(r.read())
        assert r.status == 503 and body == {"detail": "Storage unavailable; try again later"}
        conn.request("GET", "/api/healthz")  # the same keep-alive connection, as nginx's upstream pool reuses it
        assert conn.getresponse().status == 200
        conn.close()
        assert r.getheader("x-request-id")  # the answer went through the app's middleware
    finally:
        api.stop()


def test_a_refused_change_is_never_applied_even_when_only_the_seq_reservation_fails(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db_file, wal = data / "canopy.db", data / "canopy.db-wal"
    api = ApiProcess(data, log_path=tmp_path / "first.log")
    api.start()
    try:
        token, _ = login(api, "hal")
        tab = Tab(api, token)
        sid = tab.session_id
        assert tab.request("tree_op", add_op("n0", 0), "op-0")[0]["data"]["rev"] == 1
        before = wal.stat().st_size
        assert tab.request("tree_op", add_op("n1", 1), "op-1")[0]["data"]["rev"] == 2
        grown = wal.stat().st_size - before  # the WAL frames one such commit appends
        tab.close()
    finally:
        assert api.stop() == 0  # drain stores the exact seq: the next broadcast after a reload reserves a block
    page_size = int.from_bytes(db_file.read_bytes()[16:18], "big")
    frame = 24 + page_size
    assert grown % frame == 0, (grown, frame)

    restarted = ApiProcess(data, port=api.port, log_path=tmp_path / "second.log")
    restarted.start()
    try:
        tab = Tab(restarted, token, session_id=sid)
        position = wal.stat().st_size if wal.exists() else 0
        if position == 0:
            position = 32  # a new WAL starts with its header
        # Room for exactly the change's own commit: the seq reservation right after it fails.
        with file_size_limit(worker_pid(restarted), position + grown):
            frames = tab.request("tree_op", add_op("edge", 2), "op-edge")
        rev, values = tab.state()
        updates = [f for f in frames if f["type"] == "tree_update"]
        if updates:  # acknowledged: broadcast and in the tree
            assert [u["data"]["rev"] for u in updates] == [3] and (rev, values) == (3, ["N0", "N1", "EDGE"])
        else:  # refused: not in the tree
            assert_refused(frames, "op-edge")
            assert (rev, values) == (2, ["N0", "N1"]), f"refused with 'not applied', yet the tree is at rev {rev}"
        tab.close()
    finally:
        restarted.stop()
    assert [rev for rev, _ in stored_changes(db_file, sid)] == [1, 2] + ([3] if updates else [])


@contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        # The killed processes may take a moment to release their files.
        with suppress(TimeoutError):
            wait_until(lambda: subprocess.run(["umount", str(where)], capture_output=True).returncode == 0, timeout=10)
        if os.path.ismount(where):
            subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    """Writes `path` until the file system has no byte left."""
    with open(path, "wb", buffering=0) as out:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            with suppress(OSError):
                while True:
                    out.write(b"\0" * size)
    with pytest.raises(OSError) as full, open(path, "ab", buffering=0) as out:
        out.write(b"\0")
    assert full.value.errno == errno.ENOSPC


def test_a_genuinely_full_disk_is_refused_cleanly_and_recovers_when_space_is_freed(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", "16m") as mount:
        data = mount / "data"
        api = PipedApi(data, log_path=tmp_path / "api.fifo")
        api.start()
        acked: list[Frame] = []
        try:
            worker = worker_pid(api)
            token, _ = login(api, "ivy")
            tab = Tab(api, token)
            sid = tab.session_id
            acked += tab.request("tree_op", add_op("n0", 0), "op-0")
            assert [u["data"]["rev"] for u in acked] == [1]

            fill(mount / "filler")
            assert_refused(tab.request("tree_op", add_op("lost", 1), "op-lost"), "op-lost")
            assert tab.state() == (1, ["N0"])
            assert_unavailable(rest(api, "POST", "/api/sessions", token, json={"title": "Full"}))
            wait_until(lambda: SQLITE_FULL in api.logs())
            (mount / "filler").unlink()

            frames = tab.request("tree_op", add_op("n1", 1), "op-1")
            assert [(f["type"], f["data"]["rev"]) for f in frames] == [("tree_update", 2)]
            acked += frames
            assert worker_pid(api) == worker
            api.kill_worker_hard()
        finally:
            api.stop(signal.SIGKILL)
        assert integrity(data / "canopy.db") == "ok"
        assert stored_changes(data / "canopy.db", sid) == as_logged(acked)
