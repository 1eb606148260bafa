"""Cross-replica events over PostgreSQL LISTEN/NOTIFY.

One channel, `canopy_cluster`; a payload is a small JSON object `{"type", "from", ...fields}`
(NOTIFY caps payloads at 8000 bytes; ours stay far below). The fields say what the event is
about: `session` for a session's events (a REST delete, rename or membership change handled by
one replica reaches the replica that serves the session; a request to hand a session over),
`user` or `token_id` for an account's (logging out everywhere, deleting the account, revoking a
personal access token reach every replica's sockets and agent streams). Fields are ids and small
values only, never a token or any other secret: NOTIFY payloads can be read by any session of the
database role and may end up in PostgreSQL's logs.

Delivery is at most once and only to replicas listening at the time: every event is also a
database change, so a replica that missed one (reconnecting) reads the truth from the database
on its next load or authentication, and leases fence everything else. `on_resumed` runs when the
listener is back after a loss, for what a missed event would have ended at once.

The listener is a dedicated asyncpg connection (outside SQLAlchemy's pool), kept by a
referenced task that reconnects with backoff and is cancelled and awaited on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("canopy.cluster")

CHANNEL = "canopy_cluster"
MAX_PAYLOAD = 7900
RESERVED = frozenset({"type", "from"})

Handler = Callable[[dict[str, Any]], Awaitable[None]]
Resumed = Callable[[], Awaitable[None]]


class ClusterBus:
    def __init__(self, engine: AsyncEngine, owner: str) -> None:
        self.engine = engine
        self.owner = owner  # events this replica sent come back to it: `from` tells them apart
        self.handlers: dict[str, Handler] = {}
        # Run each time the listener is back after losing its connection: events sent meanwhile are lost,
        # so whoever acts on them re-reads the database here (it runs once LISTEN is in place again).
        self.on_resumed: Resumed | None = None
        self._listened_before = False
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()

    def on(self, event_type: str, handler: Handler) -> None:
        self.handlers[event_type] = handler

    async def publish(self, event_type: str, **fields: str | int) -> None:
        """Sends an event to every other replica listening now (at most once). `fields` name what it is
        about (`session=`, `user=`, `token_id=`); `type` and `from` are the bus's own."""
        if RESERVED & fields.keys():
            raise ValueError(f"cluster event fields may not be named {sorted(RESERVED & fields.keys())}")
        payload = orjson.dumps({"type": event_type, "from": self.owner, **fields}).decode()
        if len(payload.encode()) > MAX_PAYLOAD:
            raise ValueError(f"cluster event too large ({len(payload)} bytes)")
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload})

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="cluster-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), 10.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._handling):
            task.cancel()
        await asyncio.gather(*self._handling, return_exceptions=True)

    async def _listen_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._listen_once()
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cluster listener lost its connection (%r); reconnecting in %.1f s", exc, delay)
            self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen_once(self) -> None:
        import asyncpg  # the postgres extra; only replicas on PostgreSQL get here

        args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
        conn = await asyncpg.connect(*args, **kwargs)
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def terminated(_conn: Any) -> None:
            if not lost.done():
                lost.set_result(None)

        conn.add_termination_listener(terminated)
        try:
            await conn.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: self._dispatch(payload))
            self.listening.set()
            if self._listened_before and self.on_resumed is not None:
                self._spawn(self._resume(self.on_resumed))
            self._listened_before = True
            await lost
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    def _dispatch(self, payload: str) -> None:
        try:
            event = orjson.loads(payload)
            handler = self.handlers.get(event.get("type", ""))
        except (orjson.JSONDecodeError, AttributeError):
            log.warning("ignored a malformed cluster event")
            return
        if handler is None or event.get("from") == self.owner:
            return
        self._spawn(self._run(handler, event))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="cluster-event")
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    @staticmethod
    async def _resume(resumed: Resumed) -> None:
        try:
            await resumed()
        except Exception:
            log.exception("re-checking after the cluster listener reconnected failed")

    @staticmethod
    async def _run(handler: Handler, event: dict[str, Any]) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("cluster event %s failed", event.get("type"))
