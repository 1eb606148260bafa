"""One round's streamed answer, accumulated: text, reasoning and tool calls as they arrive.

Text pieces go out through ``ctx.text`` as they arrive, reasoning through ``ctx.reasoning`` (in
lines or small batches), and each tool call is handed to ``run_call`` the moment its arguments
are complete (they form a whole JSON object, or the choice finished), in the order of the calls'
indexes, while the rest of the response is still streaming.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from canopy.assistant.base import ProviderError, TurnContext
from canopy.assistant.openai.http import describe_error
from canopy.assistant.sse import SSEError, SSEParser
from canopy.assistant.tools import ToolResult

log = logging.getLogger("canopy.assistant.openai")

REASONING_FLUSH_CHARS: Final = 200
REASONING_FLUSH_SECONDS: Final = 0.25


@dataclass(slots=True)
class ToolCall:
    """One tool call being streamed: pieces accumulate until its arguments are complete."""

    slot: int
    index: int | None
    id: str = ""
    name: str = ""
    parts: list[str] = field(default_factory=list)
    parsed: dict[str, Any] | None = None  # set once the arguments form a whole JSON object
    result: ToolResult | None = None

    @property
    def arguments(self) -> str:
        """The arguments as the model sent them (possibly not JSON at all)."""
        return "".join(self.parts)

    def wire_arguments(self) -> str:
        """The arguments to echo back in the next request: always a JSON object.

        Strict servers (LiteLLM translating to Anthropic, for one) reject a request whose assistant
        message carries arguments that are not JSON, so a malformed call is echoed as ``{}``; the
        raw text reaches the model in the tool error instead.
        """
        if self.parsed is not None:
            return json.dumps(self.parsed)
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return "{}"
        return json.dumps(value) if isinstance(value, dict) else "{}"


class RoundStream:
    """Reads one round's response (SSE, or a whole JSON completion) into content and tool calls."""

    def __init__(
        self,
        ctx: TurnContext,
        *,
        run_call: Callable[[ToolCall], Awaitable[None]],
        on_token: Callable[[], None],
        scrub: Callable[[str], str],
    ) -> None:
        self.ctx = ctx
        self._run_call = run_call
        self._on_token = on_token
        self._scrub = scrub
        self.content: list[str] = []
        self.calls: list[ToolCall] = []
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self._next_apply = 0
        self._reasoning: list[str] = []
        self._reasoning_since = 0.0

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    async def read(self, response: httpx.Response) -> None:
        ctype = response.headers.get("content-type", "")
        if "application/json" in ctype:
            await self._read_json(response)
            return
        parser = SSEParser()
        try:
            async for chunk in response.aiter_bytes():
                for event in parser.feed(chunk):
                    if await self._event(event.data):
                        return
            for event in parser.close():
                if await self._event(event.data):
                    return
        except SSEError as exc:
            raise ProviderError(502, "the LLM stream is malformed", str(exc)) from None
        if self.finish_reason is None:
            raise ProviderError(502, "the LLM stream ended before the answer was finished")
        await self._finish()  # a stream that finished but forgot [DONE]

    async def _read_json(self, response: httpx.Response) -> None:
        """A server that ignored ``stream: true`` and sent the whole completion at once."""
        raw = await response.aread()
        try:
            data = json.loads(raw)
        except ValueError:
            raise ProviderError(502, "the LLM provider sent malformed JSON") from None
        if not isinstance(data, dict):
            raise ProviderError(502, "the LLM provider sent an unexpected answer")
        choices = data.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                    msg = dict(choice["message"])
                    calls = msg.get("tool_calls")
                    if isinstance(calls, list):
                        msg["tool_calls"] = [{**c, "index": i} for i, c in enumerate(calls) if isinstance(c, dict)]
                    choice["delta"] = msg
        await self._chunk(data)
        if self.finish_reason is None:
            self.finish_reason = "stop"
        await self._finish()

    async def _event(self, data: str) -> bool:
        """Handle one SSE data payload; True once the stream is over."""
        text = data.strip()
        if text == "[DONE]":
            await self._finish()
            return True
        if not text:
            return False
        try:
            chunk = json.loads(text)
        except ValueError:
            raise ProviderError(502, "the LLM stream contained malformed JSON") from None
        if not isinstance(chunk, dict):
            raise ProviderError(502, "the LLM stream contained an unexpected event")
        await self._chunk(chunk)
        return False

    async def _chunk(self, chunk: dict[str, Any]) -> None:
        error = chunk.get("error")
        if error:
            raise ProviderError(502, "the assistant's provider reported an error", self._scrub(describe_error(error)))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage  # the last report of the round wins (some servers repeat it)
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            if "choices" in chunk and choices is not None:
                raise ProviderError(502, "the LLM stream contained an unexpected event")
            return
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                await self._delta(delta)
            finish = choice.get("finish_reason")
            if isinstance(finish, str) and finish:
                self.finish_reason = finish
                await self._flush_reasoning()
                await self._complete_calls(final=True)

    async def _delta(self, delta: dict[str, Any]) -> None:
        for key in ("reasoning_content", "reasoning"):
            piece = delta.get(key)
            if isinstance(piece, str) and piece:
                self._on_token()
                if not self._reasoning:
                    self._reasoning_since = time.monotonic()
                self._reasoning.append(piece)
                break
        if self._reasoning and (
            "\n" in self._reasoning[-1]
            or sum(map(len, self._reasoning)) >= REASONING_FLUSH_CHARS
            or time.monotonic() - self._reasoning_since >= REASONING_FLUSH_SECONDS
        ):
            await self._flush_reasoning()
        content = delta.get("content")
        if not (isinstance(content, str) and content):
            content = delta.get("refusal")  # OpenAI's refusal text, shown like an answer
        if isinstance(content, str) and content:
            self._on_token()
            await self._flush_reasoning()
            self.content.append(content)
            await self.ctx.text(content)
        calls = delta.get("tool_calls")
        if isinstance(calls, list) and calls:
            self._on_token()
            await self._flush_reasoning()
            for piece in calls:
                if isinstance(piece, dict):
                    self._call_piece(piece)
            await self._complete_calls(final=False)

    async def _flush_reasoning(self) -> None:
        if self._reasoning:
            text = "".join(self._reasoning)
            self._reasoning.clear()
            await self.ctx.reasoning(text)

    def _call_for(self, index: int | None, call_id: str) -> ToolCall:
        """The latest call with this index, unless the piece plainly starts another call
        (some servers number every call 0, or send no index at all)."""
        call: ToolCall | None = None
        for c in reversed(self.calls):
            if c.index == index:
                call = c
                break
        if call is not None and call_id and call.id and call_id != call.id:
            call = None
        if call is not None and index is None and call_id and not call.id:
            call = None
        if call is None:
            call = ToolCall(slot=len(self.calls), index=index)
            self.calls.append(call)
        return call

    def _call_piece(self, piece: dict[str, Any]) -> None:
        index = piece.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = None
        raw_id = piece.get("id")
        call_id = raw_id if isinstance(raw_id, str) else ""
        call = self._call_for(index, call_id)
        if call_id and not call.id:
            call.id = call_id
        fn = piece.get("function")
        if not isinstance(fn, dict):
            return
        name = fn.get("name")
        if isinstance(name, str) and name and not call.name:
            call.name = name
        args = fn.get("arguments")
        if call.parsed is not None or call.result is not None:
            if isinstance(args, str) and args.strip():
                log.warning("llm sent more arguments for a tool call that was already complete; ignored")
            return
        if isinstance(args, dict):
            call.parts = [json.dumps(args)]
            call.parsed = args
        elif isinstance(args, str) and args:
            call.parts.append(args)
            if args.rstrip().endswith("}"):
                try:
                    parsed = json.loads(call.arguments)
                except ValueError:
                    return
                if isinstance(parsed, dict):
                    call.parsed = parsed

    async def _complete_calls(self, *, final: bool) -> None:
        """Hand over, in index order, every call whose arguments are complete (all of them when ``final``)."""
        while self._next_apply < len(self.calls):
            call = self.calls[self._next_apply]
            if call.parsed is None and not final:
                return
            self._next_apply += 1
            await self._run_call(call)

    async def _finish(self) -> None:
        await self._flush_reasoning()
        await self._complete_calls(final=True)
