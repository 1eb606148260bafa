"""A/B of the same-instant prompt burst across checkouts, in alternation, on whatever load the machine has.

    .venv/bin/python -m bench.ab_burst CHECKOUT [CHECKOUT ...] [--rounds 2] [--bursts 4]

Each CHECKOUT is a directory holding a Canopy tree (a `git worktree add /tmp/old <rev>` will do); its API
runs from its own `services/api` on this venv's packages, directly (no nginx), with the benchmark's lifted
limits and `OFFLINE_CHUNK_DELAY_MS=0`, as `make bench`'s prompt rows do. 100 users open a session each;
every burst is 4 rounds in which all 100 prompt at once. Printed per run: the p50 of each burst (prompt →
first `tree_update`) and the worker's CPU time per prompt (socket attach included). Absolute figures
move with the machine's load; checkouts measured in alternation in one window compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
from pathlib import Path

import httpx

from bench import server
from bench.stats import median
from tests.helpers import free_port, wait_until
from tests.support.users import make_users

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-ab-secret-key-0123456789-abcdefghijklmnop"


def start_api(
    checkout: Path, data_dir: str, wrapper: tuple[str, ...] = (), ready_within: float = 60
) -> tuple[subprocess.Popen[bytes], str]:
    """The checkout's API on a free port; `wrapper` runs gunicorn under another program (valgrind)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "RATE_LIMIT_", "WS_"))}
    env.update(
        API_HOST="127.0.0.1",
        API_PORT=str(port),
        DATA_DIR=data_dir,
        SECRET_KEY=SECRET,
        ENVIRONMENT="development",
        LLM_PROVIDER="offline",
        PYTHONPATH=str(checkout / "services/api"),  # ahead of this venv's editable install
        OFFLINE_CHUNK_DELAY_MS="0",
        WS_IDLE_TIMEOUT_SECONDS="3600",
        LOG_LEVEL="WARNING",
        **server.LIFTED_LIMITS,
    )
    gunicorn = str(ROOT / ".venv/bin/gunicorn")
    config = str(checkout / "services/api/gunicorn.conf.py")
    # A wrapped worker is slow: its start can outlast gunicorn's 60 s heartbeat.
    slow = ["--timeout", "3600"] if wrapper else []
    command = [*wrapper, gunicorn, "--no-control-socket", *slow, "-c", config, "canopy.main:app"]
    with open(Path(data_dir) / "api.log", "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=checkout,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the API of {checkout} exited ({proc.returncode}); see {data_dir}/api.log")
        try:
            return httpx.get(url + "/api/healthz", trust_env=False, timeout=30).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, ready_within, f"the API of {checkout} answers")
    return proc, url


async def one_run(checkout: Path, bursts: int) -> str:
    data_dir = tempfile.mkdtemp(prefix="canopy-ab-")
    proc, url = start_api(checkout, data_dir)
    try:
        tokens = await make_users(url, 100, "abuser")
        ws = url.replace("http", "ws") + "/ws/session"
        worker = server.worker_pid(proc.pid)
        await server.prompt_latency(ws, tokens, 1)  # warm-up, not counted
        p50s: list[float] = []
        prompts = 0
        cpu0 = server.cpu_seconds(worker)
        for _ in range(bursts):
            samples = sorted(await server.prompt_latency(ws, tokens, 4))
            prompts += len(samples) + len(tokens)  # each call also runs a warm-up round
            p50s.append(samples[len(samples) // 2])
        cpu_ms = (server.cpu_seconds(worker) - cpu0) * 1000 / prompts
        bursts_text = ", ".join(f"{p:.1f}" for p in p50s)
        figures = f"median {median(p50s):.1f} ms; worker {cpu_ms:.2f} ms CPU/prompt"
        return f"{checkout}: burst p50s [{bursts_text}] ms, {figures}"
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the checkouts (alternating)")
    parser.add_argument("--bursts", type=int, default=4, help="bursts per run")
    args = parser.parse_args()
    server.raise_nofile()
    for _ in range(args.rounds):
        for checkout in args.checkouts:
            print(asyncio.run(one_run(checkout.resolve(), args.bursts)), flush=True)


if __name__ == "__main__":
    main()
