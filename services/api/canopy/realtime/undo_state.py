"""Per-user undo availability: what the `undo_state` frame tells each user's tabs.

Undo is per user (`LiveSession.undo` reverts the caller's own latest change set), so whether Undo
and Redo can do anything differs per user. The session works it out from its in-memory stacks
after every change and role change, and sends a user's tabs a frame only when that user's
answer changed since the last one they were told (and once to each tab as it attaches).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from canopy.realtime.changes import ChangeSet


@dataclass(frozen=True, slots=True)
class UndoState:
    can_undo: bool
    can_redo: bool

    def as_data(self) -> dict[str, bool]:
        return {"can_undo": self.can_undo, "can_redo": self.can_redo}


NOTHING = UndoState(False, False)


def _has_own(stack: list[ChangeSet], user_id: str) -> bool:
    # From the top: a user who just changed something is found at once.
    return any(cs.actor.user_id == user_id for cs in reversed(stack))


def undo_state(user_id: str, role: str | None, undo_stack: list[ChangeSet], redo_stack: list[ChangeSet]) -> UndoState:
    """Whether `undo` / `redo` of this user would find a change set of theirs. A viewer has none. It
    leaves out what the request itself checks: while a turn runs both are refused (409; clients see
    the turn from its frames, so telling them at each turn's start and end would be two frames per
    turn for nothing), and a later change of another user to the same nodes can refuse it (409 naming who)."""
    if role is None or role == "viewer":
        return NOTHING
    return UndoState(_has_own(undo_stack, user_id), _has_own(redo_stack, user_id))


class UndoBoard:
    """The state each user with tabs on the session was last told."""

    def __init__(self) -> None:
        self._told: dict[str, UndoState] = {}

    def tell(self, user_id: str, state: UndoState) -> bool:
        """Records `state` as told; False when the user already had it (nothing to send)."""
        if self._told.get(user_id) == state:
            return False
        self._told[user_id] = state
        return True

    def keep_only(self, user_ids: Iterable[str]) -> None:
        """Forgets users who have no tab here any more (their next tab is told afresh on attach)."""
        keep = set(user_ids)
        for user_id in [u for u in self._told if u not in keep]:
            del self._told[user_id]
