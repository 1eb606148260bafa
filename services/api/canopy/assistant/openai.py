"""The provider for any OpenAI-compatible chat-completions endpoint (``LLM_PROVIDER=openai``).

One turn is a loop of rounds. Each round is one streamed ``POST /chat/completions``:
text pieces go out through ``ctx.text`` as they arrive, reasoning through
``ctx.reasoning``, and each tool call is applied through ``ctx.apply`` the moment its
arguments are complete (they form a whole JSON object, or the choice finished), in
the order of the calls' indexes, while the rest of the response is still streaming.
The results go back to the model as ``tool`` messages and the next round starts,
until a round makes no tool call or ``llm_max_rounds`` is reached.

Failures become :class:`ProviderError`: 502 for an unreachable server, refused
credentials, an error status that persists after retries (429 and 5xx are retried
twice, honouring ``Retry-After``), malformed or cut streams; 504 for timeouts.
Invalid tool arguments are not failures: the model is told and may correct itself.

The API key is only ever put into the ``Authorization`` header of the request; it
is not logged, not in any message, not in ``repr``; upstream error texts are
scrubbed of it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from canopy.assistant.base import ProviderError, TurnContext
from canopy.assistant.context import build_messages
from canopy.assistant.sse import SSEError, SSEParser
from canopy.assistant.tools import TOOLS, ToolResult, run_tool
from canopy.config import Settings

log = logging.getLogger("canopy.assistant.openai")

MAX_RETRIES: Final = 2
RETRY_AFTER_CAP: Final = 10.0
OVERALL_TIMEOUT_FACTOR: Final = 5.0  # one request may last this many times llm_timeout_seconds
MAX_ERROR_BODY: Final = 64 * 1024
REASONING_FLUSH_CHARS: Final = 200
REASONING_FLUSH_SECONDS: Final = 0.25


@dataclass(slots=True)
class _Call:
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
        return "".join(self.parts)


@dataclass(slots=True)
class _Round:
    content: list[str] = field(default_factory=list)
    calls: list[_Call] = field(default_factory=list)
    next_apply: int = 0
    finish_reason: str | None = None
    done: bool = False  # [DONE] seen
    usage: dict[str, Any] | None = None
    reasoning: list[str] = field(default_factory=list)
    reasoning_since: float = 0.0


class OpenAIProvider:
    """Streams turns from an OpenAI-compatible server over the app's shared ``httpx.AsyncClient``."""

    name = "openai"

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        *,
        max_retries: int = MAX_RETRIES,
        retry_backoff: float = 0.5,
        retry_after_cap: float = RETRY_AFTER_CAP,
        overall_timeout: float | None = None,
    ) -> None:
        self._client = client
        self._url = settings.llm_base_url.rstrip("/") + "/chat/completions"
        parsed = httpx.URL(self._url)
        self._where = f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")
        self._key = settings.llm_api_key
        self.model = settings.llm_model
        self._timeout = settings.llm_timeout_seconds
        self._overall = overall_timeout if overall_timeout is not None else self._timeout * OVERALL_TIMEOUT_FACTOR
        self._max_rounds = settings.llm_max_rounds
        self._context_chars = settings.llm_context_chars
        self._history = settings.llm_history_messages
        self._max_retries = max_retries
        self._backoff = retry_backoff
        self._retry_after_cap = retry_after_cap

    def __repr__(self) -> str:
        return f"OpenAIProvider(url={self._where!r}, model={self.model!r})"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        key = self._key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _scrub(self, text: str) -> str:
        key = self._key.get_secret_value()
        if key and len(key) >= 4:
            text = text.replace(key, "[redacted]")
        return text

    async def run_turn(self, ctx: TurnContext) -> None:
        turn = _Turn(self, ctx)
        try:
            await turn.run()
        except ProviderError as exc:
            log.warning("llm turn failed: %s %s", exc.code, exc.message)
            await ctx.debug(turn.debug_info(error=exc.code))
            raise
        await ctx.debug(turn.debug_info())

    # ------------------------------------------------------------------ one request, with retries

    async def _request(self, body: dict[str, Any], turn: _Turn, rnd: _Round) -> None:
        attempt = 0
        while True:
            delay = await self._attempt(body, turn, rnd, attempt)
            if delay is None:
                return
            attempt += 1
            turn.retries += 1
            await asyncio.sleep(delay)

    async def _attempt(self, body: dict[str, Any], turn: _Turn, rnd: _Round, attempt: int) -> float | None:
        """One HTTP request; returns a delay before retrying, or None when the round is done."""
        timeout = httpx.Timeout(self._timeout)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._overall):
                async with self._client.stream(
                    "POST", self._url, json=body, headers=self._headers(), timeout=timeout
                ) as response:
                    status = response.status_code
                    log.info("llm request round=%d attempt=%d status=%d model=%s",
                             turn.rounds, attempt + 1, status, self.model)
                    if status != 200:
                        return await self._failed_status(response, attempt)
                    await turn.consume(response, rnd)
        except TimeoutError:
            raise ProviderError(
                504, f"the LLM provider did not finish within {self._overall:g} s"
            ) from None
        except httpx.ConnectTimeout:
            raise ProviderError(504, f"timed out connecting to the LLM provider at {self._where}") from None
        except httpx.TimeoutException:
            waited = time.monotonic() - started
            raise ProviderError(
                504, f"the LLM provider sent nothing for {self._timeout:g} s (after {waited:.1f} s)"
            ) from None
        except httpx.ConnectError as exc:
            raise ProviderError(
                502, f"cannot connect to the LLM provider at {self._where} ({self._scrub(str(exc)) or 'refused'})"
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            if rnd.finish_reason is not None:
                return None  # everything that matters arrived; only the end of the body was lost
            raise ProviderError(
                502, f"the LLM stream was cut before it finished ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(502, f"LLM request failed: {type(exc).__name__}") from None
        return None

    async def _failed_status(self, response: httpx.Response, attempt: int) -> float | None:
        status = response.status_code
        message = self._scrub(await _error_message(response))
        if status in (401, 403):
            raise ProviderError(
                502, f"the LLM provider rejected the credentials (HTTP {status}); check LLM_API_KEY: {message}"
            )
        retryable = status == 429 or status >= 500
        if retryable and attempt < self._max_retries:
            delay = _retry_after(response.headers.get("retry-after"))
            if delay is None:
                delay = self._backoff * (2**attempt)
            delay = min(max(delay, 0.0), self._retry_after_cap)
            log.warning("llm request got HTTP %d; retry %d of %d in %.2f s",
                        status, attempt + 1, self._max_retries, delay)
            return delay
        if retryable:
            what = "is rate limiting" if status == 429 else "failed"
            raise ProviderError(
                502, f"the LLM provider {what} (HTTP {status}) after {attempt} retries: {message}"
            )
        raise ProviderError(502, f"the LLM provider refused the request (HTTP {status}): {message}")


class _Turn:
    """The state of one turn: messages so far, usage, timings, and the stream handling."""

    def __init__(self, provider: OpenAIProvider, ctx: TurnContext) -> None:
        self.p = provider
        self.ctx = ctx
        self.started = time.monotonic()
        self.first_token: float | None = None
        self.rounds = 0
        self.retries = 0
        self.tool_calls = 0
        self.changes = 0
        self.usage: dict[str, int] = {}
        self.finish_reason: str | None = None
        self.messages: list[dict[str, Any]] = []

    def debug_info(self, error: int | None = None) -> dict[str, Any]:
        info: dict[str, Any] = {
            "provider": "openai",
            "model": self.p.model,
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

    async def run(self) -> None:
        ctx = self.ctx
        self.messages = build_messages(
            ctx.tree, ctx.prompt, list(ctx.history),
            context_chars=self.p._context_chars, history_messages_limit=self.p._history,
        )
        while True:
            self.rounds += 1
            rnd = _Round()
            body: dict[str, Any] = {
                "model": self.p.model,
                "messages": self.messages,
                "stream": True,
                "stream_options": {"include_usage": True},
                "tools": TOOLS,
            }
            await self.p._request(body, self, rnd)
            self._add_usage(rnd.usage)
            self.finish_reason = rnd.finish_reason
            if not rnd.calls:
                return
            self.messages.append(_assistant_message(rnd, self.rounds))
            for call in rnd.calls:
                assert call.result is not None
                self.messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": call.result.content}
                )
            if self.rounds >= self.p._max_rounds:
                log.info("llm turn stopped after %d rounds with tool calls pending", self.rounds)
                await ctx.text(f"\n\n(Stopped after {self.rounds} rounds of changes.)")
                return

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

    # ------------------------------------------------------------------ the stream

    async def consume(self, response: httpx.Response, rnd: _Round) -> None:
        ctype = response.headers.get("content-type", "")
        if "application/json" in ctype:
            await self._consume_json(response, rnd)
            return
        parser = SSEParser()
        try:
            async for chunk in response.aiter_bytes():
                for event in parser.feed(chunk):
                    if await self._event(event.data, rnd):
                        return
            for event in parser.close():
                if await self._event(event.data, rnd):
                    return
        except SSEError as exc:
            raise ProviderError(502, f"the LLM stream is malformed: {exc}") from None
        if rnd.finish_reason is None:
            raise ProviderError(502, "the LLM stream ended before the answer was finished")
        await self._finish(rnd)  # a stream that finished but forgot [DONE]

    async def _consume_json(self, response: httpx.Response, rnd: _Round) -> None:
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
                        msg["tool_calls"] = [
                            {**c, "index": i} for i, c in enumerate(calls) if isinstance(c, dict)
                        ]
                    choice["delta"] = msg
        await self._chunk(data, rnd)
        if rnd.finish_reason is None:
            rnd.finish_reason = "stop"
        await self._finish(rnd)

    async def _event(self, data: str, rnd: _Round) -> bool:
        """Handle one SSE data payload; True once the stream is over."""
        text = data.strip()
        if text == "[DONE]":
            rnd.done = True
            await self._finish(rnd)
            return True
        if not text:
            return False
        try:
            chunk = json.loads(text)
        except ValueError:
            raise ProviderError(502, "the LLM stream contained malformed JSON") from None
        if not isinstance(chunk, dict):
            raise ProviderError(502, "the LLM stream contained an unexpected event")
        await self._chunk(chunk, rnd)
        return False

    async def _chunk(self, chunk: dict[str, Any], rnd: _Round) -> None:
        error = chunk.get("error")
        if error:
            raise ProviderError(502, f"the LLM provider reported an error: {self.p._scrub(_describe(error))}")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            rnd.usage = usage  # the last report of the round wins (some servers repeat it)
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
                await self._delta(delta, rnd)
            finish = choice.get("finish_reason")
            if isinstance(finish, str) and finish:
                rnd.finish_reason = finish
                await self._flush_reasoning(rnd)
                await self._complete_calls(rnd, final=True)

    def _token(self) -> None:
        if self.first_token is None:
            self.first_token = time.monotonic()

    async def _delta(self, delta: dict[str, Any], rnd: _Round) -> None:
        for key in ("reasoning_content", "reasoning"):
            piece = delta.get(key)
            if isinstance(piece, str) and piece:
                self._token()
                if not rnd.reasoning:
                    rnd.reasoning_since = time.monotonic()
                rnd.reasoning.append(piece)
                break
        if rnd.reasoning and (
            "\n" in rnd.reasoning[-1]
            or sum(map(len, rnd.reasoning)) >= REASONING_FLUSH_CHARS
            or time.monotonic() - rnd.reasoning_since >= REASONING_FLUSH_SECONDS
        ):
            await self._flush_reasoning(rnd)
        content = delta.get("content")
        if not (isinstance(content, str) and content):
            content = delta.get("refusal")  # OpenAI's refusal text, shown like an answer
        if isinstance(content, str) and content:
            self._token()
            await self._flush_reasoning(rnd)
            rnd.content.append(content)
            await self.ctx.text(content)
        calls = delta.get("tool_calls")
        if isinstance(calls, list) and calls:
            self._token()
            await self._flush_reasoning(rnd)
            for piece in calls:
                if isinstance(piece, dict):
                    self._call_piece(piece, rnd)
            await self._complete_calls(rnd, final=False)

    async def _flush_reasoning(self, rnd: _Round) -> None:
        if rnd.reasoning:
            text = "".join(rnd.reasoning)
            rnd.reasoning.clear()
            await self.ctx.reasoning(text)

    def _call_piece(self, piece: dict[str, Any], rnd: _Round) -> None:
        index = piece.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = None
        call_id = piece.get("id") if isinstance(piece.get("id"), str) else ""
        call: _Call | None = None
        # the latest call with this index, unless the piece plainly starts another call
        # (some servers number every call 0, or send no index at all)
        for c in reversed(rnd.calls):
            if c.index == index:
                call = c
                break
        if call is not None and call_id and call.id and call_id != call.id:
            call = None
        if call is not None and index is None and call_id and not call.id:
            call = None
        if call is None:
            call = _Call(slot=len(rnd.calls), index=index)
            rnd.calls.append(call)
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

    async def _complete_calls(self, rnd: _Round, *, final: bool) -> None:
        """Apply, in index order, every call whose arguments are complete (all of them when ``final``)."""
        while rnd.next_apply < len(rnd.calls):
            call = rnd.calls[rnd.next_apply]
            if call.parsed is None and not final:
                return
            rnd.next_apply += 1
            if not call.id:
                call.id = f"call_{self.rounds}_{call.slot}"
            self.tool_calls += 1
            arguments: str | dict[str, Any] = call.parsed if call.parsed is not None else call.arguments
            if not call.name:
                call.result = ToolResult(
                    False, json.dumps({"ok": False, "error": "the tool call has no function name"}), 0
                )
            else:
                call.result = await run_tool(call.name, arguments, self.ctx)
            self.changes += call.result.applied
            log.info("llm tool call %s ok=%s changes=%d", call.name or "?", call.result.ok, call.result.applied)

    async def _finish(self, rnd: _Round) -> None:
        await self._flush_reasoning(rnd)
        await self._complete_calls(rnd, final=True)


def _assistant_message(rnd: _Round, round_no: int) -> dict[str, Any]:
    content = "".join(rnd.content)
    return {
        "role": "assistant",
        "content": content or None,
        "tool_calls": [
            {
                "id": c.id or f"call_{round_no}_{c.slot}",
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": json.dumps(c.parsed) if c.parsed is not None else c.arguments,
                },
            }
            for c in rnd.calls
        ],
    }


def _describe(error: Any) -> str:
    if isinstance(error, dict):
        msg = error.get("message") or error.get("type") or error.get("code") or "unknown error"
        return str(msg)[:300]
    return str(error)[:300]


async def _error_message(response: httpx.Response) -> str:
    raw = b""
    async for chunk in response.aiter_bytes():
        raw += chunk
        if len(raw) >= MAX_ERROR_BODY:
            break
    text = raw[:MAX_ERROR_BODY].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300] or response.reason_phrase or "no details"
    if isinstance(data, dict):
        if "error" in data:
            return _describe(data["error"])
        if "message" in data:
            return str(data["message"])[:300]
        if "detail" in data:
            return str(data["detail"])[:300]
    return " ".join(text.split())[:300]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()
