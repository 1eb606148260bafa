"""The soak's load engine: simulated users against the real stack for a bounded time; the worker's RSS must
plateau.

The stack is the real one (scripts/api.sh: gunicorn + one uvicorn worker, real SQLite, offline assistant)
behind the real nginx, and every user talks wss to nginx on 127.0.0.1, as a browser does. Rate limits are
raised out of the way (as `bench.server.start_stack` does), so any 429 is a failure; everything else keeps
its default, the offline assistant's 15 ms between reply chunks included, so a turn lasts ~0.1 s and turns
of different users overlap as they do in real use.

Each user is one asyncio task: think 0.5-3 s, then one action, over and over until the clock runs out:
prompts in the offline assistant's phrasings (add one or several nodes, rename, set props, delete, move,
show, help, undo, clear), direct `tree_op`s (add, update, remove, move; sometimes with a stale `base_rev`),
undo, redo, a prompt with a cancel right behind it, resync, reconnects (clean close + resume with
`last_seq`, a dropped TCP connection + resume, a dropped connection in the middle of a turn + resume, a
reload without `last_seq`), a second tab on the same session for a while, switching back to the user's other
session, REST reads, and every 30-50 s a new session (REST) that the tab moves to, the oldest session being
deleted. That last one keeps the workload steady: each session lives ~2 of those spans, so what sessions hold
in memory (undo and chat history, replay buffer, tree) stops growing in total within the warm-up; sessions used
for the whole run would still be filling their bounded histories at its end, which looks like a leak. A user
does one thing at a time, as a person does, so the only errors the server may answer are the ones that action
can legitimately get: 409 for undo/redo with nothing to undo/redo, and for a cancel that arrives after its turn
ended (the 409 must then come after the turn's end).

Every tab keeps its own copy of the tree from `tree_update`s (with the server's tree engine) and checks
`seq` (no gaps) and `rev` (+1 each); after a resume by replay the replayed frames must bring the old view to
exactly the tree `session_ready` carried; every resync, every REST read and the final check compare the
view with the server's. Also failures: an error code the action cannot legitimately get, a socket the
server closed that the client did not ask to close, an answer that takes longer than 30 s, a prompt whose
effect does not show in the tree, the worker restarting, an ERROR line in the API log.

Memory: the worker's VmRSS is sampled every few seconds. Plateau criterion (judged on runs of 120 s or
more): the least-squares slope of RSS over the second half of the run (the first half is warm-up: sessions
turn over, SQLite's page cache and the allocator's arenas settle), times that window's length, must not
exceed max(8 MiB, 0.25 KiB x client requests in the window). At ~115 requests/s a leak of 1 KiB per request
grows ~17 MiB over the 150 s window and fails; allocator noise (a few MiB) passes.

Run by tests/soak/test_soak.py (`python -m bench.loadclient WORKDIR`). Sizes (tests/support/soak.py): 20 users x 20 s
by default (a `make test` stack test); 200 users x 300 s with CANOPY_FUZZ=long
(`make fuzz`). CANOPY_SOAK_USERS / CANOPY_SOAK_SECONDS override, CANOPY_SOAK_SEED replays a run's choices
(up to timing), CANOPY_SOAK_REPORT (default /tmp/canopy-soak.md) is where the Markdown report goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import websockets
from websockets.exceptions import ConnectionClosed

from bench.server import LIFTED_LIMITS, cpu_seconds, raise_nofile, rss_kb, worker_pid
from canopy.tree import ROOT_ID, DeltaError, Tree
from tests.support.soak import HARD_TIMEOUT, REPORT, SECONDS, USERS
from tests.support.stack import ROOT, Stack, insecure_ssl_context
from tests.support.users import make_users
from tests.support.ws_client import open_session

SEED = int(os.environ.get("CANOPY_SOAK_SEED") or random.randrange(1 << 32))

THINK_SECONDS = (0.5, 3.0)
ACTION_TIMEOUT = 30.0
KEEPALIVE_SECONDS = 25.0  # a tab that sent nothing for this long pings (clients ping every 30 s)
TRIM_ABOVE, TRIM_TO = 150, 100  # nodes per session tree
MAX_SESSIONS = 2  # per user, made at the start; a new one past it deletes the oldest
# Every user moves to a new session this often (and so deletes the one before the last): each session lives
# ~2 of these spans, so what a session holds in memory (undo history, chat history, replay buffer, tree) stops
# growing in total well within the warm-up, where sessions used for the whole run would still be filling their
# bounded histories (100 undo steps, 200 messages, 1000 replay frames) at the end of it.
NEW_SESSION_SECONDS = (30.0, 50.0) if SECONDS >= 120 else (SECONDS / 4, SECONDS / 2)  # short runs: a few too
MAX_PARENT_DEPTH = 5  # new and moved nodes go under nodes at most this deep (the root is depth 1)
SAMPLE_SECONDS = min(5.0, max(0.5, SECONDS / 100))
WARMUP = 0.5  # fraction of the run before the plateau window (sessions take ~2 new-session spans to turn over)
JUDGE_MIN_SECONDS = 120.0
FLOOR_KB = 8 * 1024
PER_REQUEST_KB = 0.25

STACK_ENV = {**LIFTED_LIMITS, "OFFLINE_CHUNK_DELAY_MS": "15", "LOG_LEVEL": "WARNING"}

# The errors an action may legitimately get (code -> start of the message); anything else fails the run.
ALLOWED_ERRORS: dict[str, dict[int, str]] = {
    "undo": {409: "Nothing to undo"},
    "redo": {409: "Nothing to redo"},
    "cancel": {409: "No turn is running"},
}

ACTION_WEIGHTS: dict[str, float] = {
    "prompt_add": 14,
    "prompt_rename": 5,
    "prompt_props": 4,
    "prompt_delete": 4,
    "prompt_move": 2,
    "prompt_other": 2,
    "op_add": 16,
    "op_update": 12,
    "op_remove": 6,
    "op_move": 4,
    "undo": 7,
    "redo": 4,
    "cancel": 2,
    "resync": 4,
    "reconnect": 3,
    "second_tab": 2,
    "switch_session": 1.5,
    "rest_read": 1.5,
}  # besides these, every user moves to a new session every NEW_SESSION_SECONDS
NEEDS_NODES = {"prompt_rename", "prompt_props", "prompt_delete", "prompt_move", "op_update", "op_remove", "op_move"}


class TabClosedError(Exception):
    pass


class ActionTimeoutError(Exception):
    pass


@dataclass
class Sample:
    t: float
    rss_kb: int
    requests: int
    sockets: int
    sessions: int


class Soak:
    """What all users share: the stack's addresses, the counters, the failures, the RSS samples."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.http = http
        self.ssl = insecure_ssl_context()
        self.ops: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.reconnects: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.frames_in = 0
        self.frames_out = 0
        self.requests = 0  # frames sent other than ping
        self.failures: list[str] = []
        self.failure_count = 0
        self.samples: list[Sample] = []

    def fail(self, what: str) -> None:
        self.failure_count += 1
        if len(self.failures) < 40:
            self.failures.append(what[:600])


class Tab:
    """One WebSocket attached to a session, with its own copy of the session's tree."""

    def __init__(self, user: SimUser, label: str) -> None:
        self.user = user
        self.soak = user.soak
        self.label = label
        self.ws: Any = None
        self.session_id = ""
        self.tree = Tree()
        self.seq = 0
        self.resume_from: int | None = None
        self.replaying_to: tuple[int, dict[str, Any]] | None = None
        self.expect: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}
        self.errors: dict[str, list[dict[str, Any]]] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.finished: set[str] = set()
        self.sent: set[str] = set()  # ids of the requests sent on this socket
        self.arrivals = 0  # frames received so far: the order of answers
        self.ended_at: dict[str, int] = {}  # prompt id -> arrival number of the turn's end
        self.error_at: dict[str, int] = {}  # request id -> arrival number of its error
        self.cancel_of: dict[str, str] = {}  # prompt id -> the id of the cancel sent right after it
        self.closing = False
        self.close_code: int | None = None
        self.reader: asyncio.Task[None] | None = None
        self.last_sent = time.monotonic()
        self.broken = False

    @property
    def name(self) -> str:
        return f"user {self.user.index} {self.label}"

    # --- opening and closing ----------------------------------------------------------

    async def open_first(self) -> None:
        """The user's first socket: the token in init_session, no session id (the most recent, or a new one)."""
        self.ws, ready = await open_session(self.soak.stack.ws_url, self.user.token, ssl=self.soak.ssl)
        self.soak.frames_out += 1
        self._ready(ready)
        self.reader = asyncio.create_task(self._read())

    async def open(
        self, session_id: str, *, last_seq: int | None = None, view: Tab | None = None, awaiting: tuple[str, ...] = ()
    ) -> list[asyncio.Future[dict[str, Any]]]:
        """A new socket attached to `session_id`; with `last_seq` it resumes `view`'s tree and seq.
        Returns futures for the ends of the turns in `awaiting` (registered before the replay can bring them)."""
        self.ws = await websockets.connect(
            self.soak.stack.ws_url, ssl=self.soak.ssl, ping_interval=None, max_size=2**22, open_timeout=ACTION_TIMEOUT
        )
        if view is not None:
            self.tree, self.seq = view.tree, view.seq
        self.reader = asyncio.create_task(self._read())
        turns = [self._expect(rid, "turn") for rid in awaiting]
        await self.attach(session_id, last_seq=last_seq, token=True)
        return turns

    async def attach(self, session_id: str, *, last_seq: int | None = None, token: bool = False) -> None:
        """init_session on this socket (a new socket, or switching an open one to another session)."""
        rid = self.user.request_id("init")
        data: dict[str, Any] = {"session_id": session_id}
        if token:
            data["token"] = self.user.token
        if last_seq is not None:
            data["last_seq"] = last_seq
        self.resume_from = last_seq
        ready = self._expect(rid, "ready")
        await self.send("init_session", data, rid)
        await self.wait(ready, "init_session")

    async def drop(self) -> None:
        """The network goes away: no close handshake."""
        self.closing = True
        self.ws.transport.abort()
        await self._reader_done()

    async def close(self, *, by_frame: bool = False) -> None:
        self.closing = True
        if by_frame:  # the server must close it with 1000
            with contextlib.suppress(ConnectionClosed):
                await self.send("close_session", {}, self.user.request_id("close"))
            await self._reader_done()
            if self.close_code != 1000:
                self.soak.fail(f"{self.name}: close_session answered with close code {self.close_code}")
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ws.close(), ACTION_TIMEOUT)
            await self._reader_done()

    async def _reader_done(self) -> None:
        assert self.reader is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.reader), ACTION_TIMEOUT)
        except TimeoutError:
            self.soak.fail(f"{self.name}: socket not closed within {ACTION_TIMEOUT}s")
            self.ws.transport.abort()
            await self.reader

    # --- frames in ----------------------------------------------------------------------

    async def _read(self) -> None:
        ws = self.ws
        try:
            async for raw in ws:
                self.soak.frames_in += 1
                self._handle(orjson.loads(raw))
        except ConnectionClosed:
            pass
        except Exception as exc:  # a bug in this client: report it rather than hang
            self.soak.fail(f"{self.name}: reader crashed: {exc!r}")
        finally:
            self.close_code = ws.close_code
            if not self.closing:
                self.soak.fail(f"{self.name}: the server closed the socket ({ws.close_code} {ws.close_reason!r})")
                self.soak.events["server closes"] += 1
            for fut in self.expect.values():
                if not fut.done():
                    fut.set_exception(TabClosedError(f"{self.name}: socket closed"))
            self.expect.clear()

    def _handle(self, frame: dict[str, Any]) -> None:
        kind, data, fid = frame["type"], frame.get("data") or {}, cast(str, frame.get("id"))
        self.arrivals += 1
        seq = frame.get("seq")
        if seq is not None:
            if frame.get("session_id") != self.session_id:
                self.soak.fail(f"{self.name}: seq frame of session {frame.get('session_id')} on {self.session_id}")
            elif seq != self.seq + 1:
                self.soak.fail(f"{self.name}: seq gap {self.seq} -> {seq} ({kind})")
                self.broken = True
            self.seq = seq
        if kind == "session_ready":
            self._ready(frame)
            self._resolve(fid, "ready", frame)
        elif kind == "tree_update":
            self._tree_update(data)
        elif kind == "tree_snapshot":
            self.snapshots[fid] = data
        elif kind == "pong":
            self._resolve(fid, "pong", frame)
        elif kind == "chat_message":
            self._resolve(fid, "echo", frame)
        elif kind == "assistant_response" and not data.get("chunk"):
            self.finished.add(fid)
            self.ended_at[fid] = self.arrivals
            self._resolve(fid, "turn", frame)
        elif kind == "error":
            self._error(frame)
            self._resolve(fid, "turn", frame)

    def _ready(self, frame: dict[str, Any]) -> None:
        data, last_seq = frame["data"], self.resume_from
        self.resume_from = None
        self.session_id = data["session_id"]
        self.replaying_to = None
        if data["replay"] and last_seq is not None:
            # Keep the view we had; the replayed frames must bring it to exactly the tree sent here.
            self.seq = last_seq
            self.replaying_to = (data["rev"], data["initial_tree"])
            self._check_replay()
            self.soak.reconnects["resumed by replay"] += 1
            return
        if last_seq is not None:  # the buffer holds 1000 frames and a resume misses a few dozen at most
            self.soak.fail(f"{self.name}: resume from seq {last_seq} got a snapshot (session seq {data['seq']})")
        self.tree = Tree.from_dict(data["initial_tree"], data["rev"])
        self.seq = data["seq"]
        self.broken = False

    def _tree_update(self, data: dict[str, Any]) -> None:
        if self.broken:
            return
        rev = data["rev"]
        if rev != self.tree.rev + 1:
            self.soak.fail(f"{self.name}: tree_update rev {rev} after rev {self.tree.rev}")
            self.broken = True
            return
        try:
            self.tree.apply(data["delta"])
        except DeltaError as exc:
            self.soak.fail(f"{self.name}: tree_update rev {rev} does not apply to the view: {exc.message}")
            self.broken = True
            return
        self._check_replay()

    def _check_replay(self) -> None:
        if self.replaying_to is not None and self.tree.rev >= self.replaying_to[0]:
            rev, tree = self.replaying_to
            self.replaying_to = None
            self.compare(rev, tree, "resume by replay")

    def _error(self, frame: dict[str, Any]) -> None:
        fid, err = frame.get("id"), frame["error"]
        kind = self.user.kinds.get(fid) if isinstance(fid, str) else None
        if kind is None:
            self.soak.fail(f"{self.name}: error frame for no request of this user: {frame}")
            return
        if fid not in self.sent:  # another tab's copy of a broadcast turn error: counted there
            return
        self.errors.setdefault(fid, []).append(err)
        self.error_at[fid] = self.arrivals
        self.soak.errors[f"{kind} {err['code']}"] += 1
        allowed = ALLOWED_ERRORS.get(kind, {})
        if err["code"] not in allowed or not err["message"].startswith(allowed[err["code"]]):
            self.soak.fail(f"{self.name}: {kind} got error {err['code']} {err['message']!r}")

    def compare(self, rev: int, tree: dict[str, Any], where: str) -> None:
        if self.broken:
            return
        if self.tree.rev != rev or self.tree.to_dict() != tree:
            self.soak.fail(
                f"{self.name}: the view (rev {self.tree.rev}, {len(self.tree)} nodes) differs from the "
                f"server's (rev {rev}) at {where}"
            )
            self.broken = True

    # --- frames out ---------------------------------------------------------------------

    def _expect(self, rid: str, kind: str) -> asyncio.Future[dict[str, Any]]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.expect[(rid, kind)] = fut
        return fut

    def _resolve(self, rid: str | None, kind: str, frame: dict[str, Any]) -> None:
        fut = self.expect.pop((rid, kind), None) if rid is not None else None
        if fut is not None and not fut.done():
            fut.set_result(frame)

    async def wait(self, fut: asyncio.Future[dict[str, Any]], what: str) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(fut, ACTION_TIMEOUT)
        except TimeoutError:
            raise ActionTimeoutError(f"{self.name}: no answer to {what} within {ACTION_TIMEOUT}s") from None

    async def send(self, kind: str, data: dict[str, Any], rid: str) -> None:
        self.last_sent = time.monotonic()
        self.soak.frames_out += 1
        if kind != "ping":
            self.soak.requests += 1
            self.sent.add(rid)
        await self.ws.send(orjson.dumps({"type": kind, "id": rid, "data": data}).decode())

    async def sync(self) -> None:
        """A ping; when its pong is back, every frame queued for this tab before it has been handled."""
        rid = self.user.request_id("ping")
        pong = self._expect(rid, "pong")
        await self.send("ping", {}, rid)
        await self.wait(pong, "ping")

    async def request(self, kind: str, data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        """Sends one frame then a ping: when the pong is back, every answer to the frame has been handled
        (the server handles a connection's frames in order). Returns the request id and its errors."""
        rid = self.user.request_id(kind)
        pong = self._expect(rid + "/b", "pong")
        await self.send(kind, data, rid)
        await self.send("ping", {}, rid + "/b")
        await self.wait(pong, kind)
        return rid, self.errors.pop(rid, [])

    async def prompt(self, text: str, *, cancel: bool = False) -> dict[str, Any]:
        """A turn: waits for its one end (the final assistant_response, or an error)."""
        rid = self.user.request_id("prompt")
        end = self._expect(rid, "turn")
        await self.send("user_prompt", {"prompt": text}, rid)
        if cancel:
            self.cancel_of[rid] = self.user.request_id("cancel")
            await self.send("cancel", {}, self.cancel_of[rid])
        frame = await self.wait(end, "user_prompt")
        self.soak.events["turns completed"] += 1
        if frame["type"] == "assistant_response" and frame["data"].get("cancelled"):
            self.soak.events["turns cancelled"] += 1
        return frame


def _quoted(tree: Tree, node_id: str) -> str:
    return "root" if node_id == ROOT_ID else f"'{tree.value(node_id)}'"


def _has_value(tree: Tree, value: str) -> bool:
    return any(tree.value(i) == value for i in tree.iter_ids())


class SimUser:
    def __init__(self, soak: Soak, index: int, token: str, seed: int) -> None:
        self.soak = soak
        self.index = index
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"}
        self.rng = random.Random(seed)
        self.counter = itertools.count(1)
        self.tabs: list[Tab] = []
        self.sessions: list[str] = []
        self.kinds: dict[str, str] = {}  # request id -> frame type, for classifying errors
        self.last_tab: Tab | None = None
        self.second_left = 0
        self.new_session_at = 0.0
        self.names = list(ACTION_WEIGHTS)
        self.weights = list(ACTION_WEIGHTS.values())

    def request_id(self, kind: str) -> str:
        rid = f"{kind[:4]}-{self.index}-{next(self.counter)}"
        if kind != "ping":
            self.kinds[rid] = kind
        return rid

    def value(self) -> str:
        return f"N{self.index}-{next(self.counter)}"

    @property
    def primary(self) -> Tab:
        return self.tabs[0]

    # --- the loop ----------------------------------------------------------------------

    async def start(self) -> None:
        tab = Tab(self, "tab 1")
        await tab.open_first()
        self.tabs = [tab]
        self.sessions = [tab.session_id]
        while len(self.sessions) < MAX_SESSIONS:  # all of them in memory from the start: a steady workload
            r = await self.soak.http.post(
                "/api/sessions", json={"title": f"Soak {self.index}-{next(self.counter)}"}, headers=self.headers
            )
            assert r.status_code == 201, r.text
            self.sessions.append(r.json()["session_id"])

    async def run(self, deadline: float) -> None:
        self.new_session_at = time.monotonic() + self.rng.uniform(*NEW_SESSION_SECONDS)
        while True:
            think = self.rng.uniform(*THINK_SECONDS)
            if time.monotonic() + think >= deadline:
                return
            await asyncio.sleep(think)  # the user reading and typing: workload, not synchronisation
            try:
                await self.step()
            except Exception as exc:
                self.soak.fail(f"user {self.index}: {exc!r}")
                if not await self.recover():
                    return

    async def step(self) -> None:
        for i, tab in enumerate(self.tabs):
            if tab.broken:  # already reported: start again from the server's state
                await self._replace(i, "reload")
                self.soak.reconnects["repair"] += 1
        now = time.monotonic()
        for tab in self.tabs:
            if now - tab.last_sent > KEEPALIVE_SECONDS:
                await tab.send("ping", {}, self.request_id("ping"))
        tab = self.tabs[1] if len(self.tabs) > 1 and self.rng.random() < 0.3 else self.primary
        if tab is not self.last_tab:  # bring this tab's view up to what the other tab did
            await tab.sync()
            self.last_tab = tab
        if now >= self.new_session_at:
            self.new_session_at = now + self.rng.uniform(*NEW_SESSION_SECONDS)
            self.soak.ops["new_session"] += 1
            await self.new_session()
        elif len(tab.tree) > TRIM_ABOVE:
            self.soak.ops["trim"] += 1
            await self.trim(tab)
        else:
            action = self.rng.choices(self.names, self.weights)[0]
            if action in NEEDS_NODES and len(tab.tree) == 1:
                action = "op_add"
            self.soak.ops[action] += 1
            await getattr(self, action)(tab)
        if len(self.tabs) > 1:
            self.second_left -= 1
            if self.second_left <= 0:
                await self.close_second()

    async def recover(self) -> bool:
        """After a failure: drop every socket and attach a fresh one to the current session."""
        try:
            session = self.primary.session_id
            for tab in self.tabs:
                if tab.reader is not None and not tab.reader.done():
                    await tab.drop()
            tab = Tab(self, "tab 1")
            await tab.open(session)
            self.tabs, self.last_tab = [tab], None
            self.soak.reconnects["recovery"] += 1
            return True
        except Exception as exc:
            self.soak.fail(f"user {self.index}: could not recover, stopping: {exc!r}")
            return False

    async def finish(self) -> None:
        """Every tab's view must equal the server's: by resync, by REST, and the REST node count."""
        try:
            for tab in self.tabs:
                await tab.sync()
                rid, _ = await tab.request("resync", {})
                snap = tab.snapshots.pop(rid)
                tab.compare(snap["rev"], snap["tree"], "the final resync")
            await self.rest_read(self.primary, full=True)
            for tab in reversed(self.tabs):
                await tab.close(by_frame=True)
        except Exception as exc:
            self.soak.fail(f"user {self.index}: final check: {exc!r}")

    # --- picking nodes ------------------------------------------------------------------

    def nodes(self, tab: Tab) -> list[str]:
        return [i for i in tab.tree.iter_ids() if i != ROOT_ID]

    def parents(self, tab: Tab) -> list[str]:
        return [i for i in tab.tree.iter_ids() if tab.tree.depth(i) <= MAX_PARENT_DEPTH]

    def leaf_and_parent(self, tab: Tab) -> tuple[str, str] | None:
        leaves = [i for i in self.nodes(tab) if not tab.tree.children(i)]
        if not leaves:
            return None
        leaf = self.rng.choice(leaves)
        parent = self.rng.choice([p for p in self.parents(tab) if p != leaf])
        return leaf, parent

    # --- prompts ------------------------------------------------------------------------

    async def turn(self, tab: Tab, text: str, check: Callable[[], bool] | None = None) -> None:
        end = await tab.prompt(text)
        if end["type"] == "assistant_response" and check is not None and not tab.broken and not check():
            self.soak.fail(f"{tab.name}: {text!r} answered {end['data']['text'][:200]!r}; the tree does not show it")

    async def prompt_add(self, tab: Tab) -> None:
        values = [self.value() for _ in range(self.rng.choice((1, 1, 2, 3)))]
        where = _quoted(tab.tree, self.rng.choice(self.parents(tab)))
        listed = ", ".join(f"'{v}'" for v in values[:-1]) + (" and " if len(values) > 1 else "") + f"'{values[-1]}'"
        text = self.rng.choice(
            (
                f"Add {listed} under {where}",
                f"add {listed} to the top of {where}",
                f"Add a new node with value {listed} under {where}"
                if len(values) == 1
                else f"please add {listed} to {where}",
            )
        )
        await self.turn(tab, text, lambda: all(_has_value(tab.tree, v) for v in values))

    async def prompt_rename(self, tab: Tab) -> None:
        node, new = self.rng.choice(self.nodes(tab)), self.value()
        await self.turn(
            tab,
            f"rename {_quoted(tab.tree, node)} to '{new}'",
            lambda: node in tab.tree and tab.tree.value(node) == new,
        )

    async def prompt_props(self, tab: Tab) -> None:
        node = self.rng.choice(self.nodes(tab))
        name = _quoted(tab.tree, node)
        key, value, text = self.rng.choice(
            (
                ("priority", "high", f"set priority of {name} to high"),
                ("priority", 3, f"set priority of {name} to 3"),
                ("status", "done", f"mark {name} as done"),
            )
        )
        await self.turn(tab, text, lambda: node in tab.tree and tab.tree.props(node).get(key) == value)

    async def prompt_delete(self, tab: Tab) -> None:
        node = self.rng.choice(self.nodes(tab))
        await self.turn(tab, f"delete {_quoted(tab.tree, node)}", lambda: node not in tab.tree)

    async def prompt_move(self, tab: Tab) -> None:
        pick = self.leaf_and_parent(tab)
        if pick is None:
            return await self.prompt_add(tab)
        leaf, parent = pick
        await self.turn(
            tab,
            f"move {_quoted(tab.tree, leaf)} under {_quoted(tab.tree, parent)}",
            lambda: leaf in tab.tree and tab.tree.parent(leaf) == parent,
        )

    async def prompt_other(self, tab: Tab) -> None:
        await self.turn(tab, self.rng.choice(("show the tree", "help", "undo", "what can you do?", "clear the tree")))

    async def cancel(self, tab: Tab) -> None:
        """A prompt and, right behind it, a cancel: the turn ends cancelled, or it had already ended when the
        cancel was handled (409 "No turn is running", which must then come after the turn's end)."""
        end = await tab.prompt(f"Add '{self.value()}' and '{self.value()}' under root", cancel=True)
        await tab.sync()  # the cancel's own answer is in
        rid = end["id"]
        cid = tab.cancel_of.pop(rid)
        if cid in tab.error_at and rid in tab.ended_at and tab.error_at[cid] < tab.ended_at[rid]:
            self.soak.events["cancels refused while the turn ran"] += 1
            self.soak.fail(
                f"{tab.name}: cancel {cid} answered 409 'No turn is running' while turn {rid} was "
                f"still running (its end came {tab.ended_at[rid] - tab.error_at[cid]} frame(s) later)"
            )

    # --- direct edits -------------------------------------------------------------------

    async def tree_op(self, tab: Tab, delta: dict[str, Any], check: Callable[[], bool]) -> None:
        base = max(0, tab.tree.rev - self.rng.choice((0, 0, 0, 1, 3)))  # sometimes stale: the server merges
        rid, errors = await tab.request("tree_op", {"delta": delta, "base_rev": base})
        if not errors and not tab.broken and not check():
            self.soak.fail(f"{tab.name}: tree_op {rid} {delta['action']} answered but the view does not show it")

    async def op_add(self, tab: Tab) -> None:
        parent = self.rng.choice(self.parents(tab))
        node: dict[str, Any] = {"id": f"n{self.index}x{next(self.counter)}", "value": self.value(), "children": []}
        if self.rng.random() < 0.3:
            node["props"] = {"priority": self.rng.choice(("low", "high")), "estimate": self.rng.randint(1, 8)}
        if self.rng.random() < 0.2:
            node["children"] = [
                {"id": f"n{self.index}x{next(self.counter)}", "value": self.value(), "children": []}
                for _ in range(self.rng.randint(1, 3))
            ]
        delta: dict[str, Any] = {"action": "add", "path": tab.tree.path(parent) + "/children", "node": node}
        if self.rng.random() < 0.3:
            delta["index"] = self.rng.randint(0, 5)
        await self.tree_op(tab, delta, lambda: node["id"] in tab.tree)

    async def op_update(self, tab: Tab) -> None:
        node = self.rng.choice(self.nodes(tab))
        fields: dict[str, Any] = self.rng.choice(
            (
                {"value": self.value()},
                {"props": {"done": self.rng.random() < 0.5, "note": f"note {next(self.counter)}"}},
                {"props": {"priority": None}},
                {"value": self.value(), "props": {"estimate": self.rng.randint(1, 13)}},
            )
        )
        delta = {"action": "update", "path": tab.tree.path(node), "fields": fields}
        await self.tree_op(
            tab, delta, lambda: node in tab.tree and tab.tree.value(node) == fields.get("value", tab.tree.value(node))
        )

    async def op_remove(self, tab: Tab) -> None:
        node = self.rng.choice(self.nodes(tab))
        await self.tree_op(tab, {"action": "remove", "path": tab.tree.path(node)}, lambda: node not in tab.tree)

    async def op_move(self, tab: Tab) -> None:
        pick = self.leaf_and_parent(tab)
        if pick is None:
            return await self.op_add(tab)
        leaf, parent = pick
        delta: dict[str, Any] = {
            "action": "move",
            "path": tab.tree.path(leaf),
            "to": tab.tree.path(parent) + "/children",
        }
        if self.rng.random() < 0.5:
            delta["index"] = 0
        await self.tree_op(tab, delta, lambda: leaf in tab.tree and tab.tree.parent(leaf) == parent)

    async def trim(self, tab: Tab) -> None:
        """Keeps the tree bounded: "clear the tree", or removing top-level nodes one by one."""
        if self.rng.random() < 0.4:
            await self.turn(tab, "clear the tree", lambda: len(tab.tree) == 1)
            return
        while len(tab.tree) > TRIM_TO and not tab.broken:
            top = tab.tree.children(ROOT_ID)[0]

            def gone(t: str = top) -> bool:
                return t not in tab.tree

            await self.tree_op(tab, {"action": "remove", "path": tab.tree.path(top)}, gone)

    async def undo(self, tab: Tab) -> None:
        await tab.request("undo", {})

    async def redo(self, tab: Tab) -> None:
        await tab.request("redo", {})

    async def resync(self, tab: Tab) -> None:
        rid, errors = await tab.request("resync", {})
        if not errors:
            snap = tab.snapshots.pop(rid)
            tab.compare(snap["rev"], snap["tree"], "resync")

    # --- connections and sessions ---------------------------------------------------------

    async def _replace(self, i: int, mode: str) -> None:
        """Closes (or drops) tab i and opens its successor on the same session."""
        old = self.tabs[i]
        awaiting: tuple[str, ...] = ()
        if mode == "drop mid-turn":  # the connection dies while the assistant is answering
            rid = self.request_id("prompt")
            echo = old._expect(rid, "echo")
            await old.send("user_prompt", {"prompt": f"Add '{self.value()}' and '{self.value()}' under root"}, rid)
            await old.wait(echo, "user_prompt")
            await old.drop()
            awaiting = () if rid in old.finished else (rid,)
            if not awaiting:
                self.soak.events["turns completed"] += 1
        elif mode == "drop":
            await old.drop()
        else:
            await old.close()
        new = Tab(self, old.label)
        if mode == "reload" or old.broken:
            await new.open(old.session_id)
        else:
            for end in await new.open(old.session_id, last_seq=old.seq, view=old, awaiting=awaiting):
                await new.wait(end, "the resumed turn")
                self.soak.events["turns completed"] += 1
        self.tabs[i] = new
        if self.last_tab is old:
            self.last_tab = new

    async def reconnect(self, tab: Tab) -> None:
        mode = self.rng.choice(("resume", "resume", "drop", "drop mid-turn", "reload"))
        await self._replace(self.tabs.index(tab), mode)
        self.soak.reconnects[mode] += 1

    async def second_tab(self, tab: Tab) -> None:
        if len(self.tabs) > 1:
            return await self.close_second()
        second = Tab(self, "tab 2")
        await second.open(self.primary.session_id)
        self.tabs.append(second)
        self.second_left = self.rng.randint(3, 12)
        self.soak.events["second tabs opened"] += 1

    async def close_second(self) -> None:
        if len(self.tabs) > 1:
            second = self.tabs.pop()
            await second.close(by_frame=True)
            if self.last_tab is second:
                self.last_tab = None

    async def switch_session(self, tab: Tab) -> None:
        """Back to the user's other session."""
        others = [s for s in self.sessions if s != self.primary.session_id]
        if others:
            await self._switch(self.rng.choice(others))

    async def new_session(self) -> None:
        """A new session via REST, the tab moved to it, and the oldest session deleted."""
        r = await self.soak.http.post(
            "/api/sessions", json={"title": f"Soak {self.index}-{next(self.counter)}"}, headers=self.headers
        )
        if r.status_code != 201:
            self.soak.fail(f"user {self.index}: POST /api/sessions answered {r.status_code} {r.text[:200]}")
            return
        target = r.json()["session_id"]
        self.sessions.append(target)
        self.soak.events["sessions created"] += 1
        await self._switch(target)
        while len(self.sessions) > MAX_SESSIONS:
            victim = next(s for s in self.sessions if s != target)
            r = await self.soak.http.delete(f"/api/sessions/{victim}", headers=self.headers)
            if r.status_code != 204:
                self.soak.fail(f"user {self.index}: DELETE /api/sessions/{victim} answered {r.status_code}")
            self.sessions.remove(victim)
            self.soak.events["sessions deleted"] += 1

    async def _switch(self, target: str) -> None:
        await self.close_second()
        if self.rng.random() < 0.5:  # the same socket, a new init_session
            await self.primary.attach(target)
        else:
            await self.primary.close()
            new = Tab(self, "tab 1")
            await new.open(target)
            self.tabs[0] = new
        self.last_tab = self.primary
        self.soak.events["session switches"] += 1

    async def rest_read(self, tab: Tab, full: bool = False) -> None:
        """The session list's node count and (sometimes) the full state must match the view."""
        r = await self.soak.http.get("/api/sessions", headers=self.headers)
        if r.status_code != 200:
            self.soak.fail(f"user {self.index}: GET /api/sessions answered {r.status_code}")
            return
        items = {item["session_id"]: item for item in r.json()}
        if set(items) != set(self.sessions):
            self.soak.fail(
                f"user {self.index}: GET /api/sessions lists {sorted(items)}, expected {sorted(self.sessions)}"
            )
        item = items.get(tab.session_id)
        if item is not None and not tab.broken and item["node_count"] != len(tab.tree):
            self.soak.fail(f"{tab.name}: REST node_count {item['node_count']}, the view has {len(tab.tree)}")
        if full or self.rng.random() < 0.5:
            r = await self.soak.http.get(f"/api/sessions/{tab.session_id}", headers=self.headers)
            if r.status_code != 200:
                self.soak.fail(f"user {self.index}: GET /api/sessions/{{id}} answered {r.status_code}")
                return
            state = r.json()
            tab.compare(state["rev"], state["tree"], "GET /api/sessions/{id}")


# ---- measuring ----------------------------------------------------------------------------------


async def _gauges(http: httpx.AsyncClient, api_url: str) -> tuple[int, int]:
    """Open sockets and sessions in memory, from the API's /metrics."""
    found = {"canopy_ws_connections": -1, "canopy_sessions_in_memory": -1}
    with contextlib.suppress(httpx.HTTPError):
        for line in (await http.get(api_url + "/metrics", timeout=10)).text.splitlines():
            name, _, value = line.partition(" ")
            if name in found:
                found[name] = int(float(value))
    return found["canopy_ws_connections"], found["canopy_sessions_in_memory"]


async def _sample(soak: Soak, master: int, worker: int, t0: float, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        while True:
            sockets, sessions = await _gauges(http, soak.stack.api_url)
            try:
                soak.samples.append(Sample(time.monotonic() - t0, rss_kb(worker), soak.requests, sockets, sessions))
                current = worker_pid(master)
            except (OSError, IndexError, ValueError) as exc:
                soak.fail(f"the API worker or master is gone: {exc!r}")
                return
            if current != worker:
                soak.fail(f"the API worker changed: pid {worker} -> {current}")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)  # the sampling period
            if stop.is_set():
                return


def _slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0


@dataclass
class Plateau:
    judged: bool
    ok: bool
    slope_kb_s: float
    growth_kb: float
    allowance_kb: float
    window_requests: int
    window: tuple[float, float]
    thirds_kb: tuple[float, float]

    def verdict(self) -> str:
        if not self.judged:
            return f"not judged (runs under {JUDGE_MIN_SECONDS:.0f} s are all warm-up)"
        return "plateau" if self.ok else "GROWING (possible leak)"


def plateau(samples: list[Sample], seconds: float) -> Plateau:
    window = [s for s in samples if s.t >= WARMUP * seconds] or samples[-2:]
    if len(window) < 2:
        window = samples
    slope = _slope([(s.t, float(s.rss_kb)) for s in window])
    span = window[-1].t - window[0].t
    growth = slope * span
    requests = window[-1].requests - window[0].requests
    allowance = max(FLOOR_KB, PER_REQUEST_KB * requests)
    n = len(samples)
    middle = statistics.median(s.rss_kb for s in samples[n // 3 : max(n // 3 + 1, 2 * n // 3)])
    last = statistics.median(s.rss_kb for s in samples[2 * n // 3 :])
    judged = seconds >= JUDGE_MIN_SECONDS
    return Plateau(
        judged, growth <= allowance, slope, growth, allowance, requests, (window[0].t, window[-1].t), (middle, last)
    )


# ---- the report ---------------------------------------------------------------------------------


def _mib(kb: float) -> str:
    return f"{kb / 1024:.1f} MiB"


def _commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
        return out.stdout.strip() or "unknown"
    return "unknown"


def report(soak: Soak, info: dict[str, Any], verdict: Plateau, log_problems: list[str]) -> str:
    s = soak.samples
    rss = [x.rss_kb for x in s]
    elapsed = info["elapsed"]
    total_ops = sum(soak.ops.values())
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(soak.errors.items())) or "none"
    if soak.errors and soak.failure_count == 0:
        errors += " (all expected: nothing to undo/redo, cancel after the turn had ended)"
    slope_mib_min = verdict.slope_kb_s * 60 / 1024
    per_request_b = verdict.growth_kb * 1024 / max(1, verdict.window_requests)
    per_session_kb = (verdict.thirds_kb[1] - info["rss_idle"]) / max(1, s[-1].sessions)
    lines = [
        f"### Soak: {info['users']} users × {SECONDS:.0f} s (through nginx, wss on 127.0.0.1)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit `{_commit()}`, {os.cpu_count()} CPU cores "
        f"({platform.machine()}, shared with the client), Python {platform.python_version()}, seed {SEED}. "
        "The real stack: scripts/api.sh (gunicorn, one uvicorn worker), SQLite, offline assistant with its "
        "default 15 ms between reply chunks, nginx with TLS; rate limits raised out of the way. "
        f"Think time {THINK_SECONDS[0]}–{THINK_SECONDS[1]} s between actions; each session's tree kept at "
        f"≤ {TRIM_ABOVE} nodes; {MAX_SESSIONS} sessions per user, and every {NEW_SESSION_SECONDS[0]:.0f}–"
        f"{NEW_SESSION_SECONDS[1]:.0f} s a new one (REST), the oldest deleted.",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| users · duration | {info['users']} · {elapsed:.0f} s of load (+ {info['setup']:.0f} s registering and "
        f"connecting, {info['final']:.0f} s final checks) |",
        f"| user actions | {total_ops} ({total_ops / elapsed:.1f}/s) |",
        f"| client requests (frames other than ping) | {soak.requests} ({soak.requests / elapsed:.1f}/s) |",
        f"| frames sent · received by the clients | {soak.frames_out} · {soak.frames_in} "
        f"({soak.frames_in / elapsed:.0f}/s received) |",
        f"| turns completed (of which cancelled) | {soak.events['turns completed']} "
        f"({soak.events['turns cancelled']}) |",
        f"| reconnects | {sum(v for k, v in soak.reconnects.items() if k != 'resumed by replay')} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(soak.reconnects.items()))}) |",
        f"| second tabs · session switches · created · deleted | {soak.events['second tabs opened']} · "
        f"{soak.events['session switches']} · {soak.events['sessions created']} · {soak.events['sessions deleted']} |",
        f"| error frames by action and code | {errors} |",
        f"| failures | {soak.failure_count} |",
        f"| server-closed sockets · worker restarts | {soak.events['server closes']} · {info['restarts']} |",
        f"| ERROR lines in the API log | {len(log_problems)} |",
        f"| API worker CPU | {info['cpu']:.0f} % of one core over the load |",
        f"| worker RSS start · peak · end | {_mib(rss[0])} · {_mib(max(rss))} · {_mib(rss[-1])} "
        f"(before the users connected: {_mib(info['rss_idle'])}) |",
        f"| worker RSS above that, per session in memory | {per_session_kb:.0f} KiB (median of the last third, "
        f"{s[-1].sessions} sessions, {s[-1].sockets} sockets) |",
        f"| RSS slope over {verdict.window[0]:.0f}–{verdict.window[1]:.0f} s | {slope_mib_min:+.2f} MiB/min → "
        f"{verdict.growth_kb / 1024:+.1f} MiB over the window ({per_request_b:+.0f} B per client request; "
        f"allowed {verdict.allowance_kb / 1024:.1f} MiB) |",
        f"| median RSS middle third → last third | {_mib(verdict.thirds_kb[0])} → {_mib(verdict.thirds_kb[1])} "
        f"({(verdict.thirds_kb[1] - verdict.thirds_kb[0]) / 1024:+.1f} MiB) |",
        f"| verdict | **{verdict.verdict()}** |",
        "",
        "User actions by type: " + ", ".join(f"{k} {v}" for k, v in soak.ops.most_common()) + ".",
        "",
        f"Plateau criterion: least-squares slope of the worker's VmRSS over the last {100 - WARMUP * 100:.0f} % of "
        f"the run, times the window's length, ≤ max({FLOOR_KB // 1024} MiB, {PER_REQUEST_KB} KiB × client requests "
        f"in the window); runs under {JUDGE_MIN_SECONDS:.0f} s are not judged.",
        "",
        "| t (s) | worker RSS (MiB) | client requests | open sockets | sessions in memory |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    step = max(1, len(s) // 30)
    shown = s[::step] if s[-1] in s[::step] else [*s[::step], s[-1]]
    lines += [f"| {x.t:.0f} | {x.rss_kb / 1024:.1f} | {x.requests} | {x.sockets} | {x.sessions} |" for x in shown]
    if soak.failures:
        lines += ["", "First failures:", "", *(f"- {f}" for f in soak.failures[:20])]
    if log_problems:
        lines += ["", "API log problems:", "", "```", *log_problems[:20], "```"]
    return "\n".join(lines) + "\n"


def _log_problems(stack: Stack) -> list[str]:
    text = stack.api.logs()
    return [
        line[:400]
        for line in text.splitlines()
        if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
    ]


# ---- the run ------------------------------------------------------------------------------------


async def _run(stack: Stack) -> tuple[Soak, dict[str, Any]]:
    t_setup = time.monotonic()
    master = stack.api.proc.pid  # type: ignore[union-attr]
    worker = worker_pid(master)
    prefix = f"soak{random.Random(SEED).randrange(10**6)}u"
    tokens = await make_users(stack.api_url, USERS, prefix)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=stack.base_url, verify=False, trust_env=False, timeout=ACTION_TIMEOUT, limits=limits
    ) as http:
        soak = Soak(stack, http)
        master_rng = random.Random(SEED)
        users = [SimUser(soak, i, token, master_rng.randrange(1 << 32)) for i, token in enumerate(tokens)]
        rss_idle = rss_kb(worker)
        gate = asyncio.Semaphore(16)

        async def start(user: SimUser) -> None:
            async with gate:
                await user.start()

        await asyncio.gather(*(start(u) for u in users))
        setup = time.monotonic() - t_setup
        t0 = time.monotonic()
        cpu0 = cpu_seconds(worker)
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample(soak, master, worker, t0, stop))
        await asyncio.gather(*(u.run(t0 + SECONDS) for u in users))
        elapsed = time.monotonic() - t0
        cpu = 100 * (cpu_seconds(worker) - cpu0) / elapsed if stack.api.running else float("nan")
        stop.set()
        await sampler
        t_final = time.monotonic()
        await asyncio.gather(*(u.finish() for u in users))
        restarts = 0 if stack.api.running and worker_pid(master) == worker else 1
        info = {
            "users": USERS,
            "elapsed": elapsed,
            "setup": setup,
            "final": time.monotonic() - t_final,
            "rss_idle": rss_idle,
            "cpu": cpu,
            "restarts": restarts,
        }
    return soak, info


def run_soak(workdir: Path) -> list[str]:
    """Runs the soak against a stack in `workdir`, writes the report to REPORT; returns what failed."""
    raise_nofile()
    stack = Stack(workdir, env_overrides=STACK_ENV)
    try:
        stack.start()
        soak, info = asyncio.run(asyncio.wait_for(_run(stack), HARD_TIMEOUT))
        alive = stack.api.running
        problems = _log_problems(stack)
    finally:
        stack.stop()
    verdict = plateau(soak.samples, SECONDS)
    text = report(soak, info, verdict, problems)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
    print(f"\n{text}\n(report written to {REPORT})")
    return verdict_failures(soak, info, verdict, problems, alive)


def verdict_failures(soak: Soak, info: dict[str, Any], verdict: Plateau, problems: list[str], alive: bool) -> list[str]:
    """The soak's pass criteria, in order; each failed one as its message."""
    checks = [
        (alive, "the API (gunicorn) died during the soak"),
        (info["restarts"] == 0, "the API worker restarted during the soak"),
        (not soak.failures, f"{soak.failure_count} failure(s), first ones:\n" + "\n".join(soak.failures[:20])),
        (not problems, "ERROR lines in the API log:\n" + "\n".join(problems[:20])),
        (sum(soak.ops.values()) >= USERS * SECONDS / 10, f"too little load to mean anything: {soak.ops}"),
        (
            soak.events["turns completed"] > 0 and sum(soak.reconnects.values()) > 0,
            f"no completed turn or no reconnect: {soak.events}, {soak.reconnects}",
        ),
        (
            not verdict.judged or verdict.ok,
            (
                f"worker RSS still growing: {verdict.growth_kb / 1024:+.1f} MiB over {verdict.window[0]:.0f}–"
                f"{verdict.window[1]:.0f} s (allowed {verdict.allowance_kb / 1024:.1f} MiB); see {REPORT}"
            ),
        ),
    ]
    return [message for ok, message in checks if not ok]


def main() -> int:
    parser = argparse.ArgumentParser(description="Soak the real stack with simulated users (see the module doc).")
    parser.add_argument("workdir", type=Path, help="where the stack keeps its data and logs")
    parser.add_argument("--result", type=Path, help="also write the failures here, as JSON")
    args = parser.parse_args()
    failures = run_soak(args.workdir)
    if args.result:
        args.result.write_text(json.dumps({"failures": failures}))
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
