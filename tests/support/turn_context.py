"""A fake TurnContext over a real Tree that records everything a provider does, in order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from canopy.assistant.base import ChatMessage
from canopy.tree import DeltaError, Tree


@dataclass
class TurnOptions:
    """How the fake context answers besides recording."""

    history: list[ChatMessage] = field(default_factory=list)
    undo_result: bool = False  # what undo and redo return (True: "there was something to undo/redo")
    fail_on: int | None = None  # the n-th apply (1-based) fails with 409 "the node changed meanwhile"
    on_apply: Callable[[dict[str, Any]], Awaitable[None]] | None = None  # after each applied change
    on_text: Callable[[str], Awaitable[None]] | None = None  # after each text chunk
    proposing: bool = False  # a review-mode turn: its changes become a proposal


class FakeTurnContext:
    """Records `(kind, payload)` frames: reasoning, text, apply (the applied delta), undo, redo, debug."""

    def __init__(
        self, prompt: str = "Do something with the tree.", tree: Tree | None = None, options: TurnOptions | None = None
    ) -> None:
        self._prompt = prompt
        self._tree = tree if tree is not None else Tree()
        self.options = options or TurnOptions()
        self.frames: list[tuple[str, Any]] = []
        self._apply_calls = 0

    @property
    def prompt(self) -> str:
        return self._prompt

    @property
    def tree(self) -> Tree:
        return self._tree

    @property
    def history(self) -> list[ChatMessage]:
        return self.options.history

    async def reasoning(self, text: str) -> None:
        self.frames.append(("reasoning", text))

    async def text(self, chunk: str) -> None:
        self.frames.append(("text", chunk))
        if self.options.on_text:
            await self.options.on_text(chunk)

    async def apply(self, delta: dict[str, Any]) -> dict[str, Any]:
        self._apply_calls += 1
        if self._apply_calls == self.options.fail_on:
            raise DeltaError(409, "the node changed meanwhile")
        change = self._tree.apply(delta)
        self.frames.append(("apply", change.delta))
        if self.options.on_apply:
            await self.options.on_apply(change.delta)
        return change.delta

    async def undo(self) -> bool:
        self.frames.append(("undo", None))
        return self.options.undo_result

    async def redo(self) -> bool:
        self.frames.append(("redo", None))
        return self.options.undo_result

    @property
    def recent_nodes(self) -> tuple[str, ...]:
        return ()

    @property
    def proposing(self) -> bool:
        return self.options.proposing

    async def debug(self, info: dict[str, Any]) -> None:
        self.frames.append(("debug", info))

    # views
    def kinds(self) -> list[str]:
        return [k for k, _ in self.frames]

    @property
    def text_out(self) -> str:
        return "".join(v for k, v in self.frames if k == "text")

    def reply(self) -> str:
        return self.text_out

    @property
    def reasoning_out(self) -> list[str]:
        return [v for k, v in self.frames if k == "reasoning"]

    @property
    def applied(self) -> list[dict[str, Any]]:
        return [v for k, v in self.frames if k == "apply"]

    @property
    def debug_info(self) -> dict[str, Any]:
        infos = [v for k, v in self.frames if k == "debug"]
        assert len(infos) == 1, self.frames
        info: dict[str, Any] = infos[0]
        return info

    def values(self, node_id: str = "root") -> list[str]:
        return [self._tree.value(c) for c in self._tree.children(node_id)]
