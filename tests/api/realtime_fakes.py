"""Small stand-ins for the realtime layer's unit tests: a tab (peer), an in-memory store and a
scripted provider. Everything else in those tests is the real code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from canopy.assistant.base import TurnContext
from canopy.realtime.changes import Actor, ChangeSet
from canopy.realtime.store import INITIAL_TREE, Access, SessionMeta, StoredMessage, StoredProposal, StoredSession
from canopy.tree import Change


class FakePeer:
    """A tab: keeps what it is sent, decoded, and how it was closed."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    def enqueue(self, data: bytes) -> None:
        self.frames.append(orjson.loads(data))

    def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)

    async def wait_closed(self) -> None:
        return None

    def types(self) -> list[str]:
        return [f["type"] for f in self.frames]

    def of(self, frame_type: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == frame_type]


@dataclass
class MemoryStore:
    """What a live session stores, kept in lists; `failing` makes every write raise."""

    change_sets: dict[int, ChangeSet] = field(default_factory=dict)
    log: list[tuple[int, int | None, Change]] = field(default_factory=list)
    messages: list[StoredMessage] = field(default_factory=list)
    title: str = "t"
    seq_ceiling: int = 0
    compactions: int = 0
    failing: bool = False
    proposals: dict[str, StoredProposal] = field(default_factory=dict)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)
    review_mode: bool = False

    def _check(self) -> None:
        if self.failing:
            raise OSError("disk full")

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
    ) -> None:
        self._check()
        if drop_undone and new_set is not None:  # the actor's own redo stack
            who = new_set.actor.user_id
            self.change_sets = {
                n: cs for n, cs in self.change_sets.items() if not (cs.undone and cs.actor.user_id == who)
            }
        if resolves is not None:
            self.resolved[resolves[0]] = resolves[1]
        if new_set is not None:
            self.change_sets[new_set.number] = ChangeSet(new_set.number, new_set.actor)
        if mark is not None:
            self.change_sets[mark[0]].undone = mark[1]
        first = rev - len(changes) + 1
        self.log.extend((first + i, change_set, ch) for i, ch in enumerate(changes))
        if change_set is not None:
            self.change_sets[change_set].changes.extend(changes)
        if seq_ceiling is not None:
            self.seq_ceiling = seq_ceiling

    async def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        meta: dict[str, Any] | None = None,
        seq_ceiling: int | None = None,
        author: Actor | None = None,
    ) -> StoredMessage:
        self._check()
        message = StoredMessage(role, content, "2026-01-01T00:00:00Z", meta, author)
        self.messages.append(message)
        if seq_ceiling is not None:
            self.seq_ceiling = seq_ceiling
        return message

    async def set_seq_ceiling(self, session_id: str, ceiling: int) -> None:
        self._check()
        self.seq_ceiling = ceiling

    async def compact(self, session_id: str, snapshot: bytes, rev: int) -> None:
        self.compactions += 1

    async def rename(self, session_id: str, title: str) -> None:
        self._check()
        self.title = title

    async def add_proposal(self, session_id: str, proposal: StoredProposal) -> None:
        self._check()
        self.proposals[proposal.id] = proposal

    async def resolve_proposal(self, session_id: str, proposal_id: str, outcome: dict[str, Any]) -> None:
        self._check()
        self.resolved[proposal_id] = outcome

    async def set_review_mode(self, session_id: str, on: bool) -> None:
        self._check()
        self.review_mode = on

    def stored(self, owner: str = "alice", members: dict[str, str] | None = None) -> StoredSession:
        """The session as a reload would see it; user ids are their own usernames."""
        meta = SessionMeta("s1", owner, self.title, datetime.now(UTC), 1)
        roles = dict(members or {})
        access = Access(owner, roles, {uid: uid for uid in (owner, *roles)})
        open_ = [p for pid, p in self.proposals.items() if pid not in self.resolved]
        return StoredSession(
            meta,
            INITIAL_TREE,
            0,
            [ch.delta for _, _, ch in self.log],
            self.seq_ceiling,
            sorted(self.change_sets.values(), key=lambda cs: cs.number),
            list(self.messages),
            access,
            self.review_mode,
            open_,
            list(self.resolved),
        )


Step = Callable[[TurnContext], Awaitable[None]]


class ScriptedProvider:
    """Runs the given steps against the turn; `gate` (when set) holds it until released."""

    name = "scripted"

    def __init__(self, *steps: Step, gate: asyncio.Event | None = None) -> None:
        self.steps = steps
        self.gate = gate
        self.started = asyncio.Event()
        self.contexts: list[TurnContext] = []

    async def run_turn(self, ctx: TurnContext) -> None:
        self.contexts.append(ctx)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        for step in self.steps:
            await step(ctx)


def add(node_id: str, value: str = "v") -> dict[str, Any]:
    return {"action": "add", "path": "/root/children", "node": {"id": node_id, "value": value}}
