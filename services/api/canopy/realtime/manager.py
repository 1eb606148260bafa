"""The session manager: which sessions are in memory, who may open them, idle eviction, shutdown.

It finds sessions; it changes none: every mutation goes through the `LiveSession`'s own API.
With replicas on PostgreSQL (`cluster`, canopy/cluster/ownership.py) it claims a session's lease
before loading it, lets go when it evicts it, and drops it when the cluster says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from canopy.assistant.base import Provider
from canopy.cluster.ownership import CLOSE_MOVED, Host, Ownership
from canopy.config import Settings
from canopy.errors import CanopyError
from canopy.metrics import Metrics
from canopy.ratelimit import SlidingWindow
from canopy.realtime.changes import Actor
from canopy.realtime.session import DEFAULT_TITLE, LiveSession, Peer, SessionConfig
from canopy.realtime.store import Access, SessionMeta, SessionStore, StoredSession
from canopy.tree import TreeLimits

log = logging.getLogger("canopy.sessions")


class SessionManager:
    def __init__(self, store: SessionStore, settings: Settings, metrics: Metrics, provider: Provider) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.provider = provider
        self.limits = TreeLimits(
            max_nodes=settings.tree_max_nodes, max_depth=settings.tree_max_depth, max_bytes=settings.tree_max_bytes
        )
        self.prompts = SlidingWindow(settings.rate_limit_prompts_per_minute, 60.0)
        self.config = SessionConfig(
            self.limits,
            settings.replay_buffer_frames,
            provider,
            self.prompts,
            settings.llm_history_messages,
            settings.replay_buffer_max_bytes,
        )
        self._live: dict[str, LiveSession] = {}
        # One load per session at a time (a claim may wait for another replica); each task is
        # awaited by every caller that asked for that session meanwhile.
        self._loading: dict[str, asyncio.Task[LiveSession]] = {}
        self.cluster: Ownership | None = None
        self.peers: set[Peer] = set()
        self.closing = False

    def __len__(self) -> int:
        return len(self._live)

    # --- finding sessions ---------------------------------------------------------------

    async def get(self, session_id: str, user_id: str) -> LiveSession:
        """A session the caller owns or is a member of, loaded on first use; any other id is a 404."""
        live = self._live.get(session_id)
        if live is None:
            # Checked before loading: another user's request must not make this replica claim the session.
            access = await self.store.access(session_id)
            if access is None or access.role_of(user_id) is None:
                raise CanopyError(404, "Session not found")
            live = await self._load(session_id)
        if live.role_of(user_id) is None:
            raise CanopyError(404, "Session not found")
        return live

    async def _load(self, session_id: str, created: StoredSession | None = None) -> LiveSession:
        """`created`: a session just created here, as stored (not read back)."""
        task = self._loading.get(session_id)
        if task is None:
            task = asyncio.create_task(self._load_now(session_id, created), name="session-load")
            self._loading[session_id] = task
            task.add_done_callback(lambda _done: self._loading.pop(session_id, None))
        return await asyncio.shield(task)

    async def _load_now(self, session_id: str, created: StoredSession | None) -> LiveSession:
        live = self._live.get(session_id)
        if live is not None:
            return live
        if self.cluster is not None:
            await self.cluster.claim(session_id)  # before reading: the previous holder has stored everything
        stored = created or await self.store.load(session_id, message_limit=200)
        if stored is None:  # deleted meanwhile
            if self.cluster is not None:
                await self.cluster.let_go(session_id)
            raise CanopyError(404, "Session not found")
        live = LiveSession(stored, self.store, self.metrics, self.config)
        self._live[session_id] = live
        self.metrics.sessions_in_memory.set(len(self._live))
        return live

    async def access(self, session_id: str, user_id: str) -> Access:
        """Who may open the session; 404 unless the caller is its owner or a member."""
        live = self._live.get(session_id)
        access = live.access if live is not None else await self.store.access(session_id)
        if access is None or access.role_of(user_id) is None:
            raise CanopyError(404, "Session not found")
        return access

    async def require_owner(self, session_id: str, user_id: str, what: str) -> Access:
        access = await self.access(session_id, user_id)
        if access.role_of(user_id) != "owner":
            raise CanopyError(403, f"Only the owner {what}")
        return access

    # --- sharing: every change of membership ends in `membership_changed` -----------------

    async def share(self, session_id: str, actor: Actor, username: str, role: str) -> None:
        access = await self.require_owner(session_id, actor.user_id, "shares this session")
        user_id = await self.store.find_user(username)
        if user_id is None:
            raise CanopyError(404, "User not found")
        if user_id == access.owner_id:
            raise CanopyError(400, "The owner is not a member of their own session")
        if not await self.store.add_member(session_id, user_id, role):
            raise CanopyError(409, "Already a member; change the role with PATCH")
        await self._membership_stored(session_id, user_id, role, username)

    async def set_role(self, session_id: str, actor: Actor, username: str, role: str | None) -> None:
        """Changes a member's role, or removes them (`role` None: the owner, or the member themselves)."""
        access = await self.access(session_id, actor.user_id)
        user_id = await self.store.find_user(username)
        if user_id is not None and user_id == access.owner_id:
            raise CanopyError(400, "The owner's role cannot change")
        leaving_self = role is None and user_id == actor.user_id
        if access.role_of(actor.user_id) != "owner" and not leaving_self:
            raise CanopyError(403, "Only the owner changes members")
        if user_id is None or not await self.store.set_member_role(session_id, user_id, role):
            raise CanopyError(404, "Member not found")
        await self._membership_stored(session_id, user_id, role, username)

    async def _membership_stored(self, session_id: str, user_id: str, role: str | None, username: str) -> None:
        if session_id in self._live:
            self.membership_changed(session_id, user_id, role, username)
        elif self.cluster is not None:  # not in memory here: the replica serving it (if any) is told
            await self.cluster.membership_changed(session_id, user_id)

    def membership_changed(self, session_id: str, user_id: str, role: str | None, username: str) -> None:
        """The one place a stored change of membership reaches the session in memory (a removal closes the
        member's tabs with 1008 `access revoked`). A replica that learns of a change made elsewhere
        (LISTEN/NOTIFY) calls this too (`_membership_elsewhere`)."""
        live = self._live.get(session_id)
        if live is not None:
            live.membership_changed(user_id, role, username)

    async def set_review_mode(self, session_id: str, actor: Actor, on: bool) -> None:
        await self.require_owner(session_id, actor.user_id, "changes review mode")
        live = await self.get(session_id, actor.user_id)
        await live.set_review_mode(actor, on)

    async def open_for(self, user_id: str, username: str, session_id: str | None) -> LiveSession:
        """The session a socket's init_session asks for: by id, or else the user's most recent own one, or
        else a new one (their first). Their own sessions need no access check before loading."""
        if session_id is not None:
            return await self.get(session_id, user_id)
        recent = await self.store.most_recent(user_id)
        if recent is None:
            created = await self.store.create_loaded(user_id, username, DEFAULT_TITLE)
            return await self._load(created.meta.id, created)
        live = self._live.get(recent) or await self._load(recent)
        if live.role_of(user_id) is None:  # kept from `get`: their own session always passes
            raise CanopyError(404, "Session not found")
        return live

    async def create(self, user_id: str, title: str | None) -> LiveSession:
        meta = await self.store.create(user_id, title or DEFAULT_TITLE)
        return await self.get(meta.id, user_id)

    async def owned_meta(self, session_id: str, user_id: str) -> SessionMeta:
        """The session's metadata, for its owner or a member (404 otherwise)."""
        await self.access(session_id, user_id)
        meta = await self.store.meta(session_id)
        if meta is None:
            raise CanopyError(404, "Session not found")
        return meta

    async def rename(self, session_id: str, actor: Actor, title: str) -> None:
        access = await self.access(session_id, actor.user_id)
        if access.role_of(actor.user_id) == "viewer":
            raise CanopyError(403, "Viewers cannot change this session")
        live = self._live.get(session_id)
        if live is not None:
            await live.rename(actor, title)
        else:  # not in memory here: stored, and the replica serving it (if any) is told
            await self.store.rename(session_id, title)
            if self.cluster is not None:
                await self.cluster.renamed(session_id, title)

    async def delete(self, session_id: str, actor: Actor) -> None:
        await self.require_owner(session_id, actor.user_id, "deletes this session")
        live = self._live.pop(session_id, None)
        if live is not None:
            await live.close(1000, "session deleted")
            self.metrics.sessions_in_memory.set(len(self._live))
        await self.store.delete(session_id)
        if self.cluster is not None:  # the replica serving it closes its tabs
            await self.cluster.let_go(session_id)
            await self.cluster.deleted(session_id)

    # --- accounts (logout everywhere, deletion) ----------------------------------------

    def close_user_sockets(self, user_id: str, code: int, reason: str) -> int:
        """Closes every socket authenticated as the user (attached to a session or not)."""
        peers = [peer for peer in tuple(self.peers) if getattr(peer, "user_id", None) == user_id]
        for peer in peers:
            peer.close(code, reason)
        return len(peers)

    async def evict_user(self, user_id: str, code: int, reason: str) -> None:
        """A deleted user: their sockets close, their running turns stop, their sessions leave memory."""
        self.close_user_sockets(user_id, code, reason)
        for live in [live for live in self._live.values() if live.user_id == user_id]:
            self._live.pop(live.id, None)
            await live.close(code, reason)
        self.metrics.sessions_in_memory.set(len(self._live))

    # --- memory -------------------------------------------------------------------------

    async def evict_idle(self) -> int:
        cutoff = time.monotonic() - self.settings.session_idle_seconds
        evicted: list[str] = []
        for session_id, live in list(self._live.items()):
            if live.idle and live.last_active < cutoff:
                await live.persist_seq()
                self._live.pop(session_id, None)
                evicted.append(session_id)
        if evicted:
            self.metrics.evictions.inc(len(evicted))
            self.metrics.sessions_in_memory.set(len(self._live))
            log.info("evicted %d idle session(s) from memory", len(evicted))
        if self.cluster is not None:  # out of memory: another replica may take them without waiting
            for session_id in evicted:
                if session_id not in self._live and session_id not in self._loading:  # not loaded again meanwhile
                    await self.cluster.let_go(session_id)
        return len(evicted)

    # --- the cluster's requests -----------------------------------------------------------

    def cluster_host(self) -> Host:
        return Host(
            drop=self._drop, retitle=self._retitle, hand_over=self._hand_over, membership=self._membership_elsewhere
        )

    async def _drop(self, session_id: str, code: int, reason: str) -> None:
        """The lease is gone (taken over, or the session deleted elsewhere): forget the session
        without storing anything more, and close its tabs so they reconnect where it now lives."""
        live = self._live.pop(session_id, None)
        if live is None:
            return
        self.metrics.sessions_in_memory.set(len(self._live))
        log.info("dropped session %s: %s", session_id, reason)
        await live.close(code, reason)

    async def _hand_over(self, session_id: str) -> None:
        """Another replica asks for the session: end the turn (stored), store the exact seq, close the tabs."""
        live = self._live.get(session_id)
        if live is None:
            return
        await live.stop_turn()
        await live.settle()
        await live.persist_seq()
        await self._drop(session_id, CLOSE_MOVED, "session moved to another server")

    async def _membership_elsewhere(self, session_id: str, user_id: str) -> None:
        """Another replica changed a member of a session served here: the event names the member only,
        the database says what changed (so a late or repeated event still ends in the stored truth)."""
        live = self._live.get(session_id)
        if live is None:
            return
        access = await self.store.access(session_id)
        if access is None:  # deleted meanwhile: its own event closes the tabs
            return
        username = access.names.get(user_id) or live.access.names.get(user_id, "unknown")
        live.membership_changed(user_id, access.roles.get(user_id), username)

    def _retitle(self, session_id: str, title: str) -> None:
        live = self._live.get(session_id)
        if live is not None:
            live.retitled(title)  # its tabs here are told (session_updated)

    async def evict_forever(self) -> None:
        interval = max(0.05, min(60.0, self.settings.session_idle_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.evict_idle()
            except Exception:
                log.exception("idle eviction failed")

    async def drain(self) -> None:
        """Shutdown: finish or cancel running turns (stored), then close every socket with 1001."""
        if self.closing:
            return
        self.closing = True
        await asyncio.gather(*(live.stop_turn() for live in list(self._live.values())))
        for live in list(self._live.values()):
            await live.settle()
            await live.persist_seq()
        for peer in tuple(self.peers):
            peer.close(1001, "server shutting down")
        waits = [peer.wait_closed() for peer in tuple(self.peers)]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), 5.0)
