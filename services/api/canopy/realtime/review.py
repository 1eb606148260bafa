"""Review mode: an assistant turn that proposes changes instead of applying them.

`ReviewHost` is the `TurnHost` of such a turn: the turn applies its deltas to a scratch copy of
the tree (so its later tool calls see its earlier proposals) and nothing reaches the real tree
or the tabs until the turn ends, when the session stores and broadcasts the proposal. Deciding a
proposal (`LiveSession.decide`) uses `dependencies` and `check_decision` from here.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from canopy.assistant.base import touched_nodes
from canopy.errors import CanopyError
from canopy.realtime.attribution import path_ids, subtree_ids, target
from canopy.realtime.changes import Actor
from canopy.realtime.turns import TurnEnd
from canopy.tree import Change, Tree

if TYPE_CHECKING:
    from canopy.realtime.session import LiveSession


def new_proposal_id() -> str:
    return "p-" + secrets.token_hex(4)


def _provides(delta: dict[str, Any]) -> set[str]:
    """Nodes whose place in the tree a later delta may rely on: those it adds, or the one it moves."""
    if delta["action"] == "add":
        return set(subtree_ids(delta["node"]))
    if delta["action"] == "move":
        return {target(delta)}
    return set()


def _refers_to(delta: dict[str, Any]) -> set[str]:
    ids = set(path_ids(delta["path"]))
    if delta["action"] == "move":
        ids |= set(path_ids(delta["to"]))
    return ids


def dependencies(deltas: Sequence[dict[str, Any]]) -> list[list[int]]:
    """For each delta, the earlier deltas it needs: those adding or moving a node its paths name."""
    out: list[list[int]] = []
    provided: list[set[str]] = []
    for delta in deltas:
        refs = _refers_to(delta)
        out.append([i for i, ids in enumerate(provided) if ids & refs])
        provided.append(_provides(delta))
    return out


def check_decision(deltas: Sequence[dict[str, Any]], accept: Literal["all"] | Sequence[int]) -> list[int]:
    """The accepted indices, sorted; 400 for an index out of range or a missing dependency."""
    if accept == "all":
        return list(range(len(deltas)))
    chosen = sorted(set(accept))
    for index in chosen:
        if index >= len(deltas):
            raise CanopyError(400, f"Delta {index} does not exist (the proposal has {len(deltas)})")
    needed = dependencies(deltas)
    accepted = set(chosen)
    for index in chosen:
        for dep in needed[index]:
            if dep not in accepted:
                raise CanopyError(400, f"Delta {index} needs delta {dep} (accept {dep} too)")
    return chosen


class ReviewHost:
    """The `TurnHost` of a review-mode turn: a scratch tree, the proposed changes, the real session
    for everything else (frames, the turn's end)."""

    def __init__(self, session: LiveSession, scratch: Tree) -> None:
        self.session = session
        self.scratch = scratch
        self.base_rev = scratch.rev
        self.changes: list[Change] = []

    @property
    def id(self) -> str:
        return self.session.id

    @property
    def tree(self) -> Tree:
        return self.scratch

    @property
    def proposing(self) -> bool:
        return True

    async def emit(self, frame_type: str, data: dict[str, Any], frame_id: str | None) -> None:
        await self.session.emit(frame_type, data, frame_id)

    async def apply_for_turn(self, actor: Actor, delta: dict[str, Any], frame_id: str | None) -> Change:
        change = self.scratch.apply(delta)  # a DeltaError goes back to the provider as is
        self.changes.append(change)
        return change

    async def undo_for_turn(self, actor: Actor, frame_id: str | None) -> None:
        raise CanopyError(409, "Undo is not available while the assistant proposes changes")

    async def redo_for_turn(self, actor: Actor, frame_id: str | None) -> None:
        raise CanopyError(409, "Redo is not available while the assistant proposes changes")

    def recent_nodes(self) -> tuple[str, ...]:
        """The nodes this turn's proposed changes touched, or else the session's latest change set's."""
        if self.changes:
            return touched_nodes(self.scratch, [change.delta for change in self.changes])
        return self.session.recent_nodes()

    async def end_turn(self, end: TurnEnd) -> None:
        await self.session.end_review_turn(self, end)
