"""The round loop: one turn of the OpenAI-compatible provider as a conversation of rounds.

Each round is one streamed request (:mod:`.http`) read by a :class:`~.stream.RoundStream`; the
tool calls it made are applied through ``ctx`` as they complete, their results go back to the
model as ``tool`` messages and the next round starts, until a round makes no tool call or
``max_rounds`` is reached. Invalid tool arguments are not failures: the model is told and may
correct itself.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from canopy.assistant.base import TurnContext, TurnOutcome
from canopy.assistant.context import build_messages
from canopy.assistant.openai.http import CompletionsClient
from canopy.assistant.openai.stream import RoundStream, ToolCall
from canopy.assistant.tools import TOOLS, ToolResult, run_tool

log = logging.getLogger("canopy.assistant.openai")


@dataclass(frozen=True, slots=True)
class LoopSettings:
    model: str
    max_rounds: int
    context_chars: int
    history_messages: int


class RoundLoop:
    """The provider's state across one turn's rounds: messages so far, usage, counters and timings."""

    def __init__(self, client: CompletionsClient, settings: LoopSettings, ctx: TurnContext) -> None:
        self.client = client
        self.settings = settings
        self.ctx = ctx
        self.started = time.monotonic()
        self.first_token: float | None = None
        self.rounds = 0
        self.retries = 0
        self.tool_calls = 0
        self.changes = 0
        self.last_tool_error: str | None = None
        self.usage: dict[str, int] = {}
        self.finish_reason: str | None = None
        self.messages: list[dict[str, Any]] = []

    def debug_info(self, error: int | None = None) -> dict[str, Any]:
        info: dict[str, Any] = {
            "provider": "openai",
            "model": self.settings.model,
            "rounds": self.rounds,
            "tool_calls": self.tool_calls,
            "changes": self.changes,
            "retries": self.retries,
            "finish_reason": self.finish_reason,
            "ttft_ms": None if self.first_token is None else round((self.first_token - self.started) * 1000, 1),
            "latency_ms": round((time.monotonic() - self.started) * 1000, 1),
        }
        if self.usage:
            info["usage"] = dict(self.usage)
        if error is not None:
            info["error"] = error
        return info

    async def run(self) -> TurnOutcome:
        ctx = self.ctx
        self.messages = build_messages(
            ctx.tree,
            ctx.prompt,
            list(ctx.history),
            context_chars=self.settings.context_chars,
            history_messages_limit=self.settings.history_messages,
        )
        while True:
            rnd = await self._round()
            if not rnd.calls:
                break
            self.messages.append(_assistant_message(rnd))
            for call in rnd.calls:
                assert call.result is not None
                self.messages.append({"role": "tool", "tool_call_id": call.id, "content": call.result.content})
            if self.rounds >= self.settings.max_rounds:
                log.info("llm turn stopped after %d rounds with tool calls pending", self.rounds)
                await ctx.text(f"\n\n({self._stopped_note()})")
                break
        cut = _cut_reason(self.finish_reason)
        if cut is not None:
            log.info("llm answer cut: finish_reason=%s", cut)
        return TurnOutcome(truncated=cut)

    async def _round(self) -> RoundStream:
        self.rounds += 1
        rnd = RoundStream(self.ctx, run_call=self._run_call, on_token=self._token, scrub=self.client.scrub)
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": self.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": TOOLS,
        }
        await self.client.send(body, rnd, round_no=self.rounds, on_retry=self._retried)
        self._add_usage(rnd.usage)
        self.finish_reason = rnd.finish_reason
        return rnd

    def _stopped_note(self) -> str:
        """What the rounds achieved, for the note shown when the round limit stops the model."""
        n, calls = self.rounds, self.tool_calls
        if self.changes:
            return (
                f"Stopped after {n} round{_s(n)} of changes: {self.changes} change{_s(self.changes)} made, "
                "but the assistant had not finished."
            )
        why = f"; the last error: {self.last_tool_error}" if self.last_tool_error else ""
        return (
            f"Stopped after {n} round{_s(n)} without changing the tree: none of the assistant's "
            f"{calls} tool call{_s(calls)} could be applied{why}."
        )

    def _retried(self) -> None:
        self.retries += 1

    def _token(self) -> None:
        if self.first_token is None:
            self.first_token = time.monotonic()

    async def _run_call(self, call: ToolCall) -> None:
        if not call.id:
            call.id = f"call_{self.rounds}_{call.slot}"
        self.tool_calls += 1
        arguments: str | dict[str, Any] = call.parsed if call.parsed is not None else call.arguments
        if not call.name:
            call.result = ToolResult(False, json.dumps({"ok": False, "error": "the tool call has no function name"}), 0)
        else:
            call.result = await run_tool(call.name, arguments, self.ctx)
        self.changes += call.result.applied
        if not call.result.ok:
            self.last_tool_error = _error_text(call.result)
        log.info("llm tool call %s ok=%s changes=%d", call.name or "?", call.result.ok, call.result.applied)

    def _add_usage(self, usage: dict[str, Any] | None) -> None:
        if not usage:
            return
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            v = usage.get(key)
            if isinstance(v, int) and not isinstance(v, bool):
                self.usage[key] = self.usage.get(key, 0) + v
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict):
            v = details.get("reasoning_tokens")
            if isinstance(v, int) and not isinstance(v, bool):
                self.usage["reasoning_tokens"] = self.usage.get("reasoning_tokens", 0) + v


def _assistant_message(rnd: RoundStream) -> dict[str, Any]:
    content = "".join(rnd.content)
    return {
        "role": "assistant",
        "content": content or None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.wire_arguments()}}
            for c in rnd.calls
        ],
    }


def _error_text(result: ToolResult) -> str:
    try:
        error = json.loads(result.content).get("error")
    except (ValueError, AttributeError):
        return "unknown"
    text = str(error or "unknown")
    return text if len(text) <= 200 else text[:199] + "…"


def _cut_reason(finish_reason: str | None) -> Literal["length", "content_filter"] | None:
    """The finish reasons that mean the answer was cut rather than finished."""
    if finish_reason == "length":
        return "length"
    if finish_reason == "content_filter":
        return "content_filter"
    return None


def _s(n: int) -> str:
    return "" if n == 1 else "s"
