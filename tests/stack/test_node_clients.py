"""Official Node clients against the whole stack (nginx + gunicorn): @ag-ui/client's HttpAgent on the AG-UI
endpoint and @modelcontextprotocol/sdk's Client on /mcp. The scripts are in services/web/tests-interop."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import wait_until
from tests.support.stack import ROOT, Stack, running_stack

SCRIPTS = ROOT / "services" / "web" / "tests-interop"
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose offline assistant streams slowly, so a second run surely finds the first one running."""
    with running_stack(
        tmp_path_factory.mktemp("node-stack"), env_overrides={"OFFLINE_CHUNK_DELAY_MS": "200"}
    ) as running:
        yield running


def account(stack: Stack) -> tuple[str, str, str]:
    """(access token, write PAT, session id) of a fresh user."""
    with httpx.Client(base_url=stack.base_url, verify=False, timeout=10, trust_env=False) as c:
        name = f"n{uuid.uuid4().hex[:12]}"
        assert c.post("/api/auth/register", json={"username": name, "password": "node-password-1"}).is_success
        login = c.post("/api/auth/login", data={"username": name, "password": "node-password-1"})
        access = login.json()["access_token"]
        c.headers["Authorization"] = f"Bearer {access}"
        session_id = c.post("/api/sessions", json={"title": "Node"}).json()["session_id"]
        pat = c.post("/api/tokens", json={"name": "Node client", "scope": "write"}).json()["token"]
    return access, pat, session_id


def run_node(script: Path, stack: Stack) -> str:
    node = shutil.which("node")
    assert node, "node is not installed"
    access, pat, session_id = account(stack)
    env = {
        **os.environ,
        "CANOPY_URL": stack.base_url,
        "CANOPY_ACCESS": access,
        "CANOPY_TOKEN": pat,
        "CANOPY_SESSION": session_id,
        "NODE_TLS_REJECT_UNAUTHORIZED": "0",
    }  # the stack's self-signed certificate; loopback only
    done = subprocess.run(
        [node, str(script)], cwd=SCRIPTS, env=env, capture_output=True, text=True, timeout=150, check=False
    )
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_agui_http_agent_runs_a_turn_and_its_state_matches_rest(slow_stack: Stack) -> None:
    out = run_node(SCRIPTS / "agui-run.mjs", slow_stack)
    assert '"ok":true' in out and "already running" in out


def test_revoking_its_token_ends_a_running_agui_run(slow_stack: Stack) -> None:
    assert '"ok":true' in run_node(SCRIPTS / "agui-revoke.mjs", slow_stack)


def test_typescript_mcp_sdk_client(slow_stack: Stack) -> None:
    assert '"ok":true' in run_node(SCRIPTS / "mcp-run.mjs", slow_stack)


def test_an_agui_client_that_disconnects_cancels_its_turn(slow_stack: Stack) -> None:
    access, pat, session_id = account(slow_stack)
    body = {
        "threadId": "t",
        "runId": "r",
        "messages": [{"id": "u", "role": "user", "content": "Add 'A', 'B', 'C', 'D' and 'E' under root"}],
    }
    with httpx.Client(base_url=slow_stack.base_url, verify=False, timeout=30, trust_env=False) as c:
        with c.stream(
            "POST",
            f"/api/agui/sessions/{session_id}",
            json=body,
            headers={"Authorization": f"Bearer {pat}", "Accept": "text/event-stream"},
        ) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if '"TEXT_MESSAGE_CONTENT"' in line:  # the answer is streaming: go away mid-turn
                    break

        def last_answer() -> dict[str, object] | None:
            history = c.get(f"/api/sessions/{session_id}", headers={"Authorization": f"Bearer {access}"}).json()
            answers = [m for m in history["history"] if m["role"] == "assistant"]
            return answers[-1] if answers else None

        wait_until(lambda: last_answer() is not None, 20, "the turn ended")
        answer = last_answer()
        assert answer is not None and answer.get("cancelled") is True
