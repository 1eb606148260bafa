"""`make run`'s scripts/run.sh as an operator runs it: a killed API is started again, nginx stays up."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_until
from tests.support.stack import ROOT, TEST_SECRET, nginx_binary

pytestmark = pytest.mark.timeout(180)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


def _child_running(parent: int, word: str) -> int | None:
    return next((c for c in _children(parent) if word in _cmdline(c)), None)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, verify=False, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _isolated_checkout(tmp_path: Path) -> Path:
    """The repository seen through symlinks, so the `.env` run.sh writes lands here, not in the checkout."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("scripts", "services", "nginx", ".venv", ".env.example"):
        (root / name).symlink_to(ROOT / name)
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>Canopy</title>")
    return root


def test_a_killed_api_is_restarted_and_nginx_keeps_running(tmp_path: Path) -> None:
    root = _isolated_checkout(tmp_path)
    api_port, https_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "RATE_LIMIT_", "WS_", "API_"))}
    env.update(
        API_HOST="127.0.0.1",
        API_PORT=str(api_port),
        HTTPS_PORT=str(https_port),
        HTTP_PORT=str(free_port()),
        DATA_DIR=str(tmp_path / "data"),
        SECRET_KEY=TEST_SECRET,
        DATABASE_URL="",
        WEB_ROOT=str(tmp_path / "web"),
        NGINX_BIN=nginx_binary(),
        NGINX_LISTEN_ADDR="127.0.0.1",
    )
    log_path = tmp_path / "run.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(root / "scripts" / "run.sh")],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    public = f"https://127.0.0.1:{https_port}/api/readyz"
    try:
        wait_until(lambda: _ready(public), timeout=90, what="the stack is up")
        master = _child_running(proc.pid, "gunicorn")
        nginx = _child_running(proc.pid, "nginx")
        assert master and nginx
        os.kill(master, signal.SIGKILL)
        wait_until(
            lambda: _child_running(proc.pid, "gunicorn") not in (None, master), timeout=30, what="a new gunicorn"
        )
        wait_until(lambda: _ready(public), timeout=90, what="the API answers through nginx again")
        assert proc.poll() is None and _child_running(proc.pid, "nginx") == nginx  # nginx was never restarted
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    logs = log_path.read_text(errors="replace")
    assert "starting it again (nginx keeps running)" in logs, logs[-3000:]
    assert (root / ".env").exists() and not _children(proc.pid)
