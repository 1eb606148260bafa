"""Server figures over real sockets on 127.0.0.1: the real API (scripts/api.sh) and nginx (tests.support.stack)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from bench.stats import median
from tests.helpers import free_port
from tests.support.stack import ROOT, Process, Stack, insecure_ssl_context, nginx_args, render_nginx
from tests.support.ws_client import open_session, recv, tree_op, wait_for

HIGH = "1000000"
# A benchmark measures the server, not its limits: the rate limits are lifted, and so are the quotas, as every
# socket and session comes from 127.0.0.1 and a hundred or more users.
LIFTED_LIMITS = {
    "RATE_LIMIT_FRAMES_PER_SECOND": HIGH,
    "RATE_LIMIT_FRAME_BURST": HIGH,
    "RATE_LIMIT_PROMPTS_PER_MINUTE": HIGH,
    "RATE_LIMIT_STRIKES_BEFORE_CLOSE": HIGH,
    "WS_MAX_SOCKETS_PER_USER": HIGH,
    "WS_MAX_UNAUTHENTICATED_PER_IP": HIGH,
    "NGINX_WS_CONN_PER_IP": "60000",
    "MAX_SESSIONS_PER_USER": HIGH,
    "SESSIONS_CREATED_PER_MINUTE": HIGH,
}
_ids = itertools.count()


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def worker_pid(master: int) -> int:
    return int(Path(f"/proc/{master}/task/{master}/children").read_text().split()[0])


def start_stack(workdir: Path) -> Stack:
    stack = Stack(
        workdir,
        env_overrides={
            **LIFTED_LIMITS,
            "OFFLINE_CHUNK_DELAY_MS": "0",
            "WS_IDLE_TIMEOUT_SECONDS": "3600",
            "LOG_LEVEL": "WARNING",
        },
    )
    stack.start()
    return stack


# ---- offline prompt -> first tree_update --------------------------------------------------------
async def prompt_turn(ws: Any) -> float:
    """One offline turn ("add item ... to root") to its end; returns ms from the prompt to its first tree_update."""
    pid = f"p{next(_ids)}"
    t0 = time.perf_counter()
    prompt = {"type": "user_prompt", "id": pid, "data": {"prompt": f"add item {pid} to root"}}
    await ws.send(orjson.dumps(prompt).decode())
    first = None
    while True:
        frame = await recv(ws)
        if frame.get("type") == "error" and frame.get("id") == pid:
            raise RuntimeError(f"prompt failed: {frame}")
        if first is None and frame.get("type") == "tree_update" and frame.get("id") == pid:
            first = (time.perf_counter() - t0) * 1000
        if frame.get("type") == "assistant_response" and frame.get("id") == pid and not frame["data"]["chunk"]:
            if first is None:
                raise RuntimeError(f"turn ended without tree_update: {frame}")
            return first


async def prompt_latency(
    url: str | list[str], tokens: list[str], rounds: int, pace: float | None = None, **connect: Any
) -> list[float]:
    """Lockstep rounds (every user prompts at once) or, with `pace`, each user on its own clock with a random
    think time averaging `pace` seconds before each prompt (an open, human-like arrival pattern). `url` may be
    one URL per user (each naming its session for nginx's hash)."""
    urls = url if isinstance(url, list) else [url] * len(tokens)
    sockets = [(await open_session(u, t, **connect))[0] for u, t in zip(urls, tokens, strict=True)]
    samples: list[float] = []
    try:
        await asyncio.gather(*(prompt_turn(ws) for ws in sockets))  # warm-up round, not counted
        if pace is None:
            for _ in range(rounds):
                samples.extend(await asyncio.gather(*(prompt_turn(ws) for ws in sockets)))
        else:

            async def user(ws: Any) -> None:
                for _ in range(rounds):
                    await asyncio.sleep(random.uniform(0, 2 * pace))
                    samples.append(await prompt_turn(ws))

            await asyncio.gather(*(user(ws) for ws in sockets))
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return samples


# ---- persisted tree_ops per second --------------------------------------------------------------
async def tree_op_throughput(url: str, tokens: list[str], seconds: float) -> tuple[float, int]:
    """Each socket (its own user, so its own session) keeps one tree_op in flight: add a node, then update it."""
    opened = [await open_session(url, t) for t in tokens]
    done = 0
    try:

        async def setup(ws: Any, ready: dict[str, Any]) -> str:
            nid = f"b{next(_ids)}"
            fid = f"s{nid}"
            node = {"id": nid, "value": "bench", "children": []}
            await ws.send(tree_op(fid, {"action": "add", "path": "/root/children", "node": node}))
            await wait_for(ws, fid, "tree_update")
            return nid

        nids = await asyncio.gather(*(setup(ws, r) for ws, r in opened))
        stop = time.perf_counter() + seconds

        async def loop(ws: Any, nid: str) -> int:
            n = 0
            while time.perf_counter() < stop:
                fid = f"u{n}"
                await ws.send(tree_op(fid, {"action": "update", "path": f"/root/{nid}", "fields": {"value": f"v{n}"}}))
                await wait_for(ws, fid, "tree_update")
                n += 1
            return n

        t0 = time.perf_counter()
        counts = await asyncio.gather(*(loop(ws, nid) for (ws, _), nid in zip(opened, nids, strict=True)))
        elapsed = time.perf_counter() - t0
        done = sum(counts)
    finally:
        await asyncio.gather(*(ws.close() for ws, _ in opened), return_exceptions=True)
    return done / elapsed, done


# ---- one change fanned out to every tab of a shared session ------------------------------------
async def fanout_latency(
    api_url: str, ws_url: str, tokens: list[str], names: list[str], tabs: int, changes: int
) -> list[float]:
    """A session owned by the first user and shared with the others (editors), `tabs` sockets spread over
    the users; each change (a tree_op from a rotating tab) is timed from its send until the last tab has
    its tree_update. Returns one figure (ms) per change."""
    headers = {"Authorization": f"Bearer {tokens[0]}"}
    async with httpx.AsyncClient(base_url=api_url, trust_env=False, timeout=60) as client:
        sid = (await client.post("/api/sessions", json={"title": "fan-out"}, headers=headers)).json()["session_id"]
        for name in names[1:]:
            r = await client.post(
                f"/api/sessions/{sid}/members", json={"username": name, "role": "editor"}, headers=headers
            )
            assert r.status_code in (201, 409), r.text
    sockets = []
    for i in range(tabs):
        ws = await websockets.connect(ws_url, ping_interval=None, max_size=2**22, open_timeout=60)
        await ws.send(
            orjson.dumps(
                {"type": "init_session", "id": "init", "data": {"token": tokens[i % len(tokens)], "session_id": sid}}
            ).decode()
        )
        await wait_for(ws, "init", "session_ready")
        sockets.append(ws)
    samples: list[float] = []
    try:

        async def one(n: int, counted: bool) -> None:
            fid = f"f{next(_ids)}"
            sender = sockets[n % tabs]
            t0 = time.perf_counter()
            await sender.send(
                tree_op(fid, {"action": "add", "path": "/root/children", "node": {"id": fid, "value": "fan-out"}})
            )
            await asyncio.gather(*(wait_for(ws, fid, "tree_update") for ws in sockets))
            if counted:
                samples.append((time.perf_counter() - t0) * 1000)

        for n in range(10):  # warm-up
            await one(n, False)
        for n in range(changes):
            await one(n, True)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return samples


# ---- ping/pong through nginx vs echo --------------------------------------------------------------
PING = orjson.dumps({"type": "ping", "id": "p", "data": {}}).decode()


async def ping_rate(url: str | list[str], tokens: list[str] | None, conns: int, seconds: float) -> float:
    ssl_ctx = insecure_ssl_context()
    sockets: list[Any] = []
    sem = asyncio.Semaphore(20)
    urls = url if isinstance(url, list) else [url]

    async def connect(i: int) -> Any:
        async with sem:
            target = urls[i % len(urls)]
            if tokens is not None:
                return (await open_session(target, tokens[i % len(tokens)], ssl=ssl_ctx))[0]
            return await websockets.connect(target, ping_interval=None, ssl=ssl_ctx, open_timeout=60)

    sockets = list(await asyncio.gather(*(connect(i) for i in range(conns))))
    try:

        async def loop(ws: Any) -> int:
            n = 0
            while time.perf_counter() < stop:
                await ws.send(PING)
                while True:  # the echo answers with the ping itself, Canopy with a pong
                    frame = orjson.loads(await ws.recv())
                    if frame.get("type") in ("pong", "ping"):
                        break
                n += 1
            return n

        for ws in sockets:  # one warm-up round trip each
            await ws.send(PING)
            await ws.recv()
        stop = time.perf_counter() + seconds
        t0 = time.perf_counter()
        counts = await asyncio.gather(*(loop(ws) for ws in sockets))
        return sum(counts) / (time.perf_counter() - t0)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


class EchoBehindNginx:
    """bench.echo_app on bare uvicorn, behind a second nginx rendered from the same template."""

    def __init__(self, workdir: Path, stack: Stack) -> None:
        self.port = free_port()
        self.https_port = free_port()
        self.http_port = free_port()
        self.run_dir = workdir / "echo-nginx"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.run_dir / "nginx.conf"
        self.stack = stack
        self.echo = Process(
            "echo",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.echo_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--ws",
                "websockets-sansio",
                "--lifespan",
                "off",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            dict(os.environ),
            self.run_dir,
        )
        self.nginx = Process(
            "echo-nginx", [*nginx_args(self.conf), "-g", "daemon off;"], dict(os.environ), self.run_dir
        )

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}/ws/session"

    def start(self) -> None:
        result = render_nginx(
            self.conf,
            TLS_CERT_FILE=str(self.stack.cert_file),
            TLS_KEY_FILE=str(self.stack.key_file),
            HTTPS_PORT=str(self.https_port),
            HTTP_PORT=str(self.http_port),
            API_UPSTREAM=f"127.0.0.1:{self.port}",
            WEB_ROOT=str(self.stack.web_root),
            NGINX_LISTEN_ADDR="127.0.0.1",
            NGINX_RUN_DIR=str(self.run_dir),
            **({"NGINX_USER": "root"} if os.geteuid() == 0 else {}),
        )
        assert result.returncode == 0, result.stderr
        self.echo.start()
        self.nginx.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.echo.check_alive()
            self.nginx.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(
                        f"https://127.0.0.1:{self.https_port}/api/x", verify=False, timeout=2, trust_env=False
                    ).status_code
                    == 200
                ):
                    return
            time.sleep(0.1)
        raise TimeoutError("echo app behind nginx did not answer")

    def stop(self) -> None:
        import signal

        self.nginx.stop(signal.SIGQUIT)
        self.echo.stop()


# ---- idle sessions ------------------------------------------------------------------------------
async def idle_sessions(url: str, tokens: list[str], n: int, master_pid: int) -> dict[str, Any]:
    pid = worker_pid(master_pid)
    warm = [(await open_session(url, t))[0] for t in tokens]  # every session loaded once before the baseline
    await asyncio.sleep(1)
    before = rss_kb(pid)
    sem = asyncio.Semaphore(64)
    opened: list[Any] = []
    t0 = time.perf_counter()

    async def one(i: int) -> None:
        async with sem:
            opened.append((await open_session(url, tokens[i % len(tokens)]))[0])

    try:
        results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
        open_s = time.perf_counter() - t0
        failures = [r for r in results if isinstance(r, BaseException)]
        await asyncio.sleep(2)
        after = rss_kb(pid)
        # still alive? one ping on a sample of sockets
        for ws in opened[:: max(1, len(opened) // 20)]:
            await ws.send(PING)
            await asyncio.wait_for(ws.recv(), 10)
        return {
            "requested": n,
            "opened": len(opened),
            "failures": len(failures),
            "first_failure": repr(failures[0]) if failures else "",
            "rss_before_kb": before,
            "rss_after_kb": after,
            "kb_per_conn": (after - before) / max(1, len(opened)),
            "open_seconds": open_s,
        }
    finally:
        await asyncio.gather(*(ws.close() for ws in opened + warm), return_exceptions=True)


def web_bundle() -> dict[str, Any]:
    web = ROOT / "services" / "web"
    proc = subprocess.run(
        ["npm", "run", "--silent", "size"], cwd=web, capture_output=True, text=True, timeout=120, check=False
    )
    return {"rc": proc.returncode, "output": (proc.stdout + proc.stderr).strip()}


def nginx_binary_path() -> str:
    from tests.support.stack import nginx_binary

    return nginx_binary()


def cpu_seconds(pid: int) -> float:
    """user+system CPU seconds of a process (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU use of the API worker and of this (client) process over a span, as % of one core."""

    def __init__(self, worker: int) -> None:
        self.worker = worker
        self.spans: list[tuple[float, float]] = []

    def __enter__(self) -> CpuMeter:
        self._w0 = cpu_seconds(self.worker)
        t = os.times()
        self._c0 = t.user + t.system
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._t0
        t = os.times()
        self.spans.append(
            (100 * (cpu_seconds(self.worker) - self._w0) / wall, 100 * (t.user + t.system - self._c0) / wall)
        )

    def summary(self) -> str:
        if not self.spans:
            return ""
        w = median([s[0] for s in self.spans])
        c = median([s[1] for s in self.spans])
        return f"API worker CPU {w:.0f}% of a core, benchmark client CPU {c:.0f}%"
