"""The change model: who changed a session (`Actor`) and the unit of undo (`ChangeSet`).

A single applied delta and its inverse is `canopy.tree.Change`; a change set groups the changes
one action made (one `tree_op`, or every change of one assistant turn) and is what undo and redo
walk. The same classes serve in memory and in storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from canopy.tree import Change

Via = Literal["user", "assistant", "agent", "import"]
VIA_VALUES: tuple[Via, ...] = ("user", "assistant", "agent", "import")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who caused a mutation: the user it is attributed to, and how it came (`via`): the user's own
    edit, the assistant acting on their prompt, an outside agent, or an import."""

    user_id: str
    via: Via = "user"
    # What acted, when not the user themself: an agent's token name, an import's format.
    name: str | None = None

    def through(self, via: Via, name: str | None = None) -> Actor:
        """The same user, acting through something else (e.g. the assistant running their prompt)."""
        return Actor(self.user_id, via, name)

    @property
    def origin(self) -> Literal["user", "assistant"]:
        """The `origin` of the `tree_update` frames its changes produce (the protocol knows two)."""
        return "assistant" if self.via == "assistant" else "user"


@dataclass(slots=True)
class ChangeSet:
    number: int
    actor: Actor
    changes: list[Change] = field(default_factory=list)
    undone: bool = False
    # When it last became done or undone (a per-session counter): per-user undo looks only at
    # other users' change sets that became done after it.
    moved_at: int = 0
