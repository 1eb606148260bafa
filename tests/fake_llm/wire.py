"""The chat-completions wire format as the fake server speaks and checks it.

- :class:`Out` writes one HTTP response by hand (chunked, one chunk per TCP write, optional CRLF SSE);
- ``chunk``/``text_events``/``tool_call_chunks``…: the JSON chunks of a streamed completion;
- :func:`validate`: what a real server checks in a request before it starts streaming, as strictly
  as the strictest server Canopy meets: LiteLLM's Anthropic translation rejects (HTTP 400) a round
  whose assistant ``tool_calls[].function.arguments`` is not a JSON object, so this does too.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any


class BadRequest(Exception):
    """The request does not look like what the real API accepts: answered with 400."""


@dataclass
class Record:
    n: int
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    model: str = ""
    scenario: str = ""
    tag: str = ""
    status: int = 0
    finished: bool = False
    client_closed: bool = False
    keepalives: int = 0  # SSE comment lines (": keep-alive") written to the client
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    gates: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "model": self.model,
            "scenario": self.scenario,
            "tag": self.tag,
            "status": self.status,
            "finished": self.finished,
            "client_closed": self.client_closed,
            "keepalives": self.keepalives,
            "gates": self.gates,
        }


class Out:
    """Writes one response. In chunked mode every ``write`` is one chunk and one TCP write."""

    def __init__(self, writer: asyncio.StreamWriter, record: Record) -> None:
        self.w = writer
        self.record = record
        self.chunked = True
        self.crlf = False

    async def _raw(self, data: bytes) -> None:
        self.w.write(data)
        await self.w.drain()

    async def head(
        self,
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        chunked: bool = True,
        content_type: str = "text/event-stream; charset=utf-8",
    ) -> None:
        self.record.status = status
        self.chunked = chunked
        reason = {
            200: "OK",
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            408: "Request Timeout",
            409: "Conflict",
            429: "Too Many Requests",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }.get(status, "X")
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Content-Type: {content_type}",
            "Cache-Control: no-cache",
            "Connection: close",
        ]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        await self._raw(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def write(self, data: bytes) -> None:
        if not data:
            return
        if self.chunked:
            await self._raw(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        else:
            await self._raw(data)

    async def end(self) -> None:
        if self.chunked:
            await self._raw(b"0\r\n\r\n")
        self.record.finished = True

    def sse(self, payload: Any) -> bytes:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        nl = "\r\n" if self.crlf else "\n"
        return f"data: {text}{nl}{nl}".encode()

    async def event(self, payload: Any) -> None:
        await self.write(self.sse(payload))

    async def keepalive(self, text: str = "keep-alive") -> None:
        """One SSE comment (ignored by clients, but it is traffic), counted once it is on the wire."""
        await self.write(f": {text}\n\n".encode())
        self.record.keepalives += 1

    async def json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        await self.head(
            status,
            {**(headers or {}), "Content-Length": str(len(body))},
            chunked=False,
            content_type="application/json",
        )
        await self._raw(body)
        self.record.finished = True


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    usage: dict[str, int] | None = None,
    *,
    empty_choices: bool = False,
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "fake-model",
        "system_fingerprint": "fp_fake",
        "choices": []
        if empty_choices
        else [{"index": 0, "delta": delta if delta is not None else {}, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        c["usage"] = usage
    return c


def usage(prompt: int = 50, completion: int = 10) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def split_text(text: str, rng: random.Random, max_piece: int = 6) -> list[str]:
    pieces = []
    i = 0
    while i < len(text):
        n = rng.randint(1, max_piece)
        pieces.append(text[i : i + n])
        i += n
    return pieces


def role_chunk() -> dict[str, Any]:
    return chunk({"role": "assistant", "content": ""})


def text_chunks(text: str, rng: random.Random | None = None) -> list[dict[str, Any]]:
    pieces = split_text(text, rng, 8) if rng else text.split(" ")
    if rng is None:
        pieces = [p if i == 0 else " " + p for i, p in enumerate(pieces)]
    return [chunk({"content": p}) for p in pieces]


def tool_call_chunks(
    index: int, call_id: str, name: str, args: dict[str, Any], rng: random.Random | None = None
) -> list[dict[str, Any]]:
    """The pieces of one streamed tool call: id+name first, then the arguments in fragments."""
    arguments = json.dumps(args, ensure_ascii=False)
    first = chunk(
        {
            "tool_calls": [
                {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            ]
        }
    )
    pieces = split_text(arguments, rng or random.Random(index), 7)
    return [first] + [chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]}) for p in pieces]


async def stream_events(out: Out, events: list[Any], *, done: bool = True) -> None:
    await out.head()
    for e in events:
        await out.event(e)
    if done:
        await out.event("[DONE]")
    await out.end()


def text_events(text: str, *, usage_mode: str = "separate", finish: str = "stop") -> list[Any]:
    events: list[Any] = [role_chunk(), *text_chunks(text)]
    if usage_mode == "final":
        events.append(chunk({}, finish, usage(42, len(text.split()))))
    else:
        events.append(chunk({}, finish))
        if usage_mode == "separate":
            events.append(chunk(usage=usage(42, len(text.split())), empty_choices=True))
    return events


# ---------------------------------------------------------------------------------- requests


def _check_arguments(arguments: str, where: str) -> None:
    """Echoed arguments must be a JSON object, as LiteLLM's Anthropic translation (a ``tool_use`` block's
    ``input``) requires; it answers 400 otherwise, and so does this server."""
    try:
        value = json.loads(arguments)
    except ValueError:
        raise BadRequest(f"{where}.function.arguments is not valid JSON: {arguments[:100]!r}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{where}.function.arguments must be a JSON object")


def validate(body: Any) -> dict[str, Any]:
    """Roughly what OpenAI checks before it starts streaming."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("'model' is required")
    if body.get("stream") is not True:
        raise BadRequest("this fake server only streams: 'stream' must be true")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("'messages' must be a non-empty list")
    open_calls: set[str] = set()
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("system", "user", "assistant", "tool"):
            raise BadRequest(f"messages[{i}].role is invalid")
        if role == "tool":
            if m.get("tool_call_id") not in open_calls:
                raise BadRequest(f"messages[{i}]: a 'tool' message must answer a preceding tool call")
            open_calls.discard(m["tool_call_id"])
            if not isinstance(m.get("content"), str):
                raise BadRequest(f"messages[{i}].content must be a string")
            continue
        if open_calls:
            raise BadRequest(f"messages[{i}]: tool calls {sorted(open_calls)} have no tool message")
        if role == "assistant" and m.get("tool_calls"):
            for call in m["tool_calls"]:
                fn = call.get("function") or {}
                if (
                    not call.get("id")
                    or call.get("type") != "function"
                    or not isinstance(fn.get("name"), str)
                    or not isinstance(fn.get("arguments"), str)
                ):
                    raise BadRequest(f"messages[{i}].tool_calls is malformed")
                _check_arguments(fn["arguments"], f"messages[{i}].tool_calls[{call['id']!r}]")
                open_calls.add(call["id"])
        elif not isinstance(m.get("content"), str):
            raise BadRequest(f"messages[{i}].content must be a string")
    tools = body.get("tools")
    if tools is not None:
        for t in tools:
            fn = t.get("function", {})
            params = fn.get("parameters", {})
            if fn.get("strict") is True and (
                params.get("additionalProperties") is not False
                or set(params.get("required", [])) != set(params.get("properties", {}))
            ):
                raise BadRequest(
                    f"tool {fn.get('name')!r}: strict schemas need every property required "
                    "and additionalProperties false"
                )
    return body
