"""One replica's side of the cluster: claim a session before serving it, keep the claims
alive, let go when told to, and pass REST changes to whichever replica serves a session.

The session manager calls `claim` before it loads a session and `let_go` when it evicts
one; it gets `Host` callbacks back: drop a session (lease lost, handed over, deleted),
retitle one, and re-read a member's role. Claiming a session another replica holds asks that
replica to hand it over (it finishes the running turn, stores everything and closes its tabs
with 1012) and waits for the release; a replica that died cannot answer, and its lease runs
out instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from canopy.cluster.lease import Lease, Leases
from canopy.cluster.notify import ClusterBus
from canopy.errors import CanopyError

log = logging.getLogger("canopy.cluster")

CLOSE_MOVED = 1012  # "service restart": tabs reconnect and resume on the session's new replica
CLAIM_POLL_SECONDS = 0.1
MAX_CLAIM_WAIT = 1.0  # between looks at a lease whose holder neither renews nor releases it


@dataclass(frozen=True, slots=True)
class Host:
    """What the cluster needs from the session manager."""

    drop: Callable[[str, int, str], Awaitable[None]]  # session id, close code, reason
    retitle: Callable[[str, str], None]  # session id, new title
    hand_over: Callable[[str], Awaitable[None]]  # finish the turn, store, close tabs with 1012
    # session id, user id: that user's membership changed in the database (read it there; a removal closes their tabs)
    membership: Callable[[str, str], Awaitable[None]]


def replica_name() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Ownership:
    def __init__(
        self,
        engine: AsyncEngine,
        lease_seconds: float,
        host: Host,
        name: str | None = None,
        address: str | None = None,
    ) -> None:
        self.name = name or replica_name()
        self.lease_seconds = lease_seconds
        self.host = host
        self.address = address  # recorded with every lease taken: where the others forward calls to us
        self.leases = Leases(engine, self.name, lease_seconds, address)
        self.leases.on_lost = self._lost
        self.bus = ClusterBus(engine, self.name)
        self.bus.on("release", self._on_release)
        self.bus.on("deleted", self._on_deleted)
        self.bus.on("renamed", self._on_renamed)
        self.bus.on("released", self._on_released)
        self.bus.on("membership", self._on_membership)
        self._renewal: asyncio.Task[None] | None = None
        self._drops: set[asyncio.Task[None]] = set()
        self._released: dict[str, asyncio.Event] = {}  # claims waiting for a hand-over

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start()
        self._renewal = asyncio.create_task(self._renew_forever(), name="lease-renewal")

    async def close(self) -> None:
        """Shutdown, after the manager stored and closed everything: free every lease at once."""
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        for session_id in list(self.leases.held):
            with contextlib.suppress(Exception):
                await self.leases.release(session_id)
        await asyncio.gather(*self._drops, return_exceptions=True)
        await self.bus.close()

    # --- claims -------------------------------------------------------------------------

    async def claim(self, session_id: str) -> Lease:
        """This replica's lease on the session, asking its holder to hand it over if needed.
        Waits at most the lease TTL plus a little (a dead holder's lease runs out meanwhile):
        woken by the holder's `released` event, else polling no faster than the lease can end."""
        lease = await self.leases.acquire(session_id)
        if lease is not None:
            return lease
        released = self._released.setdefault(session_id, asyncio.Event())
        try:
            await self.bus.publish("release", session=session_id)
            deadline = time.monotonic() + self.lease_seconds + 2.0
            wait = CLAIM_POLL_SECONDS
            while time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(released.wait(), wait)
                released.clear()
                lease = await self.leases.acquire(session_id)
                if lease is not None:
                    return lease
                holder = await self.leases.holder(session_id)
                left = holder.seconds_left if holder is not None else 0.0
                wait = min(max(CLAIM_POLL_SECONDS, left), MAX_CLAIM_WAIT)
        finally:
            self._released.pop(session_id, None)
        raise CanopyError(503, "The session is busy on another server; try again in a few seconds")

    async def let_go(self, session_id: str) -> None:
        await self.leases.release(session_id)

    def holds(self, session_id: str) -> bool:
        return session_id in self.leases.held

    async def held_elsewhere(self, session_id: str) -> str | None:
        """The address of another live replica holding the session's lease (forward to it); None when
        this replica holds it, or no live replica does (then this one may claim it)."""
        if self.holds(session_id):
            return None
        holder = await self.leases.holder(session_id)
        if holder is None or holder.seconds_left <= 0 or holder.owner == self.name or not holder.address:
            return None
        if holder.address == self.address:  # a restarted process of ours at the same address: its lease is stale
            return None
        return holder.address

    async def deleted(self, session_id: str) -> None:
        await self.bus.publish("deleted", session=session_id)

    async def renamed(self, session_id: str, title: str) -> None:
        await self.bus.publish("renamed", session=session_id, title=title)

    async def membership_changed(self, session_id: str, user_id: str) -> None:
        """Ids only: the holder reads the member's new role (or their removal) from the database."""
        await self.bus.publish("membership", session=session_id, user=user_id)

    # --- events -------------------------------------------------------------------------

    async def _renew_forever(self) -> None:
        interval = self.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.leases.renew()
            except Exception as exc:
                # The database is unreachable: leases run out and commits are refused anyway.
                log.warning("lease renewal failed: %r", exc)

    def _lost(self, session_ids: list[str]) -> None:
        for session_id in session_ids:
            self._spawn(self.host.drop(session_id, CLOSE_MOVED, "session moved to another server"))

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("cluster task failed")

        task = asyncio.create_task(run())
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def _on_release(self, event: dict[str, Any]) -> None:
        session_id = str(event["session"])
        if not self.holds(session_id):
            return
        log.info("handing session %s over to %s", session_id, event.get("from"))
        await self.host.hand_over(session_id)
        await self.leases.release(session_id)
        await self.bus.publish("released", session=session_id)

    async def _on_released(self, event: dict[str, Any]) -> None:
        waiting = self._released.get(str(event["session"]))
        if waiting is not None:
            waiting.set()

    async def _on_deleted(self, event: dict[str, Any]) -> None:
        session_id = str(event["session"])
        if self.holds(session_id):
            await self.host.drop(session_id, 1000, "session deleted")
            self.leases.forget(session_id)

    async def _on_membership(self, event: dict[str, Any]) -> None:
        session_id = str(event["session"])
        if self.holds(session_id) and isinstance(event.get("user"), str):
            await self.host.membership(session_id, event["user"])

    async def _on_renamed(self, event: dict[str, Any]) -> None:
        if isinstance(event.get("title"), str):
            self.host.retitle(str(event["session"]), event["title"])
