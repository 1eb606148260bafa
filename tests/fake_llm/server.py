"""A scripted OpenAI-compatible chat-completions server that replays the streaming wire format.

Run it as a real process (stdlib only)::

    python -m tests.fake_llm.server --port 8765        # or: python tests/fake_llm/server.py --port 8765

Point the app at it with ``LLM_BASE_URL=http://127.0.0.1:8765/v1``, ``LLM_API_KEY=test-key`` and
``LLM_MODEL=scenario:<name>`` (optionally ``scenario:<name>:<tag>``: the tag keeps a test's retry
counters, gates and recorded requests apart from other tests'). Any other model name plays
``plain_text``. Every request must carry ``Authorization: Bearer test-key``, or it gets a 401.

The HTTP layer is written by hand on asyncio streams so that each scenario controls exactly
what goes on the wire: chunked bodies where one SSE event is one write, one write holding
many events, events cut into byte fragments across writes (TCP_NODELAY is set), CRLF line
endings, a body that stops without its terminating chunk, a server that never answers.
Every response says ``Connection: close``.

Control routes (JSON):

- ``GET /_requests[?tag=T]``: every chat request received: ``{n, path, headers, body, model,
  scenario, tag, status, finished, client_closed, gates}``;
- ``POST /_reset``: forget requests, counters and gates;
- ``POST /_release?tag=T&gate=G``: open a gate a scenario waits at;
- ``GET /_wait_closed?tag=T[&timeout=S]``: waits until the connection of the latest chat request
  with that tag is closed; ``{closed, client_closed, finished, n}``;
- ``GET /_health``: ``{ok: true}``.

``LLM_MODEL=scenario:by_prompt[:TAG]`` lets each prompt choose: ``[scenario:NAME]`` or
``[scenario:NAME:TAG]`` anywhere in the last user message plays NAME; without one, ``echo``
answers "You said: <prompt>". That suits an app process whose settings are fixed.

Scenarios (see ``SCENARIOS``) that run over several rounds look at the request: the phase is
the number of assistant tool-call messages after the last user message, and each later phase
first checks that the previous round's tool results came back (else HTTP 400).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "test-key"
GATE_TIMEOUT = 5.0


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
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    gates: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "n": self.n, "method": self.method, "path": self.path, "headers": self.headers, "body": self.body,
            "model": self.model, "scenario": self.scenario, "tag": self.tag, "status": self.status,
            "finished": self.finished, "client_closed": self.client_closed, "gates": self.gates,
        }


class State:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.counters: dict[tuple[str, str], int] = {}
        self.gates: dict[tuple[str, str], asyncio.Event] = {}
        self.new_record = asyncio.Condition()

    def gate(self, tag: str, name: str) -> asyncio.Event:
        return self.gates.setdefault((tag, name), asyncio.Event())


STATE: State


# ---------------------------------------------------------------------------------- wire helpers


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

    async def head(self, status: int = 200, headers: dict[str, str] | None = None, *, chunked: bool = True,
                   content_type: str = "text/event-stream; charset=utf-8") -> None:
        self.record.status = status
        self.chunked = chunked
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                  429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "X")
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}", "Cache-Control: no-cache",
                 "Connection: close"]
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

    async def json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        await self.head(status, {**(headers or {}), "Content-Length": str(len(body))}, chunked=False,
                        content_type="application/json")
        await self._raw(body)
        self.record.finished = True


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: dict[str, int] | None = None,
          *, empty_choices: bool = False) -> dict[str, Any]:
    c: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "fake-model",
        "system_fingerprint": "fp_fake",
        "choices": [] if empty_choices else [
            {"index": 0, "delta": delta if delta is not None else {}, "logprobs": None, "finish_reason": finish}
        ],
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
        pieces.append(text[i:i + n])
        i += n
    return pieces


def role_chunk() -> dict[str, Any]:
    return chunk({"role": "assistant", "content": ""})


def text_chunks(text: str, rng: random.Random | None = None) -> list[dict[str, Any]]:
    pieces = split_text(text, rng, 8) if rng else text.split(" ")
    if rng is None:
        pieces = [p if i == 0 else " " + p for i, p in enumerate(pieces)]
    return [chunk({"content": p}) for p in pieces]


def tool_call_chunks(index: int, call_id: str, name: str, args: dict[str, Any],
                     rng: random.Random | None = None) -> list[dict[str, Any]]:
    """The pieces of one streamed tool call: id+name first, then the arguments in fragments."""
    arguments = json.dumps(args, ensure_ascii=False)
    first = chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                   "function": {"name": name, "arguments": ""}}]})
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


@dataclass
class Req:
    record: Record
    body: dict[str, Any]
    tag: str
    query: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    def phase(self) -> int:
        """Assistant messages with tool calls after the last user message: the round number - 1."""
        msgs = self.messages
        last_user = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=-1)
        return sum(1 for m in msgs[last_user + 1:] if m.get("role") == "assistant" and m.get("tool_calls"))

    def tool_results(self) -> dict[str, Any]:
        """The last round's tool results by tool_call_id, decoded; 400 when one is missing."""
        msgs = self.messages
        idx = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant" and m.get("tool_calls")),
                  default=-1)
        if idx < 0:
            raise BadRequest("expected an assistant message with tool_calls")
        results: dict[str, Any] = {}
        for m in msgs[idx + 1:]:
            if m.get("role") == "tool":
                try:
                    results[m["tool_call_id"]] = json.loads(m["content"])
                except (ValueError, KeyError, TypeError):
                    results[m.get("tool_call_id", "?")] = {"raw": m.get("content")}
        for call in msgs[idx]["tool_calls"]:
            if call["id"] not in results:
                raise BadRequest(f"no tool message answers tool call {call['id']!r}")
        return results

    def count(self) -> int:
        """How many requests of this scenario and tag came before this one."""
        key = (self.record.scenario, self.tag)
        n = STATE.counters.get(key, 0)
        STATE.counters[key] = n + 1
        return n

    async def gate(self, name: str) -> None:
        try:
            await asyncio.wait_for(STATE.gate(self.tag, name).wait(), GATE_TIMEOUT)
            self.record.gates[name] = "released"
        except TimeoutError:
            self.record.gates[name] = "timed_out"


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
                if not call.get("id") or call.get("type") != "function" or not isinstance(fn.get("name"), str) \
                        or not isinstance(fn.get("arguments"), str):
                    raise BadRequest(f"messages[{i}].tool_calls is malformed")
                open_calls.add(call["id"])
        elif not isinstance(m.get("content"), str):
            raise BadRequest(f"messages[{i}].content must be a string")
    tools = body.get("tools")
    if tools is not None:
        for t in tools:
            fn = t.get("function", {})
            params = fn.get("parameters", {})
            if fn.get("strict") is True and (params.get("additionalProperties") is not False
                                             or set(params.get("required", [])) != set(params.get("properties", {}))):
                raise BadRequest(f"tool {fn.get('name')!r}: strict schemas need every property required "
                                 "and additionalProperties false")
    return body


# ---------------------------------------------------------------------------------- scenarios


async def s_plain_text(req: Req, out: Out) -> None:
    await stream_events(out, text_events("Hello from the fake LLM."))


async def s_echo(req: Req, out: Out) -> None:
    last = next((m["content"] for m in reversed(req.messages) if m.get("role") == "user"), "")
    await stream_events(out, text_events(f"You said: {last}"))


async def s_usage_final_chunk(req: Req, out: Out) -> None:
    await stream_events(out, text_events("Usage rides on the last choice.", usage_mode="final"))


async def s_no_usage(req: Req, out: Out) -> None:
    await stream_events(out, text_events("No usage here.", usage_mode="none"))


async def s_no_done(req: Req, out: Out) -> None:
    await stream_events(out, text_events("Finished but no DONE."), done=False)


async def _reasoning(out: Out, key: str) -> None:
    events: list[Any] = [role_chunk()]
    for piece in ["Let me", " think about", " this.\n", "The user wants", " a greeting", "."]:
        events.append(chunk({key: piece, "content": None} if key == "reasoning_content" else {key: piece}))
    events += text_chunks("Hi there!")
    events += [chunk({}, "stop"), chunk(usage=usage(30, 20), empty_choices=True)]
    await stream_events(out, events)


async def s_reasoning_content(req: Req, out: Out) -> None:
    await _reasoning(out, "reasoning_content")


async def s_reasoning(req: Req, out: Out) -> None:
    await _reasoning(out, "reasoning")


async def s_tool_calls_split(req: Req, out: Out) -> None:
    if req.phase() == 0:
        rng = random.Random(7)
        args = {"parent_id": "root", "values": ["Tâche ☕ 1", 'Task "2" {x}'], "index": None, "props": None}
        events: list[Any] = [role_chunk(), *text_chunks("Adding two nodes."),
                             *tool_call_chunks(0, "call_split_0", "add_nodes", args, rng),
                             chunk({}, "tool_calls"), chunk(usage=usage(100, 30), empty_choices=True)]
        await stream_events(out, events)
        return
    results = req.tool_results()
    if not results["call_split_0"].get("ok"):
        raise BadRequest("expected the add_nodes call to have succeeded")
    await stream_events(out, text_events("Added both nodes."))


async def s_parallel_tools(req: Req, out: Out) -> None:
    if req.phase() == 0:
        calls: list[tuple[str, str, dict[str, Any]]] = [
            ("call_par_0", "add_nodes", {"parent_id": "root", "values": ["Alpha"], "index": None, "props": None}),
            ("call_par_1", "add_nodes", {"parent_id": "root", "values": ["Beta", "Gamma"], "index": None,
                                         "props": [{"key": "kind", "value": "greek"}]}),
            ("call_par_2", "add_nodes", {"parent_id": "root", "values": ["Zero"], "index": 0, "props": None}),
        ]
        per_call = [tool_call_chunks(i, cid, name, args, random.Random(i + 11))
                    for i, (cid, name, args) in enumerate(calls)]
        events: list[Any] = [role_chunk()]
        # interleave: every call's first piece, then the argument pieces round-robin
        events += [pieces[0] for pieces in per_call]
        rest = [pieces[1:] for pieces in per_call]
        while any(rest):
            for r in rest:
                if r:
                    events.append(r.pop(0))
        events += [chunk({}, "tool_calls"), chunk(usage=usage(120, 60), empty_choices=True)]
        await stream_events(out, events)
        return
    results = req.tool_results()
    if len(results) != 3 or not all(r.get("ok") for r in results.values()):
        raise BadRequest(f"expected three successful tool results, got {results}")
    await stream_events(out, text_events("Added four nodes."))


async def s_multi_round(req: Req, out: Out) -> None:
    phase = req.phase()
    if phase == 0:
        args = {"parent_id": "root", "values": ["Groceries"], "index": None, "props": None}
        events = [role_chunk(), *tool_call_chunks(0, "call_mr_0", "add_nodes", args),
                  chunk({}, "tool_calls"), chunk(usage=usage(100, 20), empty_choices=True)]
        await stream_events(out, events)
        return
    results = req.tool_results()
    if phase == 1:
        added = results["call_mr_0"].get("added") or []
        if not added:
            raise BadRequest(f"expected the new node's id in the tool result, got {results}")
        args = {"parent_id": added[0]["id"], "values": ["Milk", "Eggs"], "index": None, "props": None}
        events = [role_chunk(), *tool_call_chunks(0, "call_mr_1", "add_nodes", args),
                  chunk({}, "tool_calls"), chunk(usage=usage(150, 20), empty_choices=True)]
        await stream_events(out, events)
        return
    if not results["call_mr_1"].get("ok"):
        raise BadRequest(f"expected the second add_nodes call to have succeeded, got {results}")
    await stream_events(out, text_events("Added Groceries with Milk and Eggs."))


async def s_all_tools(req: Req, out: Out) -> None:
    """add, then update + add under it, then move + remove, then text: the four tools."""
    phase = req.phase()
    if phase == 0:
        events = [role_chunk(), *tool_call_chunks(0, "call_at_0", "add_nodes", {
            "parent_id": "root", "values": ["Inbox", "Archive", "Temp"], "index": None, "props": None}),
            chunk({}, "tool_calls")]
        await stream_events(out, events)
        return
    results = req.tool_results()
    if phase == 1:
        inbox = results["call_at_0"]["added"][0]["id"]
        events = [role_chunk(),
                  *tool_call_chunks(0, "call_at_1", "update_node", {
                      "node_id": inbox, "value": "Inbox (3)",
                      "props": [{"key": "color", "value": "blue"}, {"key": "count", "value": 3}]}),
                  *tool_call_chunks(1, "call_at_2", "add_nodes", {
                      "parent_id": inbox, "values": ["Old mail"], "index": None, "props": None}),
                  chunk({}, "tool_calls")]
        await stream_events(out, events)
        return
    if phase == 2:
        ids = _ids_from_messages(req)
        old_mail = results["call_at_2"]["added"][0]["id"]
        events = [role_chunk(),
                  *tool_call_chunks(0, "call_at_3", "move_node", {
                      "node_id": old_mail, "new_parent_id": ids["Archive"], "index": 0}),
                  *tool_call_chunks(1, "call_at_4", "remove_node", {"node_id": ids["Temp"]}),
                  chunk({}, "tool_calls")]
        await stream_events(out, events)
        return
    if not all(r.get("ok") for r in results.values()):
        raise BadRequest(f"expected successful tool results, got {results}")
    await stream_events(out, text_events("Inbox renamed, old mail archived, Temp removed."))


def _ids_from_messages(req: Req) -> dict[str, str]:
    ids: dict[str, str] = {}
    for m in req.messages:
        if m.get("role") == "tool":
            with contextlib.suppress(ValueError, TypeError):
                for a in json.loads(m["content"]).get("added", []):
                    ids[a["value"]] = a["id"]
    return ids


async def s_invalid_args(req: Req, out: Out) -> None:
    """Broken JSON, then an unknown parent id, then a valid call, then text."""
    phase = req.phase()
    if phase in (1, 2):
        results = req.tool_results()
        result = next(iter(results.values()))
        if result.get("ok") is not False or not result.get("error"):
            raise BadRequest(f"expected a tool error in round {phase}, got {results}")
    if phase == 0:
        bad = '{"parent_id": "root", "values": ["Broken"'
        first = chunk({"tool_calls": [{"index": 0, "id": "call_bad_0", "type": "function",
                                       "function": {"name": "add_nodes", "arguments": ""}}]})
        events = [role_chunk(), first, *(chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
                                         for p in split_text(bad, random.Random(3)))]
        events.append(chunk({}, "tool_calls"))
    elif phase == 1:
        events = [role_chunk(), *tool_call_chunks(0, "call_bad_1", "add_nodes", {
            "parent_id": "no-such-node", "values": ["Fixed"], "index": None, "props": None}),
            chunk({}, "tool_calls")]
    elif phase == 2:
        events = [role_chunk(), *tool_call_chunks(0, "call_bad_2", "add_nodes", {
            "parent_id": "root", "values": ["Fixed"], "index": None, "props": None}),
            chunk({}, "tool_calls")]
    else:
        events = text_events("Fixed it on the third try.")
    await stream_events(out, events)


async def s_gated_tools(req: Req, out: Out) -> None:
    """Call 0 completes, then the stream waits for POST /_release?gate=applied before call 1."""
    if req.phase() == 0:
        await out.head()
        for e in [role_chunk(), *text_chunks("Working on it."),
                  *tool_call_chunks(0, "call_gate_0", "add_nodes",
                                    {"parent_id": "root", "values": ["First"], "index": None, "props": None})]:
            await out.event(e)
        await req.gate("applied")
        for e in [*tool_call_chunks(1, "call_gate_1", "add_nodes",
                                    {"parent_id": "root", "values": ["Second"], "index": None, "props": None}),
                  chunk({}, "tool_calls")]:
            await out.event(e)
        await out.event("[DONE]")
        await out.end()
        return
    req.tool_results()
    await stream_events(out, text_events("Both added."))


async def s_unauthorized(req: Req, out: Out) -> None:
    await out.json(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                   "param": None, "code": "invalid_api_key"}})


async def s_forbidden(req: Req, out: Out) -> None:
    await out.json(403, {"error": {"message": "You are not allowed to use this model.",
                                   "type": "invalid_request_error", "code": "model_not_allowed"}})


async def s_not_found(req: Req, out: Out) -> None:
    await out.json(404, {"error": {"message": "The model `nope` does not exist.", "type": "invalid_request_error",
                                   "code": "model_not_found"}})


async def s_rate_limited(req: Req, out: Out) -> None:
    """429 with ``Retry-After: 1`` (``0`` when the tag starts with 'ra0') once, then text."""
    if req.count() == 0:
        retry_after = "0" if req.tag.startswith("ra0") else "1"
        await out.json(429, {"error": {"message": "Rate limit reached.", "type": "requests",
                                       "code": "rate_limit_exceeded"}}, {"Retry-After": retry_after})
        return
    await stream_events(out, text_events("Answer after a rate limit."))


async def s_server_error_twice(req: Req, out: Out) -> None:
    n = req.count()
    if n < 2:
        await out.json(500 if n == 0 else 503, {"error": {"message": "The server had an error.",
                                                          "type": "server_error"}})
        return
    await stream_events(out, text_events("Answer after two failures."))


async def s_server_error_forever(req: Req, out: Out) -> None:
    req.count()
    await out.json(500, {"error": {"message": "The server had an error.", "type": "server_error"}})


async def s_malformed_json(req: Req, out: Out) -> None:
    await out.head()
    await out.event(role_chunk())
    await out.event(chunk({"content": "Partial"}))
    await out.write(b'data: {"id": "chatcmpl-fake", "choices": [{"index": 0, "delta": {"content": "x"\n\n')
    await out.event(chunk({}, "stop"))
    await out.event("[DONE]")
    await out.end()


async def s_stream_error(req: Req, out: Out) -> None:
    await out.head()
    await out.event(role_chunk())
    await out.event(chunk({"content": "Partial"}))
    await out.event({"error": {"message": "The server had an error while processing your request.",
                               "type": "server_error", "code": None}})
    await out.end()


async def s_stream_cut(req: Req, out: Out) -> None:
    """Chunked body that stops without its terminating chunk: no finish_reason, no [DONE]."""
    await out.head()
    for e in [role_chunk(), *text_chunks("This answer will be cut")]:
        await out.event(e)
    out.w.close()


async def s_stream_cut_eof(req: Req, out: Out) -> None:
    """A body delimited by the connection closing, which closes early: a clean EOF, no [DONE]."""
    await out.head(chunked=False)
    for e in [role_chunk(), *text_chunks("This answer will be cut")]:
        await out.event(e)
    out.w.close()


async def _until_closed(req: Req) -> None:
    await req.record.closed.wait()


async def s_hang(req: Req, out: Out) -> None:
    await _until_closed(req)


async def s_hang_after_headers(req: Req, out: Out) -> None:
    await out.head()
    await out.event(role_chunk())
    await _until_closed(req)


async def s_keepalive_forever(req: Req, out: Out) -> None:
    await out.head()
    while True:
        await out.write(b": keep-alive\n\n")
        await asyncio.sleep(0.05)


async def s_slow_stream(req: Req, out: Out) -> None:
    await out.head()
    await out.event(role_chunk())
    for i in range(1200):
        await out.event(chunk({"content": f"tick {i} "}))
        await asyncio.sleep(0.05)
    await out.event(chunk({}, "stop"))
    await out.event("[DONE]")
    await out.end()


async def s_keepalive_comments(req: Req, out: Out) -> None:
    await out.head()
    await out.write(b": OPENROUTER PROCESSING\n\n")
    await out.write(b":\n\n")
    await out.write(b"event: message\nid: 1\nretry: 1000\n" + out.sse(role_chunk()))
    await out.write(b": keep-alive\n\n")
    for e in text_chunks("Comments are ignored."):
        await out.write(b"data:" + json.dumps(e).encode() + b"\n\n")  # no space after the colon
        await out.write(b": ping\n\n")
    await out.event(chunk({}, "stop"))
    await out.event(chunk(usage=usage(10, 3), empty_choices=True))
    await out.event("[DONE]")
    await out.end()


def _body_bytes(out: Out) -> bytes:
    rng = random.Random(5)
    events: list[Any] = [role_chunk(), *text_chunks("Naïve café ☕ 日本語 — split anywhere.", rng),
                         *tool_call_chunks(0, "call_frag_0", "add_nodes", {
                             "parent_id": "root", "values": ["Frägment ☕"], "index": None, "props": None}, rng),
                         chunk({}, "tool_calls"), chunk(usage=usage(20, 10), empty_choices=True)]
    return b"".join(out.sse(e) for e in events) + out.sse("[DONE]")


async def _fragmented(req: Req, out: Out, *, crlf: bool) -> None:
    if req.phase() > 0:
        req.tool_results()
        out.crlf = crlf
        await stream_events(out, text_events("Done."))
        return
    out.crlf = crlf
    body = _body_bytes(out)
    rng = random.Random(9)
    await out.head()
    i = 0
    writes = 0
    while i < len(body):
        n = rng.randint(1, 12)
        await out.write(body[i:i + n])
        i += n
        writes += 1
        if writes % 2 == 0:
            await asyncio.sleep(0.001)  # pacing so the fragments reach the client as separate reads
    await out.end()


async def s_fragmented(req: Req, out: Out) -> None:
    await _fragmented(req, out, crlf=False)


async def s_crlf(req: Req, out: Out) -> None:
    await _fragmented(req, out, crlf=True)


async def s_coalesced(req: Req, out: Out) -> None:
    """The whole stream (text, a tool call, finish, usage, [DONE]) in one write."""
    if req.phase() > 0:
        req.tool_results()
        await stream_events(out, text_events("Done."))
        return
    await out.head()
    await out.write(_body_bytes(out))
    await out.end()


async def s_non_streaming(req: Req, out: Out) -> None:
    """A server that ignores stream: true and answers with one JSON completion."""
    await out.json(200, {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                         "model": "fake-model", "choices": [{"index": 0, "message": {
                             "role": "assistant", "content": "Not streamed."}, "finish_reason": "stop"}],
                         "usage": usage(10, 2)})


Scenario = Callable[[Req, Out], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {
    name[2:]: fn for name, fn in sorted(globals().items()) if name.startswith("s_") and callable(fn)
}


# ---------------------------------------------------------------------------------- HTTP plumbing


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        request = await read_request(reader)
        if request is None:
            return
        method, target, headers, body = request
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path.startswith("/_"):
            await control(method, url.path, query, writer)
        elif method == "POST" and url.path.rstrip("/") in ("/v1/chat/completions", "/chat/completions"):
            await chat(url.path, headers, body, query, reader, writer)
        else:
            await simple(writer, 404, {"error": {"message": f"no route {method} {url.path}"}})
    except Exception as exc:  # keep serving; tell the test what went wrong
        print(f"fake-llm: handler error {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(Exception):
            writer.close()
            await writer.wait_closed()


async def simple(writer: asyncio.StreamWriter, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                 "Connection: close\r\n\r\n".encode() + body)
    await writer.drain()


async def control(method: str, path: str, query: dict[str, str], writer: asyncio.StreamWriter) -> None:
    tag = query.get("tag")
    if path == "/_health":
        await simple(writer, 200, {"ok": True, "scenarios": sorted(SCENARIOS)})
    elif path == "/_requests":
        await simple(writer, 200, [r.public() for r in STATE.records if tag is None or r.tag == tag])
    elif path == "/_reset" and method == "POST":
        STATE.records.clear()
        STATE.counters.clear()
        STATE.gates.clear()
        await simple(writer, 200, {"ok": True})
    elif path == "/_release" and method == "POST":
        STATE.gate(tag or "", query.get("gate", "")).set()
        await simple(writer, 200, {"ok": True})
    elif path == "/_wait_closed":
        timeout = float(query.get("timeout", "5"))
        deadline = time.monotonic() + timeout
        record: Record | None = None
        async with STATE.new_record:
            while True:
                matching = [r for r in STATE.records if tag is None or r.tag == tag]
                if matching:
                    record = matching[-1]
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(STATE.new_record.wait(), remaining)
        closed = False
        if record is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(record.closed.wait(), max(deadline - time.monotonic(), 0))
            closed = record.closed.is_set()
        await simple(writer, 200, {
            "closed": closed, "n": record.n if record else None,
            "client_closed": record.client_closed if record else False,
            "finished": record.finished if record else False,
        })
    else:
        await simple(writer, 404, {"error": f"no control route {method} {path}"})


PROMPT_SCENARIO = re.compile(r"\[scenario:([a-z_]+)(?::([A-Za-z0-9_.-]+))?\]")


def scenario_from_prompt(body: Any, tag: str) -> tuple[str, str]:
    """``scenario:by_prompt``: the last user message picks the scenario with ``[scenario:NAME]`` or
    ``[scenario:NAME:TAG]`` (for an app process whose LLM_MODEL is fixed); ``echo`` otherwise."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for m in reversed(messages if isinstance(messages, list) else []):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            match = PROMPT_SCENARIO.search(m["content"])
            if match:
                return match.group(1), match.group(2) or tag
            break
    return "echo", tag


async def chat(path: str, headers: dict[str, str], raw: bytes, query: dict[str, str],
               reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    record = Record(n=len(STATE.records) + 1, method="POST", path=path, headers=headers, body=body)
    model = body.get("model", "") if isinstance(body, dict) else ""
    record.model = model if isinstance(model, str) else ""
    name, tag = "plain_text", ""
    if record.model.startswith("scenario:"):
        name, _, tag = record.model[len("scenario:"):].partition(":")
    if name == "by_prompt":
        name, tag = scenario_from_prompt(body, tag)
    record.scenario, record.tag = name, tag
    STATE.records.append(record)
    async with STATE.new_record:
        STATE.new_record.notify_all()
    out = Out(writer, record)

    async def watch() -> None:
        """The client closing its side (EOF) or resetting: the request is abandoned."""
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass
        record.client_closed = not record.finished

    async def play() -> None:
        auth = headers.get("authorization", "")
        if auth != f"Bearer {API_KEY}":
            # like real servers, name the key that was sent (the client must not leak it further)
            sent = auth.removeprefix("Bearer ").strip() or "(none)"
            await out.json(401, {"error": {"message": f"Incorrect API key provided: {sent}.",
                                           "type": "invalid_request_error", "code": "invalid_api_key"}})
            return
        scenario = SCENARIOS.get(name)
        if scenario is None:
            await out.json(404, {"error": {"message": f"The model `{record.model}` does not exist.",
                                           "type": "invalid_request_error", "code": "model_not_found"}})
            return
        try:
            req = Req(record, validate(body), tag, query)
            await scenario(req, out)
        except BadRequest as exc:
            if record.status == 0:
                await out.json(400, {"error": {"message": f"fake-llm: {exc}", "type": "invalid_request_error"}})
            else:
                raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:  # a scenario's own check blew up
            if record.status == 0:
                await out.json(500, {"error": {"message": f"fake-llm: scenario {name} failed: {exc!r}",
                                               "type": "server_error"}})
            raise

    watcher = asyncio.create_task(watch())
    player = asyncio.create_task(play())
    try:
        done, _ = await asyncio.wait({watcher, player}, return_when=asyncio.FIRST_COMPLETED)
        if player in done:
            exc = player.exception()
            if exc is not None and not isinstance(exc, ConnectionError):
                print(f"fake-llm: scenario {name} failed: {exc!r}", file=sys.stderr, flush=True)
        else:
            player.cancel()
            with contextlib.suppress(BaseException):
                await player
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher
        with contextlib.suppress(Exception):
            writer.close()
            await writer.wait_closed()
        record.closed.set()


async def main(host: str, port: int) -> None:
    global STATE
    STATE = State()
    server = await asyncio.start_server(handle, host, port, limit=1 << 22)
    print(f"fake-llm listening on http://{host}:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port))


if __name__ == "__main__":
    cli()
