"""The provider interface every assistant implements.

A turn is driven by the session's turn runner. The runner hands the provider a
`TurnContext`; the provider streams through it:

- `await ctx.reasoning(text)`: one reasoning step (a `reasoning` frame),
- `await ctx.text(chunk)`: a piece of the answer (an `assistant_response` chunk),
- `await ctx.apply(delta)`: one tree change, applied through the tree engine,
  committed and broadcast as `tree_update` before it returns. It returns the
  applied delta (ids filled in) or raises `canopy.tree.DeltaError`, whose message
  a model can be told,
- `await ctx.undo()` / `await ctx.redo()`: revert / re-apply the session's last
  change set (the offline assistant's "undo" and "redo" commands),
- `ctx.recent_nodes`: the nodes the session's latest change set added or changed
  (what the offline assistant takes "it" to mean at the start of a prompt),
- `ctx.proposing`: the session is in review mode, so the changes are proposed, not made,
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
    """The assistant could not finish the turn; `code` is the protocol error code (502, 504, 500).

    `message` goes to the user's tabs, in user terms: never the provider's address, nor its
    answer (which may echo part of the key). `detail` has those, for the server's log only.
    """

    def __init__(self, code: int, message: str, detail: str = "") -> None:
        super().__init__(code, message)
        self.detail = detail


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

    async def redo(self) -> bool:
        """Re-apply the last undone change set; False when there is nothing to redo."""
        ...

    @property
    def recent_nodes(self) -> tuple[str, ...]:
        """Ids of the top-most nodes the latest change set added, changed or moved (still in the tree)."""
        ...

    @property
    def proposing(self) -> bool:
        """True in review mode: `apply` changes a scratch copy and the turn's changes become a proposal
        an editor accepts or rejects, so the answer must not say they were made."""
        ...

    async def debug(self, info: dict[str, Any]) -> None: ...


def touched_nodes(tree: Tree, deltas: list[dict[str, Any]]) -> tuple[str, ...]:
    """The top-most nodes that `deltas` added, changed or moved and that are still in `tree`."""
    ids: list[str] = []
    for delta in deltas:
        node = delta["node"]["id"] if delta.get("action") == "add" else str(delta.get("path", "")).rsplit("/", 1)[-1]
        if node in tree and node not in ids:
            ids.append(node)
    chosen = set(ids)

    def below_another(node: str) -> bool:
        parent = tree.parent(node)
        while parent is not None:
            if parent in chosen:
                return True
            parent = tree.parent(parent)
        return False

    return tuple(n for n in ids if not below_another(n))


class Provider(Protocol):
    name: str

    async def run_turn(self, ctx: TurnContext) -> TurnOutcome | None:
        """Run one turn through ``ctx``; ``None`` (or a default ``TurnOutcome``) when it simply ended."""
        ...
