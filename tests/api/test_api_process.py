"""The real `make api` process: gunicorn with one uvicorn worker, on a free port."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import httpx

from tests.helpers import ApiProcess, wait_until


def test_make_api_serves_the_auth_flow_and_metrics(tmp_path: Path) -> None:
    api = ApiProcess(tmp_path)
    api.start()
    try:
        with httpx.Client(base_url=api.url) as c:
            assert c.post("/api/auth/register", json={"username": "carol", "password": "pw-first1"}).status_code == 201
            r = c.post("/api/auth/login", data={"username": "carol", "password": "pw-first1"})
            assert r.status_code == 200
            token = r.json()["access_token"]
            refresh_cookie = r.cookies.get("canopy_refresh")
            assert refresh_cookie
            # The cookie is Secure, so a plain-http client would not send it back: pass it explicitly.
            r = c.post("/api/auth/refresh", headers={"Cookie": f"canopy_refresh={refresh_cookie}"})
            assert r.status_code == 200
            assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["username"] == "carol"
            m = c.get("/metrics", follow_redirects=False)
            assert m.status_code == 200 and "canopy_logins_total" in m.text
            # the worker froze its startup heap (canopy.worker.freeze_startup_heap): tens of thousands of objects
            frozen = next(line for line in m.text.splitlines() if line.startswith("canopy_gc_frozen_objects "))
            assert float(frozen.split()[1]) > 10_000, frozen
    finally:
        assert api.stop() == 0
    logs = api.logs()
    assert "Booting worker" in logs and "canopy.worker.CanopyWorker" in logs
    assert token not in logs and "pw-first1" not in logs and refresh_cookie not in logs
    assert (tmp_path / "canopy.db").exists()


def test_a_cancel_sent_right_behind_its_prompt_stops_the_turn(tmp_path: Path) -> None:
    """Over a real socket both frames are often read at once: the cancel is handled before the turn's task
    has run at all, and must still find the turn (it once got 409 "No turn is running")."""
    from websockets.sync.client import connect

    api = ApiProcess(tmp_path)
    api.start()
    try:
        with httpx.Client(base_url=api.url) as c:
            assert c.post("/api/auth/register", json={"username": "dora", "password": "pw-first1"}).status_code == 201
            token = c.post("/api/auth/login", data={"username": "dora", "password": "pw-first1"}).json()["access_token"]
        with connect(api.url.replace("http", "ws") + "/ws/session") as ws:
            ws.send(json.dumps({"type": "init_session", "id": "i", "data": {"token": token}}))
            assert json.loads(ws.recv())["type"] == "session_ready"
            assert json.loads(ws.recv())["type"] == "chat_history"
            for i in range(10):
                ws.send(
                    json.dumps(
                        {"type": "user_prompt", "id": f"p{i}", "data": {"prompt": f"add 'a{i}' and 'b{i}' under root"}}
                    )
                )
                ws.send(json.dumps({"type": "cancel", "id": f"c{i}", "data": {}}))
                while True:
                    frame = json.loads(ws.recv(timeout=30))
                    assert frame["type"] != "error", frame
                    if frame["type"] == "assistant_response" and not frame["data"]["chunk"]:
                        assert frame["id"] == f"p{i}" and frame["data"].get("cancelled") is True, frame
                        break
    finally:
        assert api.stop() == 0


def _login(c: httpx.Client, username: str, password: str, client_ip: str) -> int:
    return c.post(
        "/api/auth/login", data={"username": username, "password": password}, headers={"X-Forwarded-For": client_ip}
    ).status_code


def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    """The real gunicorn start: X-Forwarded-For names the client only when the peer is in FORWARDED_ALLOW_IPS."""
    budgets = {"LOGIN_FAILURES_PER_IP": "3", "LOGIN_FAILURES_PER_ACCOUNT": "5"}
    for name in ("untrusted", "trusted"):
        (tmp_path / name).mkdir()
    untrusted = ApiProcess(tmp_path / "untrusted", {**budgets, "FORWARDED_ALLOW_IPS": "192.0.2.200"})
    untrusted.start()
    try:
        with httpx.Client(base_url=untrusted.url) as c:
            assert c.post("/api/auth/register", json={"username": "xff", "password": "pw-first1"}).status_code == 201
            for i in range(3):  # three "addresses" made up by the client: all one address, ours
                assert _login(c, f"spray{i}", "whatever-pass", f"10.0.0.{i}") == 401
            assert _login(c, "xff", "pw-first1", "10.0.0.99") == 429
    finally:
        untrusted.stop()

    trusted = ApiProcess(tmp_path / "trusted", {**budgets, "FORWARDED_ALLOW_IPS": "127.0.0.1"})
    trusted.start()
    try:
        with httpx.Client(base_url=trusted.url) as c:
            assert c.post("/api/auth/register", json={"username": "xff", "password": "pw-first1"}).status_code == 201
            for i in range(3):
                assert _login(c, f"spray{i}", "whatever-pass", f"10.0.0.{i}") == 401
            assert _login(c, "xff", "pw-first1", "10.0.0.99") == 200  # another (proxied) address: its own budget
            for i in range(5):  # the account budget spans addresses
                assert _login(c, "xff", f"guess-{i}-pass", f"10.1.0.{i}") == 401
            assert _login(c, "xff", "pw-first1", "10.2.0.1") == 429
    finally:
        trusted.stop()


def test_per_message_deflate_comes_from_settings(tmp_path: Path) -> None:
    """The worker reads WS_PER_MESSAGE_DEFLATE through Settings (so `yes`, `1`, `true` all work, as everywhere)."""
    from websockets.sync.client import connect

    api = ApiProcess(tmp_path, {"WS_PER_MESSAGE_DEFLATE": "True"})
    api.start()
    try:
        with connect(api.url.replace("http", "ws") + "/ws/session") as ws:  # the client offers deflate
            assert ws.response is not None
            assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
    finally:
        assert api.stop() == 0


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_worker_whose_master_was_killed_exits_and_frees_the_port(tmp_path: Path) -> None:
    """kill -9 of the gunicorn master leaves its worker re-parented: it must stop, or it would keep the
    port and block the restart (issue #14 §3)."""
    api = ApiProcess(tmp_path)
    api.start()
    try:
        master = api.gunicorn_pid()
        worker = int(Path(f"/proc/{master}/task/{master}/children").read_text().split()[0])
        assert httpx.get(api.url + "/api/healthz").status_code == 200
        os.kill(master, signal.SIGKILL)
        wait_until(lambda: not _pid_alive(worker), timeout=30, what="the orphaned worker exits")
        wait_until(lambda: _port_free(api.port), timeout=10, what="the port is free")
    finally:
        api.stop(signal.SIGKILL)
    assert "gunicorn master" in api.logs() and "is gone" in api.logs()
