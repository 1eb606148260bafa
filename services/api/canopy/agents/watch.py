"""Tree watches: tell MCP subscribers when a session's tree changes, whatever changed it.

A watched session has one `WatchPeer` attached, like a tab: it sees every frame the session
broadcasts and turns each `tree_update` into one notification call (coalesced: while one is being
sent, further changes make one more, not one each). Watches are counted: the peer detaches when the
last subscriber goes, so an unwatched session can leave memory again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

from canopy.realtime.manager import SessionManager
from canopy.realtime.session import LiveSession

log = logging.getLogger("canopy.agents")
Notify = Callable[[str], Awaitable[None]]  # called with the session id whose tree changed


class WatchPeer:
    """A Peer (see `canopy.realtime.session.Peer`) that reads only whether the tree changed."""

    def __init__(self, session_id: str, on_change: Callable[[str], None]) -> None:
        self.session_id = session_id
        self._on_change = on_change
        self.closed = asyncio.Event()

    def enqueue(self, data: bytes) -> None:
        # Frames are encoded with "type" first; no need to parse the whole frame.
        if data.startswith(b'{"type":"tree_update"'):
            self._on_change(self.session_id)

    def close(self, code: int, reason: str = "") -> None:
        self.closed.set()

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

    async def watch(self, session_id: str, user_id: str) -> None:
        """One more subscriber of this (already authorised) session."""
        held = self._peers.get(session_id)
        if held is not None and not held[1].closed.is_set():
            self._peers[session_id] = (held[0], held[1], held[2] + 1)
            self._gauge.inc()
            return
        live = await self.sessions.get(session_id, user_id)
        peer = WatchPeer(session_id, self._changed)
        await live.attach(peer, None, None)
        if held is not None:  # its peer was closed (the session went away): that one's count is void
            self._gauge.dec(held[2])
        self._peers[session_id] = (live, peer, 1)
        self._gauge.inc()

    def unwatch(self, session_id: str) -> None:
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
        tasks = list(self._sending.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
