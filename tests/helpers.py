"""Small helpers shared by the tests: free ports, waiting on conditions, running the real API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float = 20.0, what: str = "condition", interval: float = 0.05
) -> None:
    """Polls `check` until it holds; the interval is a poll period, not a synchronisation sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout}s")


@dataclass
class ApiProcess:
    """The real `make api` command (scripts/api.sh: gunicorn + one uvicorn worker) on a free port."""

    data_dir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "RATE_LIMIT_", "WS_"))}
        env.update(
            API_HOST="127.0.0.1",
            API_PORT=str(self.port),
            DATA_DIR=str(self.data_dir),
            SECRET_KEY=TEST_SECRET,
            ENVIRONMENT="development",
            DATABASE_URL="",
        )
        env.update(self.env_overrides)
        return env

    def start(self) -> None:
        self.log_path = self.log_path or self.data_dir / "api.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["make", "--no-print-directory", "api"],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_until(self._ready, timeout=60)

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"API exited with {self.proc.returncode}: {self.logs()[-2000:]}")
        try:
            return httpx.get(self.url + "/api/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def gunicorn_pid(self) -> int:
        """`make` runs the recipe, which execs gunicorn: the master is make's only child."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return int(children[0])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signals gunicorn as an operator would (make then exits with gunicorn's status)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            try:
                os.kill(self.gunicorn_pid(), sig)
                self.proc.wait(timeout)
            finally:
                if self.proc.poll() is None:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
        return self.proc.returncode

    def kill_worker_hard(self) -> None:
        """SIGKILL the whole process group (master and worker): a crash with no chance to flush."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
