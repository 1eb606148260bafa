"""Scale-out figures (docs/scaling.md): REPLICAS=1 vs 2 on one PostgreSQL behind nginx's session
hash, persisted changes/s on PostgreSQL, and failover time (kill -9 -> first resumed frame)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import websockets
from sqlalchemy.engine import make_url

from bench import server
from bench.stats import median, percentile
from tests.pg import LocalPostgres
from tests.support import ws_client
from tests.support.stack import Stack, insecure_ssl_context
from tests.support.users import make_users

Row = Callable[[str, str, str, str, str], None]
Note = Callable[[str], None]
USERS = 100


def start(workdir: Path, database_url: str, replicas: int, **env: str) -> Stack:
    stack = Stack(
        workdir,
        replicas=replicas,
        database_url=database_url,
        env_overrides={
            "OFFLINE_CHUNK_DELAY_MS": "0",
            "RATE_LIMIT_FRAMES_PER_SECOND": server.HIGH,
            "RATE_LIMIT_FRAME_BURST": server.HIGH,
            "RATE_LIMIT_PROMPTS_PER_MINUTE": server.HIGH,
            "RATE_LIMIT_STRIKES_BEFORE_CLOSE": server.HIGH,
            "SESSIONS_CREATED_PER_MINUTE": server.HIGH,
            "WS_IDLE_TIMEOUT_SECONDS": "3600",
            "LOG_LEVEL": "WARNING",
            **env,
        },
    )
    stack.start()
    return stack


async def sessions_for(stack: Stack, tokens: list[str]) -> list[str]:
    """One new session per user, through nginx (creation goes to any replica)."""
    async with httpx.AsyncClient(base_url=stack.base_url, verify=False, trust_env=False, timeout=30) as c:

        async def one(token: str) -> str:
            r = await c.post("/api/sessions", json={"title": "bench"}, headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()
            return str(r.json()["session_id"])

        return list(await asyncio.gather(*(one(t) for t in tokens)))


async def burst(stack: Stack, tokens: list[str], sids: list[str], rounds: int) -> list[float]:
    """Every user prompts at the same instant, each on its own session, through nginx (wss, ?session=)."""
    urls = [f"{stack.ws_url}?session={sid}" for sid in sids]
    return await server.prompt_latency(urls, tokens, rounds, ssl=insecure_ssl_context())


async def pings(stack: Stack, tokens: list[str], sids: list[str], seconds: float) -> float:
    urls = [f"{stack.ws_url}?session={sid}" for sid in sids]
    return await server.ping_rate(urls, tokens, len(tokens), seconds)


def owner_index(stack: Stack, pg: LocalPostgres, sid: str) -> int:
    """The replica whose worker holds the session's lease (lease owners are `host:pid:nonce`)."""
    database = str(make_url(stack.database_url).database)
    owner = pg.sql(f"SELECT owner FROM session_leases WHERE session_id = '{sid}'", database)
    pid = int(owner.split(":")[1])
    return [server.worker_pid(api.proc.pid) for api in stack.apis if api.proc is not None].index(pid)


async def failover_once(stack: Stack, pg: LocalPostgres, token: str, sid: str) -> float:
    """Seconds from kill -9 of the session's replica to the first frame of the resumed session."""
    ssl = insecure_ssl_context()
    ws, _ = await ws_client.open_session(f"{stack.ws_url}?session={sid}", token, ssl=ssl)
    await ws.close()
    victim = owner_index(stack, pg, sid)
    t0 = time.perf_counter()
    stack.apis[victim].stop(signal.SIGKILL)
    while True:
        try:
            ws, _ = await ws_client.open_session(f"{stack.ws_url}?session={sid}", token, ssl=ssl)
        except (OSError, websockets.exceptions.WebSocketException, AssertionError, TimeoutError):
            await asyncio.sleep(0.1)  # a client's reconnect pause
            continue
        elapsed = time.perf_counter() - t0
        await ws.close()
        break
    await asyncio.to_thread(stack.start_replica, victim)
    await asyncio.to_thread(stack.wait_ready)
    return elapsed


async def delete_reaches_owner(stack: Stack, token: str) -> float:
    """Seconds from a REST delete on replica 1 to the close of a tab served by replica 0."""
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        auth = {"Authorization": f"Bearer {token}"}
        created = await c.post(stack.replica_url(0) + "/api/sessions", json={"title": "d"}, headers=auth)
        created.raise_for_status()
        sid = created.json()["session_id"]
        ws, _ = await ws_client.open_session(f"ws://127.0.0.1:{stack.api_ports[0]}/ws/session?session={sid}", token)
        t0 = time.perf_counter()
        r = await c.delete(stack.replica_url(1) + f"/api/sessions/{sid}", headers=auth)
        r.raise_for_status()
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            while True:
                await ws.recv()
        return time.perf_counter() - t0


async def run_scale(row: Row, note: Note, quick: bool, workdir: Path) -> None:
    """One database for every stack here: the users (argon2, slow) and their sessions are made once."""
    runs = 3 if quick else 5
    seconds = 3.0 if quick else 6.0
    pg = LocalPostgres()
    pg.start()
    try:
        database_url = pg.url_for(pg.create_database())
        burst_rows: dict[int, tuple[float, float]] = {}
        ping_rows: dict[int, float] = {}
        tokens: list[str] = []
        sids: list[str] = []
        for replicas in (1, 2):
            stack = start(workdir / f"replicas-{replicas}", database_url, replicas, LEASE_SECONDS="10")
            try:
                if not tokens:
                    tokens = await make_users(stack.api_url, USERS + 1, "scale")
                    sids = await sessions_for(stack, tokens)
                users, sessions = tokens[:USERS], sids[:USERS]
                p50s, p99s = [], []
                for _ in range(runs):
                    v = await burst(stack, users, sessions, 1 if quick else 2)
                    p50s.append(percentile(v, 50))
                    p99s.append(percentile(v, 99))
                burst_rows[replicas] = (median(p50s), median(p99s))
                ping_rows[replicas] = median([await pings(stack, users, sessions, seconds) for _ in range(runs)])
                if replicas == 1:
                    ws_api = f"ws://127.0.0.1:{stack.api_port}/ws/session"
                    rates = [(await server.tree_op_throughput(ws_api, users, seconds))[0] for _ in range(runs)]
                    row(
                        f"persisted tree_ops/s on PostgreSQL (local, unix socket), {USERS} sessions, 1 in flight "
                        f"each ({runs} runs x {seconds:.0f} s)",
                        f"{median(rates):,.0f}/s",
                        f"{percentile(rates, 1):,.0f}/s (slowest run)",
                        "compare: SQLite row above",
                        "info",
                    )
                else:  # two replicas: failover and cross-replica delete
                    times = [await failover_once(stack, pg, tokens[USERS], sids[USERS]) for _ in range(runs)]
                    deletes = [await delete_reaches_owner(stack, tokens[USERS]) for _ in range(runs * 4)]
            finally:
                stack.stop()
        for replicas in (1, 2):
            p50, p99 = burst_rows[replicas]
            row(
                f"same-instant burst of {USERS} prompts via nginx, REPLICAS={replicas} on PostgreSQL ({runs} runs)",
                f"p50 {p50:.2f} ms",
                f"p99 {p99:.2f} ms",
                "falls with replicas",
                "info",
            )
        for replicas in (1, 2):
            row(
                f"authenticated ping/pong via nginx wss, {USERS} conns, REPLICAS={replicas} ({runs} runs x "
                f"{seconds:.0f} s)",
                f"{ping_rows[replicas]:,.0f} msg/s",
                "—",
                "info",
                "info",
            )
        note(
            "Scale-out rows: the same machine (2 cores shared by the client, nginx, PostgreSQL and the replicas), "
            "so REPLICAS=2 shows how the work spreads, not what two machines would give; each user has its own "
            "session, named in the socket URL (?session=), so nginx's hash spreads them over the replicas."
        )
        row(
            f"failover: kill -9 of the session's replica → first resumed frame, LEASE_SECONDS=10 ({runs} runs)",
            f"p50 {percentile(times, 50):.1f} s",
            f"p99 {percentile(times, 99):.1f} s",
            "≤ 15 s",
            "**pass**" if percentile(times, 99) <= 15 else "**FAIL**",
        )
        row(
            f"REST delete on one replica → the tabs on the serving replica closed ({len(deletes)} runs)",
            f"p50 {percentile(deletes, 50) * 1000:.0f} ms",
            f"p99 {percentile(deletes, 99) * 1000:.0f} ms",
            "≤ 1 s",
            "**pass**" if percentile(deletes, 99) <= 1 else "**FAIL**",
        )
        note(
            "Failover: the client reconnects through nginx every 0.1 s after the kill; the next replica on the "
            "hash ring waits for the dead replica's lease to run out (LEASE_SECONDS), loads the session from "
            "PostgreSQL and answers session_ready. Runs: " + ", ".join(f"{t:.1f} s" for t in times) + "."
        )
    finally:
        with contextlib.suppress(Exception):
            pg.remove()
