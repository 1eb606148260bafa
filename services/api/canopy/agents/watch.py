"""Tree watches: tell MCP subscribers when a session's tree changes, whatever changed it.

A watched session has one `WatchPeer` attached, like a tab: it sees every frame the session
broadcasts and turns each `tree_update` into one notification call (coalesced: while one is being
sent, further changes make one more, not one each). Watches are counted: the peer detaches when the
last subscriber goes, so an unwatched session can leave memory again.

With replicas (PostgreSQL), a watch must not move the session: loading it on a replica other than
its holder would claim it and close every tab with 1012. So a session another live replica holds
is watched through the database instead: its stored `rev` is read every `POLL_SECONDS`, and a
change is one notification (coalesced the same way; a change reaches subscribers within about that
delay, once committed). A watch whose peer is closed because the session moved away (1012) goes on
the same way. Single process (SQLite): always the peer, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

from canopy.cluster.ownership import CLOSE_MOVED
from canopy.realtime.manager import SessionManager
from canopy.realtime.session import LiveSession

log = logging.getLogger("canopy.agents")
Notify = Callable[[str], Awaitable[None]]  # called with the session id whose tree changed
POLL_SECONDS = 1.0  # a session watched through the database: how often its stored rev is read


class WatchPeer:
    """A Peer (see `canopy.realtime.session.Peer`) that reads only whether the tree changed."""

    def __init__(
        self, session_id: str, on_change: Callable[[str], None], on_close: Callable[[str, int], None] | None = None
    ) -> None:
        self.session_id = session_id
        self._on_change = on_change
        self._on_close = on_close
        self.closed = asyncio.Event()

    def enqueue(self, data: bytes) -> None:
        # Frames are encoded with "type" first; no need to parse the whole frame.
        if data.startswith(b'{"type":"tree_update"'):
            self._on_change(self.session_id)

    def close(self, code: int, reason: str = "") -> None:
        self.closed.set()
        if self._on_close is not None:
            self._on_close(self.session_id, code)

    async def wait_closed(self) -> None:
        await self.closed.wait()


class TreeWatches:
    def __init__(self, sessions: SessionManager, notify: Notify, gauge: Gauge) -> None:
        self.sessions = sessions
        self.notify = notify
        self._gauge = gauge  # the subscriptions held: watches counted, all sessions together
        self._gauge.set(0)
        self._peers: dict[str, tuple[LiveSession, WatchPeer, int]] = {}
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        # Watched through the database (replicas: the session is held elsewhere): the poll and the count.
        self._polls: dict[str, tuple[asyncio.Task[None], int]] = {}

    async def watch(self, session_id: str, user_id: str) -> None:
        """One more subscriber of this (already authorised) session."""
        held = self._peers.get(session_id)
        if held is not None and not held[1].closed.is_set():
            self._peers[session_id] = (held[0], held[1], held[2] + 1)
            self._gauge.inc()
            return
        polled = self._polls.get(session_id)
        if polled is not None:
            self._polls[session_id] = (polled[0], polled[1] + 1)
            self._gauge.inc()
            return
        cluster = self.sessions.cluster
        if cluster is not None and await cluster.held_elsewhere(session_id) is not None:
            self._poll(session_id, 1)
            self._gauge.inc()
            return
        live = await self.sessions.get(session_id, user_id)
        peer = WatchPeer(session_id, self._changed, self._peer_closed if cluster is not None else None)
        await live.attach(peer, None, None)
        if held is not None:  # its peer was closed (the session went away): that one's count is void
            self._gauge.dec(held[2])
        self._peers[session_id] = (live, peer, 1)
        self._gauge.inc()

    def _poll(self, session_id: str, count: int) -> None:
        task = asyncio.get_running_loop().create_task(self._poll_forever(session_id), name="tree-watch-poll")
        self._polls[session_id] = (task, count)

    async def _poll_forever(self, session_id: str) -> None:
        seen = await self._stored_rev(session_id)
        while True:
            await asyncio.sleep(POLL_SECONDS)
            rev = await self._stored_rev(session_id)
            if rev is not None and rev != seen:
                seen = rev
                self._changed(session_id)

    async def _stored_rev(self, session_id: str) -> int | None:
        try:
            return await self.sessions.store.stored_rev(session_id)
        except Exception as exc:  # the database is away: try again at the next poll
            log.warning("could not read the rev of watched session %s: %r", session_id, exc)
            return None

    def _peer_closed(self, session_id: str, code: int) -> None:
        """The session moved to another replica (1012): its subscribers go on through the database."""
        held = self._peers.get(session_id)
        if code != CLOSE_MOVED or held is None or not held[1].closed.is_set():
            return
        del self._peers[session_id]
        self._poll(session_id, held[2])
        self._changed(session_id)  # what changed before the hand-over may not have been sent

    def unwatch(self, session_id: str) -> None:
        polled = self._polls.get(session_id)
        if polled is not None:
            self._gauge.dec()
            if polled[1] > 1:
                self._polls[session_id] = (polled[0], polled[1] - 1)
            else:
                del self._polls[session_id]
                polled[0].cancel()
            return
        held = self._peers.get(session_id)
        if held is None:
            return
        live, peer, count = held
        self._gauge.dec()
        if count > 1:
            self._peers[session_id] = (live, peer, count - 1)
            return
        del self._peers[session_id]
        live.detach(peer)

    def _changed(self, session_id: str) -> None:
        if session_id in self._sending:
            self._again.add(session_id)
            return
        self._sending[session_id] = asyncio.get_running_loop().create_task(self._send(session_id))

    async def _send(self, session_id: str) -> None:
        try:
            while True:
                self._again.discard(session_id)
                try:
                    await self.notify(session_id)
                except Exception:
                    log.exception("could not notify the subscribers of session %s", session_id)
                if session_id not in self._again:
                    return
        finally:
            self._sending.pop(session_id, None)

    async def close(self) -> None:
        for live, peer, _count in list(self._peers.values()):
            live.detach(peer)
        self._peers.clear()
        self._gauge.set(0)
        tasks = [*self._sending.values(), *(task for task, _count in self._polls.values())]
        self._polls.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
