"""The ``fake_llm`` pytest fixture: the scripted OpenAI-compatible server as a real process.

Use it from ``tests/conftest.py``::

    from tests.fake_llm.fixture import fake_llm  # noqa: F401  (re-exported fixture)

    async def test_x(fake_llm):
        settings = Settings(llm_provider="openai", llm_base_url=fake_llm, llm_api_key="test-key",
                            llm_model=fake_llm.model("multi_round", "my-test"))
        ...
        records = await fake_llm.requests("my-test")

The fixture is session-scoped (one process for the run); tests keep apart by tagging their
model name (``scenario:<name>:<tag>``). The value is the base URL (``http://127.0.0.1:PORT/v1``)
as a ``str`` subclass carrying helpers for the control routes.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key"


class FakeLLM(str):
    """The base URL of a running fake server, plus helpers for its control routes."""

    root: str
    port: int
    process: subprocess.Popen[bytes]

    def __new__(cls, host: str, port: int, process: subprocess.Popen[bytes]) -> FakeLLM:
        self = super().__new__(cls, f"http://{host}:{port}/v1")
        self.root = f"http://{host}:{port}"
        self.port = port
        self.process = process
        return self

    @property
    def base_url(self) -> str:
        return str(self)

    @staticmethod
    def model(scenario: str, tag: str | None = None) -> str:
        """The model name that selects a scenario; a fresh random tag when none is given."""
        return f"scenario:{scenario}:{tag if tag is not None else uuid.uuid4().hex[:12]}"

    @staticmethod
    def tag_of(model: str) -> str:
        return model.split(":", 2)[2] if model.count(":") >= 2 else ""

    async def _call(
        self, method: str, path: str, params: dict[str, Any] | None = None, http_timeout: float = 10.0
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        async with httpx.AsyncClient(timeout=http_timeout, trust_env=False) as c:
            r = await c.request(method, self.root + path, params=query)
            r.raise_for_status()
            return r.json()

    async def requests(self, tag: str | None = None) -> list[dict[str, Any]]:
        """Chat requests received (all, or those of one tag), oldest first."""
        return list(await self._call("GET", "/_requests", {"tag": tag}))

    def requests_sync(self, tag: str | None = None) -> list[dict[str, Any]]:
        query = {"tag": tag} if tag is not None else {}
        r = httpx.get(self.root + "/_requests", params=query, timeout=10.0, trust_env=False)
        r.raise_for_status()
        return list(r.json())

    async def release(self, tag: str, gate: str) -> None:
        """Open a gate a scenario waits at (``gated_tools`` waits at ``applied``)."""
        await self._call("POST", "/_release", {"tag": tag, "gate": gate})

    async def wait_closed(self, tag: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait (server side) until the latest request of ``tag`` has its connection closed."""
        result: dict[str, Any] = await self._call(
            "GET", "/_wait_closed", {"tag": tag, "timeout": str(timeout)}, http_timeout=timeout + 5
        )
        return result

    async def reset(self) -> None:
        await self._call("POST", "/_reset")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextlib.contextmanager
def start_fake_llm(host: str = "127.0.0.1", timeout: float = 15.0) -> Iterator[FakeLLM]:
    """Start the server on a free port, wait until it accepts connections, stop it afterwards."""
    for _attempt in range(5):
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_llm.server", "--host", host, "--port", str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline and not _accepts(port):
            time.sleep(0.02)  # a poll period while the process starts, not a synchronisation sleep
        if proc.poll() is None and _accepts(port):
            break
        _stop(proc)
    else:
        raise RuntimeError("the fake LLM server did not start")
    try:
        yield FakeLLM(host, port, proc)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    with start_fake_llm() as server:
        yield server
