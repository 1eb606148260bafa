"""A session held in memory: its tree, undo/redo stacks, attached tabs, seq and replay buffer.

`LiveSession` is the one entry point for changing a session: a prompt (the turn it starts runs
through the session's `TurnRunner`), a cancel, a tree op, undo, redo, rename and close all go
through its public methods, each naming the `Actor` behind it, and each takes the session's one
asyncio lock itself; nothing outside this module takes it. Every change runs in this order:
apply to the tree (validated, all-or-nothing), commit to the database, then broadcast. If the
commit fails the tree change is reverted and nothing is broadcast.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from canopy.assistant.base import ChatMessage, Provider, ProviderError, touched_nodes
from canopy.assistant.factory import describe
from canopy.db import log_storage_failure, storage_cause
from canopy.errors import CanopyError
from canopy.metrics import Metrics
from canopy.protocol import MAX_PROPOSAL_DELTAS, PROTOCOL_VERSION
from canopy.ratelimit import SlidingWindow
from canopy.realtime import attribution, frames
from canopy.realtime.changes import VIA_VALUES, Actor, ChangeSet, Via
from canopy.realtime.errors import StorageError
from canopy.realtime.presence import PresenceBoard
from canopy.realtime.replay import ReplayBuffer
from canopy.realtime.review import ReviewHost, check_decision, new_proposal_id
from canopy.realtime.store import UNDO_DEPTH, Access, StoredMessage, StoredProposal, StoredSession, iso, now
from canopy.realtime.turns import Turn, TurnEnd, TurnHost, TurnRunner
from canopy.realtime.undo_state import UndoBoard, UndoState, undo_state
from canopy.tree import Change, DeltaError, Tree, TreeLimits

log = logging.getLogger("canopy.session")
T = TypeVar("T")

SEQ_BLOCK = 1024  # seq numbers reserved in the database ahead of use, so seq never decreases across a crash
# A commit also stores a new seq ceiling once fewer than this many numbers are left, so the frames it
# leads to never need a write of their own (which could fail after the change itself was stored).
SEQ_HEADROOM = 256
HISTORY_LIMIT = 200  # messages kept in memory for chat_history and model context
COMPACT_EVERY = 500  # log rows between snapshots
DEFAULT_TITLE = "Untitled session"
TITLE_FROM_PROMPT_CHARS = 60  # a session still titled DEFAULT_TITLE takes its first prompt's words, up to this


def title_from_prompt(prompt: str) -> str:
    """A session title from a prompt: one line of its words, cut at a word boundary with "…"."""
    words = " ".join(prompt.split())
    if len(words) <= TITLE_FROM_PROMPT_CHARS:
        return words or DEFAULT_TITLE
    cut = words[: TITLE_FROM_PROMPT_CHARS - 1]
    space = cut.rfind(" ")
    if space >= TITLE_FROM_PROMPT_CHARS // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


class Peer(Protocol):
    """What a session needs of an attached connection."""

    def enqueue(self, data: bytes) -> None: ...

    def close(self, code: int, reason: str = "") -> None: ...

    async def wait_closed(self) -> None: ...


class SessionStorage(Protocol):
    """What a live session needs of storage (`canopy.realtime.store.SessionStore`; an in-memory one in unit tests)."""

    async def commit_changes(
        self,
        session_id: str,
        changes: Sequence[Change],
        *,
        rev: int,
        node_count: int,
        change_set: int | None,
        new_set: ChangeSet | None = None,
        mark: tuple[int, bool] | None = None,
        drop_undone: bool = False,
        seq_ceiling: int | None = None,
        resolves: tuple[str, dict[str, Any]] | None = None,
    ) -> None: ...

    async def add_proposal(self, session_id: str, proposal: StoredProposal) -> None: ...

    async def resolve_proposal(self, session_id: str, proposal_id: str, outcome: dict[str, Any]) -> None: ...

    async def set_review_mode(self, session_id: str, on: bool) -> None: ...

    async def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        meta: dict[str, Any] | None = None,
        seq_ceiling: int | None = None,
        author: Actor | None = None,
    ) -> StoredMessage: ...

    async def set_seq_ceiling(self, session_id: str, ceiling: int) -> None: ...

    async def compact(self, session_id: str, snapshot: bytes, rev: int) -> None: ...

    async def rename(self, session_id: str, title: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What every live session shares: limits and the assistant."""

    limits: TreeLimits
    replay_frames: int
    provider: Provider
    prompts: SlidingWindow  # prompts per user per minute, across all their sessions
    history_messages: int  # earlier chat messages given to the provider
    replay_bytes: int = 4 * 1024 * 1024  # the replay buffer's byte budget (REPLAY_BUFFER_MAX_BYTES)


def _message_dict(message: StoredMessage, author: dict[str, str] | None) -> dict[str, Any]:
    """A message as chat_history (and the REST session) show it; `author` its author's actor data."""
    out: dict[str, Any] = {"role": message.role, "content": message.content, "created_at": message.created_at}
    if author is not None:
        out["author"] = author
    if message.meta:
        out.update(message.meta)
    return out


@dataclass(frozen=True, slots=True)
class Submitted:
    """What `LiveSession.submit` did: the changes applied, or (review mode) the proposal made instead."""

    applied: list[Change]
    proposal: StoredProposal | None


class LiveSession:
    def __init__(self, stored: StoredSession, store: SessionStorage, metrics: Metrics, config: SessionConfig) -> None:
        self.id = stored.meta.id
        self.user_id = stored.meta.user_id
        self.title = stored.meta.title
        self.store = store
        self.metrics = metrics
        self.config = config
        self._lock = asyncio.Lock()
        self.tree = Tree.from_dict(stored.snapshot, stored.snapshot_rev, config.limits)
        for delta in stored.log:
            self.tree.apply(delta)
        self._since_snapshot = len(stored.log)
        self.seq = self.seq_ceiling = stored.seq_ceiling
        self.replay = ReplayBuffer(config.replay_frames, config.replay_bytes)
        self.peers: set[Peer] = set()
        self.turns = TurnRunner()
        self.undo_board = UndoBoard()
        for cs in stored.change_sets:
            cs.moved_at = cs.number
        self._tick = max((cs.number for cs in stored.change_sets), default=0)
        self.undo_stack = [cs for cs in stored.change_sets if cs.changes and not cs.undone][-UNDO_DEPTH:]
        self.redo_stack = [cs for cs in stored.change_sets if cs.changes and cs.undone]
        self._next_set = self._tick + 1
        self.access = stored.access if stored.access.owner_id else Access(self.user_id, {}, {})
        self.review_mode = stored.review_mode
        self.proposals: dict[str, StoredProposal] = {p.id: p for p in stored.proposals}
        self.decided: set[str] = set(stored.decided_proposals)
        self.presence = PresenceBoard(self._send_presence)
        self.history: deque[dict[str, Any]] = deque(
            (_message_dict(m, self._actor_data(m.author) if m.author else None) for m in stored.messages),
            maxlen=HISTORY_LIMIT,
        )
        self.last_active = time.monotonic()
        self._critical: set[asyncio.Task[Any]] = set()

    # --- the entry point: every mutation, each taking the lock ----------------------------

    async def prompt(self, actor: Actor, prompt: str, frame_id: str | None) -> None:
        """Records and broadcasts the prompt, then starts the assistant's turn on the actor's behalf."""
        prompts = self.config.prompts
        wait = prompts.retry_after(actor.user_id)
        if wait > 0:
            self.metrics.rate_limited.labels("prompts").inc()
            raise CanopyError(429, f"Too many prompts; try again in {int(wait) + 1} s")
        async with self._lock:
            self._require_editor(actor)
            if self.turns.running:
                raise CanopyError(409, "A turn is already running in this session")
            history = self.chat_context(self.config.history_messages)
            author = await self._record_message("user", prompt, author=actor)
            prompts.hit(actor.user_id)  # a prompt refused for storage does not count
            await self._title_from(prompt)
            await self._publish("chat_message", {"role": "user", "content": prompt, "author": author}, frame_id)
            host: TurnHost = self
            if self.review_mode:  # the turn works on a scratch copy; its changes become a proposal
                host = ReviewHost(self, Tree.from_dict(self.tree.to_dict(), self.tree.rev, self.config.limits))
            self.turns.start(
                lambda: Turn(
                    host, self.config.provider, self.metrics, actor.through("assistant"), prompt, frame_id, history
                )
            )

    async def cancel(self, actor: Actor) -> None:
        """Stops the running turn (409 when none is); returns once it has ended or after a grace period."""
        self._require_editor(actor)
        await self.turns.cancel()

    async def apply_op(self, actor: Actor, delta: dict[str, Any], base_rev: int, frame_id: str | None) -> None:
        """A direct edit: its own change set. Stale `base_rev` is fine while the delta still applies."""
        await self._uninterruptible(self._apply_op(actor, delta, base_rev, frame_id))

    async def apply_batch(
        self, actor: Actor, deltas: Sequence[dict[str, Any]], frame_id: str | None = None
    ) -> list[Change]:
        """Several deltas as one change set, all applied or none (an agent's tool call, an import):
        undone as one, attributed to `actor`. A DeltaError names the first delta that did not fit."""
        return await self._uninterruptible(self._apply_batch(actor, deltas, frame_id))

    async def submit(self, actor: Actor, deltas: Sequence[dict[str, Any]], frame_id: str | None = None) -> Submitted:
        """An outside change (an agent's tool call, an import) as one unit: applied as one change set
        (as `apply_batch`), or, while review mode is on, stored and broadcast as a proposal by `actor`
        and the tree left as it is. Either way all deltas fit the tree or nothing happens."""
        return await self._uninterruptible(self._submit(actor, deltas, frame_id))

    async def undo(self, actor: Actor, frame_id: str | None) -> None:
        """Reverts the actor's own latest change set (their edits, turns they prompted, proposals they accepted)."""
        await self._uninterruptible(self._undo(actor, frame_id, from_turn=False))

    async def redo(self, actor: Actor, frame_id: str | None) -> None:
        await self._uninterruptible(self._redo(actor, frame_id, from_turn=False))

    async def decide(
        self, actor: Actor, proposal_id: str, accept: Literal["all"] | Sequence[int], frame_id: str | None
    ) -> None:
        """Applies the accepted deltas of an open proposal that still apply, as one change set."""
        await self._uninterruptible(self._decide(actor, proposal_id, accept, frame_id))

    async def rename(self, actor: Actor, title: str) -> None:
        async with self._lock:
            self._require_editor(actor)
            await self.store.rename(self.id, title)
            self.retitled(title)

    async def set_review_mode(self, actor: Actor, on: bool) -> None:
        async with self._lock:
            if self.access.role_of(actor.user_id) != "owner":
                raise CanopyError(403, "Only the owner changes review mode")
            await self.store.set_review_mode(self.id, on)
            self.review_mode = on
            self._send_settings()

    def retitled(self, title: str) -> None:
        """The title changed (stored already: here, or by another replica): every tab is told."""
        self.title = title
        self._send_settings()

    def _send_settings(self) -> None:
        """`session_updated` to every tab: unnumbered like `presence` (a tab that reconnects gets the
        current values in `session_ready`, so nothing needs replaying)."""
        data = frames.encode(
            "session_updated", {"title": self.title, "review_mode": self.review_mode}, session_id=self.id
        )
        for peer in tuple(self.peers):
            peer.enqueue(data)
        self.metrics.frames_out_of("session_updated").inc(len(self.peers))

    def membership_changed(self, user_id: str, role: str | None, username: str) -> None:
        """A member was added, changed role, or removed (`role` None): removal closes their tabs here
        within the second (1008 `access revoked`); any change updates presence. The one place
        sharing reaches a live session (a replica learning of it elsewhere calls this too)."""
        self.access.names[user_id] = username
        if role is None:
            self.access.roles.pop(user_id, None)
            for peer in tuple(self.peers):
                state = self.presence.tabs.get(peer)
                if state is not None and state.user_id == user_id:
                    self.presence.leave(peer)
                    self.peers.discard(peer)
                    peer.close(1008, "access revoked")
        else:
            self.access.roles[user_id] = role
        self.presence.changed()
        self._send_undo_states()

    def update_presence(self, peer: Peer, fields: dict[str, Any]) -> None:
        self.presence.update(peer, fields)

    async def _title_from(self, prompt: str) -> None:
        """A session still carrying the default title is named after its prompt (the caller holds the lock).
        Cosmetic: a storage failure here leaves the title as it was and the prompt goes on."""
        if self.title != DEFAULT_TITLE:
            return
        title = title_from_prompt(prompt)
        try:
            await self.store.rename(self.id, title)
        except Exception as exc:
            log.warning("could not title session %s from its prompt: %s", self.id, storage_cause(exc))
            return
        # No session_updated here: the prompt's own frames follow, and clients refresh titles after a turn.
        self.title = title

    async def close(self, code: int, reason: str) -> None:
        """The session is going away (deleted): its turn ends and every tab is closed."""
        await self.turns.stop()  # outside the lock: the turn takes it to send its last frames
        async with self._lock:
            for peer in tuple(self.peers):
                peer.close(code, reason)
            self.peers.clear()
            self.presence.close()

    async def resync(self, peer: Peer, frame_id: str | None) -> None:
        async with self._lock:  # never mid-commit: the snapshot shows only stored, broadcast changes
            self._unicast(peer, "tree_snapshot", {"tree": self.tree.view(), "rev": self.tree.rev}, frame_id)

    async def state(self) -> dict[str, Any]:
        """The session as REST shows it: only stored, broadcast changes. It holds the tree's live view,
        valid until the caller's next await: serialise it at once."""
        async with self._lock:
            return {
                "session_id": self.id,
                "title": self.title,
                "tree": self.tree.view(),
                "rev": self.tree.rev,
                "history": list(self.history),
                "owner": self.name_of(self.user_id),
                "review_mode": self.review_mode,
            }

    async def attach(self, peer: Peer, last_seq: int | None, frame_id: str | None, user_id: str | None = None) -> None:
        user_id = user_id or self.user_id
        async with self._lock:
            role = self.access.role_of(user_id)
            if role is None:
                raise CanopyError(404, "Session not found")
            missed = self._missed_frames(last_seq)
            self._unicast(
                peer,
                "session_ready",
                {
                    "session_id": self.id,
                    "title": self.title,
                    "initial_tree": self.tree.view(),
                    "rev": self.tree.rev,
                    "seq": self.seq,
                    "replay": missed is not None,
                    "protocol_version": PROTOCOL_VERSION,
                    "limits": self._limits,
                    "assistant": describe(self.config.provider),
                    "role": role,
                    "owner": self.name_of(self.user_id),
                    "review_mode": self.review_mode,
                    "proposals": [self._proposal_data(p) for p in self.proposals.values()],
                },
                frame_id,
            )
            if missed is None:
                self._unicast(peer, "chat_history", {"messages": list(self.history)}, frame_id)
            else:
                for data in missed:
                    peer.enqueue(data)
            self.metrics.resumes.labels("replay" if missed is not None and last_seq is not None else "snapshot").inc()
            self._send_undo_state(peer, user_id)
            self.peers.add(peer)
            self.presence.join(peer, user_id)
            self.last_active = time.monotonic()

    def detach(self, peer: Peer) -> None:
        self.peers.discard(peer)
        self.presence.leave(peer)
        self.last_active = time.monotonic()

    def name_of(self, user_id: str) -> str:
        return self.access.names.get(user_id, "unknown")

    def role_of(self, user_id: str) -> str | None:
        return self.access.role_of(user_id)

    def _actor_data(self, actor: Actor) -> dict[str, str]:
        data = {"username": self.name_of(actor.user_id), "via": actor.via}
        if actor.name is not None:
            data["name"] = actor.name
        return data

    def _require_editor(self, actor: Actor) -> None:
        role = self.access.role_of(actor.user_id)
        if role is None:
            raise CanopyError(404, "Session not found")
        if role == "viewer":
            raise CanopyError(403, "Viewers cannot change this session")

    def _undo_state_of(self, user_id: str) -> UndoState:
        return undo_state(user_id, self.access.role_of(user_id), self.undo_stack, self.redo_stack)

    def _send_undo_state(self, peer: Peer, user_id: str) -> None:
        """A newly attached tab learns its user's undo state (after session_ready and any replayed frames)."""
        state = self._undo_state_of(user_id)
        self.undo_board.tell(user_id, state)
        self._unicast(peer, "undo_state", state.as_data())

    def _send_undo_states(self) -> None:
        """Tells each user with tabs here whether they can undo / redo, when that changed since they were
        last told (`undo_state`, unicast, no seq). Called after every change and on a role change; cheap:
        one walk down the stacks per user with tabs. A turn's start and end change nothing here: clients
        see a turn run from its frames (docs/protocol.md, `undo_state`)."""
        tabs: dict[str, list[Peer]] = {}
        for peer in self.peers:
            tab = self.presence.tabs.get(peer)
            if tab is not None:
                tabs.setdefault(tab.user_id, []).append(peer)
        self.undo_board.keep_only(tabs)
        for user_id, peers in tabs.items():
            state = self._undo_state_of(user_id)
            if not self.undo_board.tell(user_id, state):
                continue
            data = frames.encode("undo_state", state.as_data(), session_id=self.id)
            for peer in peers:
                peer.enqueue(data)
            self.metrics.frames_out_of("undo_state").inc(len(peers))

    def _send_presence(self) -> None:
        users = self.presence.users(self.access.role_of, self.name_of)
        data = frames.encode("presence", {"users": users}, session_id=self.id)
        for peer in tuple(self.peers):
            peer.enqueue(data)
        self.metrics.frames_out_of("presence").inc(len(self.peers))

    async def stop_turn(self) -> None:
        """Shutdown: the running turn is cancelled and ends (stored) before the tabs are closed."""
        await self.turns.stop()

    async def settle(self) -> None:
        """Waits for changes in flight (used on shutdown)."""
        if self._critical:
            await asyncio.gather(*self._critical, return_exceptions=True)

    async def persist_seq(self) -> None:
        """Stores the exact seq on the way out of memory (eviction, shutdown), so a reload continues from it."""
        async with self._lock:
            try:
                await self.store.set_seq_ceiling(self.id, self.seq)
                self.seq_ceiling = self.seq
            except Exception as exc:
                log_storage_failure(log, "could not store seq of session %s", self.id, exc=exc)

    @property
    def idle(self) -> bool:
        return not self.peers and not self.turns.running and not self._lock.locked()

    # --- TurnHost: what the running turn may do ------------------------------------------

    async def emit(self, frame_type: str, data: dict[str, Any], frame_id: str | None) -> None:
        async with self._lock:
            await self._publish(frame_type, data, frame_id)

    async def apply_for_turn(self, actor: Actor, delta: dict[str, Any], frame_id: str | None) -> Change:
        return await self._uninterruptible(self._apply_for_turn(actor, delta, frame_id))

    async def undo_for_turn(self, actor: Actor, frame_id: str | None) -> None:
        await self._uninterruptible(self._undo(actor, frame_id, from_turn=True))

    async def redo_for_turn(self, actor: Actor, frame_id: str | None) -> None:
        await self._uninterruptible(self._redo(actor, frame_id, from_turn=True))

    @property
    def proposing(self) -> bool:
        """A turn hosted by the session itself applies its changes (review mode hosts it on a ReviewHost)."""
        return False

    def recent_nodes(self) -> tuple[str, ...]:
        """The nodes the latest change set added, changed or moved (see `TurnContext.recent_nodes`)."""
        if not self.undo_stack:
            return ()
        return touched_nodes(self.tree, [change.delta for change in self.undo_stack[-1].changes])

    async def end_turn(self, end: TurnEnd) -> None:
        async with self._lock:
            await self._end_locked(end)

    async def end_review_turn(self, host: ReviewHost, end: TurnEnd) -> None:
        """A review-mode turn's end: its changes, if any, become a stored and broadcast proposal first."""
        async with self._lock:
            if host.changes and end.failure is None:
                try:
                    await self._propose(host, end)
                except StorageError:
                    end = dataclasses.replace(end, failure=ProviderError(500, "The proposal could not be stored"))
            await self._end_locked(end)

    async def _propose(self, host: ReviewHost, end: TurnEnd) -> None:
        assert self.turns.current is not None
        deltas = [ch.delta for ch in host.changes]
        proposal = StoredProposal(
            new_proposal_id(),
            host.base_rev,
            self.turns.current.actor.user_id,
            attribution.summarise_changes(host.changes),
            deltas,
            iso(now()),
        )
        await self._store_proposal(proposal, end.frame_id)

    async def _store_proposal(self, proposal: StoredProposal, frame_id: str | None) -> None:
        """Stores an open proposal, then broadcasts it (the caller holds the lock)."""
        try:
            await self.store.add_proposal(self.id, proposal)
        except Exception as exc:
            log_storage_failure(log, "could not store a proposal in session %s", self.id, exc=exc)
            raise StorageError() from exc
        self.proposals[proposal.id] = proposal
        await self._publish("proposal", {"proposal": self._proposal_data(proposal)}, frame_id)

    @staticmethod
    def _author(proposal: StoredProposal) -> Actor:
        """The proposal's author as an Actor (user, how it came, what acted)."""
        via: Via = next((v for v in VIA_VALUES if v == proposal.author_via), "assistant")
        return Actor(proposal.author_user_id, via, proposal.author_name)

    def _proposal_data(self, proposal: StoredProposal) -> dict[str, Any]:
        return {
            "id": proposal.id,
            "base_rev": proposal.base_rev,
            "author": self._actor_data(self._author(proposal)),
            "summary": proposal.summary,
            "deltas": proposal.deltas,
            "status": "open",
            "created_at": proposal.created_at,
        }

    async def _end_locked(self, end: TurnEnd) -> None:
        try:
            await self._publish_end(end)
        except StorageError:
            # Not even the error could be numbered: the tabs must not miss the turn's end, so they
            # are closed and resume (a snapshot and the stored history) once storage is back.
            log.error("could not publish the end of a turn in session %s; closing its tabs", self.id)
            for peer in tuple(self.peers):
                peer.close(1011, "could not finish the turn; reconnect")

    async def _publish_end(self, end: TurnEnd) -> None:
        """Stores the answer first (its commit also reserves seq numbers), then sends debug and the end."""
        failure = end.failure
        turn = self.turns.current  # still the ending turn: the runner lets it go after end_turn returns
        try:
            await self._record_message("assistant", end.text, end.meta, turn.actor if turn is not None else None)
        except StorageError:
            failure = failure or ProviderError(500, "The answer could not be stored")
        await self._publish("debug", end.debug, end.frame_id)
        if failure is not None:
            await self._publish("error", {}, end.frame_id, error=(failure.code, failure.message))
        else:
            final: dict[str, Any] = {"text": end.text, "chunk": False}
            if end.cancelled:
                final["cancelled"] = True
            if end.truncated is not None:
                final["truncated"] = end.truncated
            await self._publish("assistant_response", final, end.frame_id)

    # --- broadcasting -----------------------------------------------------------------

    async def _publish(
        self, frame_type: str, data: dict[str, Any], frame_id: str | None = None, error: tuple[int, str] | None = None
    ) -> None:
        """Sends a frame with the next seq to every attached tab. The caller holds the lock."""
        if self.seq + 1 > self.seq_ceiling:
            await self._reserve_seq()
        self.seq += 1
        data_bytes = frames.encode(frame_type, data, session_id=self.id, frame_id=frame_id, seq=self.seq, error=error)
        self.replay.append((self.seq, data_bytes))
        for peer in tuple(self.peers):
            peer.enqueue(data_bytes)
        self.metrics.frames_out_of(frame_type).inc(len(self.peers))
        if error is not None:
            self.metrics.errors_of(str(error[0])).inc()
        self.last_active = time.monotonic()

    async def _reserve_seq(self) -> None:
        ceiling = self.seq + SEQ_BLOCK
        try:
            await self.store.set_seq_ceiling(self.id, ceiling)
        except Exception as exc:
            log_storage_failure(log, "could not reserve seq numbers for session %s", self.id, exc=exc)
            raise StorageError("Storage unavailable; nothing was sent") from exc
        self.seq_ceiling = ceiling

    def _ceiling_due(self, frames: int) -> int | None:
        """The seq ceiling to store with a commit about to publish `frames` frames, if the current one is close."""
        if self.seq + frames + SEQ_HEADROOM <= self.seq_ceiling:
            return None
        return self.seq + frames + SEQ_BLOCK

    def _unicast(self, peer: Peer, frame_type: str, data: dict[str, Any], frame_id: str | None = None) -> None:
        # Encoded at once: `data` may hold the tree's live view (Tree.view), valid only until the next await.
        peer.enqueue(frames.encode(frame_type, data, session_id=self.id, frame_id=frame_id))
        self.metrics.frames_out_of(frame_type).inc()

    def _missed_frames(self, last_seq: int | None) -> list[bytes] | None:
        """The frames after `last_seq` when the buffer still vouches for all of them, else None."""
        if last_seq is None or last_seq > self.seq:
            return None
        if last_seq == self.seq:
            return []
        if not self.replay or self.replay[0][0] > last_seq + 1:
            return None
        return [data for seq, data in self.replay if seq > last_seq]

    @property
    def _limits(self) -> dict[str, int]:
        return dataclasses.asdict(self.config.limits)

    # --- changing the tree --------------------------------------------------------------

    def _apply_all(self, deltas: Sequence[dict[str, Any]]) -> list[Change]:
        """Applies deltas in order, all or nothing."""
        applied: list[Change] = []
        try:
            for delta in deltas:
                applied.append(self.tree.apply(delta))
        except DeltaError:
            self._revert(applied)
            raise
        return applied

    def _revert(self, applied: Sequence[Change]) -> None:
        for change in reversed(applied):
            self.tree.revert(change)

    async def _commit(self, applied: Sequence[Change], change_set: int | None, **bookkeeping: Any) -> None:
        ceiling = self._ceiling_due(len(applied))
        try:
            await self.store.commit_changes(
                self.id,
                applied,
                rev=self.tree.rev,
                node_count=len(self.tree),
                change_set=change_set,
                seq_ceiling=ceiling,
                **bookkeeping,
            )
        except Exception as exc:
            log_storage_failure(
                log, "commit failed for session %s; reverting %d change(s)", self.id, len(applied), exc=exc
            )
            self._revert(applied)
            raise StorageError() from exc
        if ceiling is not None:
            self.seq_ceiling = ceiling
        self._since_snapshot += len(applied)

    async def _broadcast_changes(
        self, applied: Sequence[Change], origin: str, actor: Actor, frame_id: str | None
    ) -> None:
        rev = self.tree.rev - len(applied)
        who = self._actor_data(actor)
        for change in applied:
            rev += 1
            await self._publish(
                "tree_update", {"delta": change.delta, "rev": rev, "origin": origin, "actor": who}, frame_id
            )
        self._send_undo_states()
        await self._maybe_compact()

    def _push_undo(self, change_set: ChangeSet) -> None:
        """A new change set; the oldest beyond UNDO_DEPTH is forgotten, as compaction drops it from storage."""
        self.undo_stack.append(change_set)
        if len(self.undo_stack) > UNDO_DEPTH:
            del self.undo_stack[0]

    def _open_change_set(self, actor: Actor) -> ChangeSet:
        change_set = ChangeSet(self._next_set, actor, moved_at=self._next_tick())
        self._next_set += 1
        return change_set

    def _next_tick(self) -> int:
        self._tick += 1
        return self._tick

    def _has_redo(self, actor: Actor) -> bool:
        return any(cs.actor.user_id == actor.user_id for cs in self.redo_stack)

    def _drop_redo(self, actor: Actor) -> None:
        self.redo_stack = [cs for cs in self.redo_stack if cs.actor.user_id != actor.user_id]

    async def _uninterruptible(self, work: Coroutine[Any, Any, T]) -> T:
        """Runs apply-commit-broadcast to the end even if the caller is cancelled meanwhile (cancel,
        shutdown): a change is either stored and broadcast, or reverted, never left half-done."""
        task = asyncio.create_task(work)
        self._critical.add(task)
        task.add_done_callback(self._critical.discard)
        return await asyncio.shield(task)

    async def _apply_op(self, actor: Actor, delta: dict[str, Any], base_rev: int, frame_id: str | None) -> None:
        async with self._lock:
            self._require_editor(actor)
            if base_rev > self.tree.rev:
                raise CanopyError(409, f"base_rev {base_rev} is ahead of the session (rev {self.tree.rev})")
            applied = [self.tree.apply(delta)]  # a DeltaError is the client's error frame as is
            await self._record_set(actor, applied, actor.origin, frame_id)

    async def _record_set(
        self,
        actor: Actor,
        applied: list[Change],
        origin: str,
        frame_id: str | None,
        resolves: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """Commits applied changes as a new change set of `actor` (it empties their redo stack) and broadcasts them."""
        change_set = self._open_change_set(actor)
        await self._commit(
            applied, change_set.number, new_set=change_set, drop_undone=self._has_redo(actor), resolves=resolves
        )
        change_set.changes = applied
        self._push_undo(change_set)
        self._drop_redo(actor)
        await self._broadcast_changes(applied, origin, actor, frame_id)

    async def _apply_batch(self, actor: Actor, deltas: Sequence[dict[str, Any]], frame_id: str | None) -> list[Change]:
        async with self._lock:
            return await self._apply_batch_locked(actor, deltas, frame_id)

    async def _apply_batch_locked(
        self, actor: Actor, deltas: Sequence[dict[str, Any]], frame_id: str | None
    ) -> list[Change]:
        self._require_editor(actor)
        if not deltas:
            raise CanopyError(400, "Nothing to apply")
        applied = self._apply_all(deltas)
        await self._record_set(actor, applied, actor.origin, frame_id)
        return applied

    async def _submit(self, actor: Actor, deltas: Sequence[dict[str, Any]], frame_id: str | None) -> Submitted:
        async with self._lock:
            if not self.review_mode:
                return Submitted(await self._apply_batch_locked(actor, deltas, frame_id), None)
            self._require_editor(actor)
            if not deltas:
                raise CanopyError(400, "Nothing to propose")
            if len(deltas) > MAX_PROPOSAL_DELTAS:
                raise CanopyError(
                    413, f"{len(deltas)} changes are more than one proposal holds ({MAX_PROPOSAL_DELTAS})"
                )
            base_rev = self.tree.rev
            # Validated and normalised on the tree itself, then taken back at once: no await comes in
            # between, so nobody ever sees the tree with them (a scratch copy would cost a whole tree).
            trial = self._apply_all(deltas)
            self._revert(trial)
            proposal = StoredProposal(
                new_proposal_id(),
                base_rev,
                actor.user_id,
                attribution.summarise_changes(trial),
                [change.delta for change in trial],
                iso(now()),
                author_via=actor.via,
                author_name=actor.name,
            )
            await self._store_proposal(proposal, frame_id)
            return Submitted([], proposal)

    async def _apply_for_turn(self, actor: Actor, delta: dict[str, Any], frame_id: str | None) -> Change:
        """One change of an assistant turn; the turn's change set opens with its first change."""
        async with self._lock:
            change = self.tree.apply(delta)  # DeltaError goes back to the provider as is
            opening = self.turns.change_set is None
            change_set = self.turns.change_set or self._open_change_set(actor)
            await self._commit(
                [change],
                change_set.number,
                new_set=change_set if opening else None,
                drop_undone=opening and self._has_redo(actor),
            )
            if opening:
                self.turns.change_set = change_set
                self._push_undo(change_set)
                self._drop_redo(actor)
            change_set.changes.append(change)
            await self._broadcast_changes([change], actor.origin, actor, frame_id)
            return change

    def _require_direct(self, actor: Actor, what: str) -> None:
        """An outside agent's undo or redo would change the tree unreviewed: refused in review mode."""
        if self.review_mode and actor.via == "agent":
            raise CanopyError(409, f"Review mode is on: an agent's {what} is not available (its changes are proposals)")

    async def _undo(self, actor: Actor, frame_id: str | None, from_turn: bool) -> None:
        async with self._lock:
            self._require_editor(actor)
            self._require_direct(actor, "undo")
            if self.turns.running and not from_turn:
                raise CanopyError(409, "A turn is running; undo when it has finished")
            change_set = self._latest_of(self.undo_stack, actor)
            if change_set is None:
                raise CanopyError(409, "Nothing to undo")
            self._check_blockers(change_set, "undo")
            applied = self._replay([ch.inverse for ch in reversed(change_set.changes)])
            await self._commit(applied, None, mark=(change_set.number, True))
            self.undo_stack.remove(change_set)
            change_set.moved_at = self._next_tick()
            self.redo_stack.append(change_set)
            await self._broadcast_changes(applied, "undo", actor.through("user"), frame_id)

    async def _redo(self, actor: Actor, frame_id: str | None, from_turn: bool) -> None:
        async with self._lock:
            self._require_editor(actor)
            self._require_direct(actor, "redo")
            if self.turns.running and not from_turn:
                raise CanopyError(409, "A turn is running; redo when it has finished")
            change_set = self._latest_of(self.redo_stack, actor)
            if change_set is None:
                raise CanopyError(409, "Nothing to redo")
            self._check_blockers(change_set, "redo")
            applied = self._replay([ch.delta for ch in change_set.changes])
            await self._commit(applied, None, mark=(change_set.number, False))
            self.redo_stack.remove(change_set)
            change_set.moved_at = self._next_tick()
            self.undo_stack.append(change_set)
            await self._broadcast_changes(applied, "undo", actor.through("user"), frame_id)

    @staticmethod
    def _latest_of(stack: list[ChangeSet], actor: Actor) -> ChangeSet | None:
        for change_set in reversed(stack):
            if change_set.actor.user_id == actor.user_id:
                return change_set
        return None

    def _check_blockers(self, change_set: ChangeSet, what: str) -> None:
        """409 naming who, when another user's change set done since this one touched nodes it needs."""
        needed = attribution.needs(change_set.changes)
        for other in reversed(self.undo_stack):
            if other.moved_at <= change_set.moved_at:
                break  # the undo stack is in the order change sets became done
            if other.actor.user_id != change_set.actor.user_id and attribution.affects(other.changes) & needed:
                who = self.name_of(other.actor.user_id)
                raise CanopyError(409, f"{who} changed the same nodes since; {what} is not possible")

    def _replay(self, deltas: list[dict[str, Any]]) -> list[Change]:
        try:
            return self._apply_all(deltas)
        except DeltaError as exc:  # the tree moved on under it: refuse, change nothing
            log.info("undo/redo no longer applies in session %s: %s", self.id, exc.message)
            raise CanopyError(409, "That change no longer applies to the tree") from None

    async def _decide(
        self, actor: Actor, proposal_id: str, accept: Literal["all"] | Sequence[int], frame_id: str | None
    ) -> None:
        async with self._lock:
            self._require_editor(actor)
            proposal = self.proposals.get(proposal_id)
            if proposal is None:
                if proposal_id in self.decided:
                    raise CanopyError(409, "Proposal already decided")
                raise CanopyError(404, "Proposal not found")
            if self.turns.running:
                raise CanopyError(409, "A turn is running; decide when it has finished")
            chosen = check_decision(proposal.deltas, accept)
            applied: list[Change] = []
            accepted: list[int] = []
            conflicts: list[dict[str, Any]] = []
            for index in chosen:  # each delta all or nothing; one that no longer applies is skipped
                try:
                    applied.append(self.tree.apply(proposal.deltas[index]))
                    accepted.append(index)
                except DeltaError as exc:
                    conflicts.append({"index": index, "code": exc.code, "message": exc.message})
            rejected = sorted(set(range(len(proposal.deltas))) - set(chosen))
            outcome = {
                "proposal_id": proposal_id,
                "accepted": accepted,
                "rejected": rejected,
                "conflicts": conflicts,
                "decided_by": self.name_of(actor.user_id),
            }
            if applied:
                # The decider's change set, come the way the proposal came (assistant, agent or import).
                author = self._author(proposal)
                await self._record_set(
                    actor.through(author.via, author.name),
                    applied,
                    "proposal",
                    frame_id,
                    resolves=(proposal_id, outcome),
                )
            else:
                try:
                    await self.store.resolve_proposal(self.id, proposal_id, outcome)
                except Exception as exc:
                    log_storage_failure(log, "could not resolve a proposal in session %s", self.id, exc=exc)
                    raise StorageError() from exc
            del self.proposals[proposal_id]
            self.decided.add(proposal_id)
            await self._publish("proposal_resolved", outcome, frame_id)

    async def _maybe_compact(self) -> None:
        if self._since_snapshot < COMPACT_EVERY:
            return
        snapshot = self.tree.to_json()
        try:
            await self.store.compact(self.id, snapshot, self.tree.rev)
        except Exception as exc:
            log_storage_failure(log, "compaction failed for session %s (will retry)", self.id, exc=exc)
            return
        self._since_snapshot = 0

    # --- chat -------------------------------------------------------------------------

    async def _record_message(
        self, role: str, content: str, meta: dict[str, Any] | None = None, author: Actor | None = None
    ) -> dict[str, str] | None:
        """Commits a chat message; the caller holds the lock and broadcasts it (one frame) after.
        Returns the author's actor data (as history holds it), for the frame to share."""
        ceiling = self._ceiling_due(1)
        try:
            stored = await self.store.add_message(self.id, role, content, meta, seq_ceiling=ceiling, author=author)
        except Exception as exc:
            log_storage_failure(log, "could not store a message in session %s", self.id, exc=exc)
            raise StorageError("Storage unavailable; the message was not stored") from exc
        if ceiling is not None:
            self.seq_ceiling = ceiling
        author_data = self._actor_data(author) if author is not None else None
        self.history.append(_message_dict(stored, author_data))
        return author_data

    def chat_context(self, limit: int) -> list[ChatMessage]:
        if limit <= 0:
            return []
        # From the end: the history holds up to HISTORY_LIMIT messages, the provider gets the last few.
        recent = itertools.islice(reversed(self.history), limit)
        return [ChatMessage(m["role"], m["content"]) for m in recent if m["content"]][::-1]
