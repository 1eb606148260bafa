"""An assistant turn: the provider's task plus the context it streams through.

The provider runs in its own task so `cancel` can stop it while this turn still
finishes properly: `debug`, then exactly one final `assistant_response` (or one
`error`), committed to the database before it is broadcast.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from canopy.assistant.base import ChatTurn, Provider, ProviderError, TurnOutcome
from canopy.realtime.errors import SessionError, StorageError
from canopy.tree import Tree

if TYPE_CHECKING:
    from canopy.realtime.session import ChangeSet, LiveSession

log = logging.getLogger("canopy.turn")
CANCEL_GRACE_SECONDS = 1.0


class Turn:
    """Implements `canopy.assistant.base.TurnContext` for one prompt."""

    def __init__(self, session: LiveSession, provider: Provider, prompt: str, frame_id: str | None,
                 history: list[ChatTurn]) -> None:
        self.session = session
        self.provider = provider
        self._prompt = prompt
        self._history = history
        self.frame_id = frame_id
        self.change_set: ChangeSet | None = None
        self._parts: list[str] = []
        self._debug: dict[str, Any] = {}
        self._started = time.perf_counter()
        self._first_update: float | None = None
        self._updates = 0
        self._provider_task: asyncio.Task[TurnOutcome | None] | None = None
        self.task: asyncio.Task[None] | None = None

    # --- TurnContext ------------------------------------------------------------------

    @property
    def prompt(self) -> str:
        return self._prompt

    @property
    def tree(self) -> Tree:
        return self.session.tree

    @property
    def history(self) -> list[ChatTurn]:
        return self._history

    async def reasoning(self, text: str) -> None:
        async with self.session.lock:
            await self.session.publish("reasoning", {"text": text, "steps": [text]}, self.frame_id)

    async def text(self, chunk: str) -> None:
        if not chunk:
            return
        self._parts.append(chunk)
        async with self.session.lock:
            await self.session.publish("assistant_response", {"text": chunk, "chunk": True}, self.frame_id)

    async def apply(self, delta: dict[str, Any]) -> dict[str, Any]:
        change = await self.session.apply_turn_delta(self, delta)
        self._updates += 1
        if self._first_update is None:
            self._first_update = time.perf_counter() - self._started
            self.session.metrics.first_update_latency.labels(self.provider.name).observe(self._first_update)
        return change.delta

    async def undo(self) -> bool:
        try:
            await self.session.undo(self.frame_id, from_turn=True)
        except SessionError:
            return False
        return True

    async def debug(self, info: dict[str, Any]) -> None:
        self._debug.update(info)

    # --- running ----------------------------------------------------------------------

    def start(self) -> None:
        # The provider task exists from here on, so a cancel read right behind the prompt (before the
        # turn task has run at all) still finds it and stops the turn.
        self._provider_task = asyncio.create_task(self.provider.run_turn(self), name=f"provider-{self.session.id}")
        self.task = asyncio.create_task(self._run(self._provider_task), name=f"turn-{self.session.id}")

    def cancel(self) -> bool:
        if self._provider_task is None or self._provider_task.done():
            return False
        self._provider_task.cancel()
        return True

    async def _run(self, provider_task: asyncio.Task[TurnOutcome | None]) -> None:
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
            log.exception("turn failed in session %s", self.session.id)
            outcome = ProviderError(500, "The assistant failed unexpectedly")
        try:
            await self._finish(outcome, cancelled, ended.truncated if ended is not None else None)
        finally:
            self.session.turn = None

    async def _finish(self, failure: ProviderError | None, cancelled: bool, truncated: str | None = None) -> None:
        total = time.perf_counter() - self._started
        self.session.metrics.turn_latency.labels(self.provider.name).observe(total)
        text = "".join(self._parts)
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
        session = self.session
        async with session.lock:
            try:
                await self._publish_end(text, meta, debug, failure, cancelled)
            except StorageError:
                # Not even the error could be numbered: the tabs must not miss the turn's end, so they
                # are closed and resume (a snapshot and the stored history) once storage is back.
                log.error("could not publish the end of a turn in session %s; closing its tabs", session.id)
                for peer in tuple(session.peers):
                    peer.close(1011, "could not finish the turn; reconnect")

    async def _publish_end(self, text: str, meta: dict[str, Any] | None, debug: dict[str, Any],
                           failure: ProviderError | None, cancelled: bool) -> None:
        """Stores the answer first (its commit also reserves seq numbers), then sends debug and the end."""
        session = self.session
        try:
            await session.record_message("assistant", text, meta)
        except StorageError:
            failure = failure or ProviderError(500, "The answer could not be stored")
        await session.publish("debug", debug, self.frame_id)
        if failure is not None:
            await session.publish("error", {}, self.frame_id, error=(failure.code, failure.message))
        else:
            final: dict[str, Any] = {"text": text, "chunk": False}
            if cancelled:
                final["cancelled"] = True
            if meta and "truncated" in meta:
                final["truncated"] = meta["truncated"]
            await session.publish("assistant_response", final, self.frame_id)
