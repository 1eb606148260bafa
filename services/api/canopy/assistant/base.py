"""The provider interface every assistant implements.

A turn is driven by the session's turn runner. The runner hands the provider a
`TurnContext`; the provider streams through it:

- `await ctx.reasoning(text)`: one reasoning step (a `reasoning` frame),
- `await ctx.text(chunk)`: a piece of the answer (an `assistant_response` chunk),
- `await ctx.apply(delta)`: one tree change, applied through the tree engine,
  committed and broadcast as `tree_update` before it returns. It returns the
  applied delta (ids filled in) or raises `canopy.tree.DeltaError`, whose message
  a model can be told,
- `await ctx.undo()`: revert the session's last change set (the offline
  assistant's "undo" command),
- `await ctx.debug(info)`: extra figures for the `debug` frame (usage, timings).

`run_turn` may return a `TurnOutcome` (the answer was cut short, and why).
The runner owns everything else: the final `assistant_response`, the `debug`
frame with its own timings, cancellation (the provider's task is cancelled, so
providers must release network resources in `finally`/`async with`), and turning
`ProviderError` into a protocol error frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from canopy.errors import CanopyError
from canopy.tree import Tree


class ProviderError(CanopyError):
    """The assistant could not finish the turn; `code` is the protocol error code (502, 504, 500)."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One earlier chat message, oldest first, as given to providers for context."""

    role: str  # "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """What a provider tells the runner about a turn that ended normally."""

    # set when the model stopped early: "length" (token limit) or "content_filter" (the provider's filter)
    truncated: Literal["length", "content_filter"] | None = None


# The old name: "turn" now means only a prompt's run (canopy.realtime.turns). Kept while the
# provider modules move to `ChatMessage`.
ChatTurn = ChatMessage


class TurnContext(Protocol):
    @property
    def prompt(self) -> str: ...

    @property
    def tree(self) -> Tree:
        """The session's live tree (read it, never mutate it directly)."""
        ...

    @property
    def history(self) -> list[ChatMessage]: ...

    async def reasoning(self, text: str) -> None: ...

    async def text(self, chunk: str) -> None: ...

    async def apply(self, delta: dict[str, Any]) -> dict[str, Any]: ...

    async def undo(self) -> bool:
        """Revert the last change set; False when there is nothing to undo."""
        ...

    async def debug(self, info: dict[str, Any]) -> None: ...


class Provider(Protocol):
    name: str

    async def run_turn(self, ctx: TurnContext) -> TurnOutcome | None:
        """Run one turn through ``ctx``; ``None`` (or a default ``TurnOutcome``) when it simply ended."""
        ...
