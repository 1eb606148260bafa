"""Assistant turns: one prompt's run (`Turn`) and the session's one owner of turns (`TurnRunner`).

The provider runs in its own task so `cancel` can stop it while the turn still finishes
properly: `debug`, then exactly one final `assistant_response` (or one `error`), committed to
the database before it is broadcast.

A turn knows its session only through `TurnHost`, the few things a turn may do to it; it never
takes the session's lock or touches its peers, stacks or metrics. "Turn" means this and only
this in the realtime layer (earlier chat messages given to a provider are `ChatMessage`s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from canopy.assistant.base import ChatMessage, Provider, ProviderError, TurnOutcome
from canopy.errors import CanopyError
from canopy.metrics import Metrics
from canopy.realtime.changes import Actor, ChangeSet
from canopy.tree import Change, Tree

log = logging.getLogger("canopy.turn")
CANCEL_GRACE_SECONDS = 1.0  # how long `cancel` waits for the turn's final frame before it returns
STOP_GRACE_SECONDS = 10.0  # how long closing a session or shutdown waits for a cancelled turn to end
# Reasoning stored with the answer (meta "reasoning"), so a reload shows it: at most this many steps
# (later ones join the last) and characters (the rest is dropped and the last step ends with "…").
REASONING_MAX_STEPS = 200
REASONING_MAX_CHARS = 16_000


@dataclass(frozen=True, slots=True)
class TurnEnd:
    """How a turn ended, for the session to store and announce."""

    frame_id: str | None
    text: str
    meta: dict[str, Any] | None  # stored with the answer: "cancelled", "error", "truncated", "reasoning"
    debug: dict[str, Any]
    failure: ProviderError | None
    cancelled: bool
    truncated: str | None = None  # the provider's answer was cut short: "length" or "content_filter"


class TurnHost(Protocol):
    """What a turn may do to its session. Each call takes the session's lock itself."""

    @property
    def id(self) -> str: ...

    @property
    def tree(self) -> Tree: ...

    async def emit(self, frame_type: str, data: dict[str, Any], frame_id: str | None) -> None:
        """Broadcasts one frame (reasoning, an answer chunk)."""
        ...

    async def apply_for_turn(self, actor: Actor, delta: dict[str, Any], frame_id: str | None) -> Change:
        """Applies, commits and broadcasts one change into the turn's change set; raises DeltaError."""
        ...

    async def undo_for_turn(self, actor: Actor, frame_id: str | None) -> None:
        """Undoes the last change set although a turn is running; raises CanopyError."""
        ...

    async def redo_for_turn(self, actor: Actor, frame_id: str | None) -> None:
        """Re-applies the last undone change set although a turn is running; raises CanopyError."""
        ...

    def recent_nodes(self) -> tuple[str, ...]:
        """The top-most nodes the latest change set added, changed or moved, still in the tree."""
        ...

    @property
    def proposing(self) -> bool:
        """Whether the turn's changes become a proposal (review mode) instead of applying."""
        ...

    async def end_turn(self, end: TurnEnd) -> None:
        """Stores the answer and sends the turn's last frames."""
        ...


class ReasoningLog:
    """A turn's reasoning steps as stored with its answer, within REASONING_MAX_STEPS/_CHARS."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self._chars = 0

    def add(self, text: str) -> None:
        room = REASONING_MAX_CHARS - self._chars
        if room <= 0 or not text:
            return
        if len(text) > room:
            text = text[: room - 1] + "…"
        self._chars += len(text)
        if len(self.steps) < REASONING_MAX_STEPS:
            self.steps.append(text)
        else:
            self.steps[-1] += text


class Turn:
    """Implements `canopy.assistant.base.TurnContext` for one prompt."""

    def __init__(
        self,
        host: TurnHost,
        provider: Provider,
        metrics: Metrics,
        actor: Actor,
        prompt: str,
        frame_id: str | None,
        history: list[ChatMessage],
    ) -> None:
        self.host = host
        self.provider = provider
        self.metrics = metrics
        self.actor = actor  # the assistant, on behalf of the user who prompted
        self._prompt = prompt
        self._history = history
        self.frame_id = frame_id
        self._parts: list[str] = []
        self._reasoning = ReasoningLog()
        self._debug: dict[str, Any] = {}
        self._started = time.perf_counter()
        self._first_update: float | None = None
        self._updates = 0
        self._provider_task: asyncio.Task[TurnOutcome | None] | None = None

    # --- TurnContext ------------------------------------------------------------------

    @property
    def prompt(self) -> str:
        return self._prompt

    @property
    def tree(self) -> Tree:
        return self.host.tree

    @property
    def history(self) -> list[ChatMessage]:
        return self._history

    async def reasoning(self, text: str) -> None:
        self._reasoning.add(text)
        await self.host.emit("reasoning", {"text": text, "steps": [text]}, self.frame_id)

    async def text(self, chunk: str) -> None:
        if not chunk:
            return
        self._parts.append(chunk)
        await self.host.emit("assistant_response", {"text": chunk, "chunk": True}, self.frame_id)

    async def apply(self, delta: dict[str, Any]) -> dict[str, Any]:
        change = await self.host.apply_for_turn(self.actor, delta, self.frame_id)
        self._updates += 1
        if self._first_update is None:
            self._first_update = time.perf_counter() - self._started
            self.metrics.first_update_latency.labels(self.provider.name).observe(self._first_update)
        return change.delta

    async def undo(self) -> bool:
        try:
            await self.host.undo_for_turn(self.actor, self.frame_id)
        except CanopyError:
            return False
        return True

    async def redo(self) -> bool:
        try:
            await self.host.redo_for_turn(self.actor, self.frame_id)
        except CanopyError:
            return False
        return True

    @property
    def recent_nodes(self) -> tuple[str, ...]:
        return self.host.recent_nodes()

    @property
    def proposing(self) -> bool:
        return self.host.proposing

    async def debug(self, info: dict[str, Any]) -> None:
        self._debug.update(info)

    # --- running ----------------------------------------------------------------------

    def start_provider(self) -> asyncio.Task[TurnOutcome | None]:
        # The provider task exists from here on, so a cancel read right behind the prompt (before the
        # turn's own task has run at all) still finds it and stops the turn.
        self._provider_task = asyncio.create_task(self.provider.run_turn(self), name=f"provider-{self.host.id}")
        return self._provider_task

    def cancel(self) -> bool:
        if self._provider_task is None or self._provider_task.done():
            return False
        self._provider_task.cancel()
        return True

    async def run(self, provider_task: asyncio.Task[TurnOutcome | None]) -> None:
        outcome: ProviderError | None = None
        cancelled = False
        ended: TurnOutcome | None = None
        try:
            ended = await provider_task
        except asyncio.CancelledError:
            if not provider_task.cancelled():
                provider_task.cancel()  # this task itself is being cancelled: stop the provider too
                raise
            cancelled = True
        except ProviderError as exc:
            outcome = exc
        except Exception:
            log.exception("turn failed in session %s", self.host.id)
            outcome = ProviderError(500, "The assistant failed unexpectedly")
        await self.host.end_turn(self._end(outcome, cancelled, ended.truncated if ended is not None else None))

    def _end(self, failure: ProviderError | None, cancelled: bool, truncated: str | None) -> TurnEnd:
        total = time.perf_counter() - self._started
        self.metrics.turn_latency.labels(self.provider.name).observe(total)
        debug = {
            "provider": self.provider.name,
            "total_ms": round(total * 1000, 3),
            "first_tree_update_ms": None if self._first_update is None else round(self._first_update * 1000, 3),
            "tree_updates": self._updates,
            **self._debug,
        }
        meta: dict[str, Any] | None = None
        if cancelled:
            meta = {"cancelled": True}
        elif failure is not None:
            meta = {"error": {"code": failure.code, "message": failure.message}}
        elif truncated is not None:
            meta = {"truncated": truncated}
        if self._reasoning.steps:
            meta = {**(meta or {}), "reasoning": self._reasoning.steps}
        return TurnEnd(
            self.frame_id,
            "".join(self._parts),
            meta,
            debug,
            failure,
            cancelled,
            truncated if failure is None and not cancelled else None,
        )


class TurnRunner:
    """The one owner of a session's turns: it starts one at a time, cancels it, and knows when it
    has ended. The session calls it under its lock (start) or outside it (cancel, stop: a
    cancelled turn needs the lock to send its last frames)."""

    def __init__(self) -> None:
        self.current: Turn | None = None
        # The running turn's change set, opened by its first change (all its changes undo as one).
        self.change_set: ChangeSet | None = None
        self.task: asyncio.Task[None] | None = None  # the running (or last) turn's task

    @property
    def running(self) -> bool:
        return self.current is not None

    def start(self, make: Callable[[], Turn]) -> None:
        if self.current is not None:
            raise CanopyError(409, "A turn is already running in this session")
        turn = self.current = make()
        self.change_set = None
        provider_task = turn.start_provider()
        self.task = asyncio.create_task(self._run(turn, provider_task), name=f"turn-{turn.host.id}")

    async def _run(self, turn: Turn, provider_task: asyncio.Task[TurnOutcome | None]) -> None:
        try:
            await turn.run(provider_task)
        finally:
            self.current = None
            self.change_set = None

    async def cancel(self) -> None:
        """Stops the running turn's provider and gives the turn a moment to send its last frames."""
        turn, task = self.current, self.task
        if turn is None or task is None or not turn.cancel():
            raise CanopyError(409, "No turn is running")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), CANCEL_GRACE_SECONDS)

    async def stop(self) -> None:
        """Cancels the running turn, if any, and waits for it to end (closing a session, shutdown)."""
        turn, task = self.current, self.task
        if turn is not None and task is not None:
            turn.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, STOP_GRACE_SECONDS)
