"""Instructions per socket attach and per prompt, counted by valgrind, across checkouts: figures that do not
move with the machine's load (a wall-clock or CPU-time A/B here drifts ~2x within minutes).

    .venv/bin/python -m bench.ab_instructions CHECKOUT [CHECKOUT ...] [--users 20] [--rounds 3]

Each CHECKOUT's API (as `bench.ab_burst` starts it: offline provider, lifted limits, no chunk delay) runs under
`valgrind --tool=callgrind` with counting off; after a warm-up round (sessions created, code paths warm) the
worker counts the instructions of USERS sockets attaching to their in-memory sessions, then of ROUNDS rounds in
which every user prompts "add item ... to root" at once and waits for the answer. Needs valgrind (Debian's
package); a run takes a few minutes, most of it the start under valgrind. Instructions are not time (system
calls and cache misses are left out), but for the same work they repeat within ~1%, so checkouts compare.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import server
from bench.ab_burst import start_api
from tests.helpers import wait_until
from tests.support.users import make_users
from tests.support.ws_client import open_session

_ids = itertools.count()


def _callgrind(action: str, worker: int) -> None:
    done = subprocess.run(["callgrind_control", *action.split(), str(worker)], capture_output=True, text=True)
    if done.returncode != 0 or "No active callgrind" in done.stdout:  # it exits 0 when it found no run
        raise RuntimeError(f"callgrind_control {action} {worker}: {done.stdout}{done.stderr}")


def _count(worker: int, out_dir: str, tag: str) -> int:
    """Stops counting, dumps, and returns the dump's instruction total."""
    _callgrind("-i off", worker)
    before = set(glob.glob(f"{out_dir}/cg.{worker}.*"))
    _callgrind(f"--dump={tag}", worker)
    wait_until(lambda: bool(set(glob.glob(f"{out_dir}/cg.{worker}.*")) - before), 60, "callgrind's dump")
    (dump,) = set(glob.glob(f"{out_dir}/cg.{worker}.*")) - before
    wait_until(lambda: "\ntotals:" in Path(dump).read_text(), 60, "the dump's totals")
    for line in Path(dump).read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


async def one_run(checkout: Path, users: int, rounds: int) -> str:
    data_dir = tempfile.mkdtemp(prefix="canopy-instr-")
    wrapper = (
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--trace-children=yes",  # without it, callgrind_control does not find the forked worker
        f"--callgrind-out-file={data_dir}/cg.%p",
        sys.executable,
    )
    proc, url = start_api(checkout, data_dir, wrapper, ready_within=900)
    try:
        tokens = await make_users(url, users, "instr")
        ws_url = url.replace("http", "ws") + "/ws/session"
        await server.prompt_latency(ws_url, tokens, 1)  # warm-up: sessions created and in memory
        worker = server.worker_pid(proc.pid)
        _callgrind("-z", worker)
        _callgrind("-i on", worker)
        sockets = [(await open_session(ws_url, token))[0] for token in tokens]
        attach = _count(worker, data_dir, "attach")
        _callgrind("-z", worker)
        _callgrind("-i on", worker)
        for _ in range(rounds):
            await asyncio.gather(*(server.prompt_turn(ws) for ws in sockets))
        prompts = _count(worker, data_dir, "prompts")
        await asyncio.gather(*(ws.close() for ws in sockets))
        per_attach = attach / users / 1e6
        per_prompt = prompts / (users * rounds) / 1e6
        return f"{checkout}: {per_attach:.3f} M instructions per attach, {per_prompt:.3f} M per prompt"
    finally:
        proc.terminate()
        proc.wait(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server.raise_nofile()
    for checkout in args.checkouts:
        print(asyncio.run(one_run(checkout.resolve(), args.users, args.rounds)), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONMALLOC", "malloc")  # valgrind sees every allocation (the API inherits it)
    main()
