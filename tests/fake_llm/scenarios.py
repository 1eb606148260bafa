"""The fake server's scenarios: one coroutine per scripted behaviour, picked by the model name.

Scenarios that run over several rounds look at the request: the phase is the number of assistant
tool-call messages after the last user message, and each later phase first checks that the previous
round's tool results came back (else HTTP 400). Every ``s_<name>`` function is the scenario ``<name>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.fake_llm.wire import (
    BadRequest,
    Out,
    Record,
    chunk,
    role_chunk,
    split_text,
    stream_events,
    text_chunks,
    text_events,
    tool_call_chunks,
    usage,
)

GATE_TIMEOUT = 5.0
KEEPALIVE_INTERVAL = 0.05  # keepalive_forever's pause between two keep-alives (at least this long)


class State:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.counters: dict[tuple[str, str], int] = {}
        self.gates: dict[tuple[str, str], asyncio.Event] = {}
        self.new_record = asyncio.Condition()

    def gate(self, tag: str, name: str) -> asyncio.Event:
        return self.gates.setdefault((tag, name), asyncio.Event())


@dataclass
class Req:
    record: Record
    body: dict[str, Any]
    tag: str
    query: dict[str, str]
    state: State

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    def phase(self) -> int:
        """Assistant messages with tool calls after the last user message: the round number - 1."""
        msgs = self.messages
        last_user = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=-1)
        return sum(1 for m in msgs[last_user + 1 :] if m.get("role") == "assistant" and m.get("tool_calls"))

    def tool_results(self) -> dict[str, Any]:
        """The last round's tool results by tool_call_id, decoded; 400 when one is missing."""
        msgs = self.messages
        idx = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant" and m.get("tool_calls")), default=-1)
        if idx < 0:
            raise BadRequest("expected an assistant message with tool_calls")
        results: dict[str, Any] = {}
        for m in msgs[idx + 1 :]:
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
        n = self.state.counters.get(key, 0)
        self.state.counters[key] = n + 1
        return n

    async def gate(self, name: str) -> None:
        try:
            await asyncio.wait_for(self.state.gate(self.tag, name).wait(), GATE_TIMEOUT)
            self.record.gates[name] = "released"
        except TimeoutError:
            self.record.gates[name] = "timed_out"


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
        events: list[Any] = [
            role_chunk(),
            *text_chunks("Adding two nodes."),
            *tool_call_chunks(0, "call_split_0", "add_nodes", args, rng),
            chunk({}, "tool_calls"),
            chunk(usage=usage(100, 30), empty_choices=True),
        ]
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
            (
                "call_par_1",
                "add_nodes",
                {
                    "parent_id": "root",
                    "values": ["Beta", "Gamma"],
                    "index": None,
                    "props": [{"key": "kind", "value": "greek"}],
                },
            ),
            ("call_par_2", "add_nodes", {"parent_id": "root", "values": ["Zero"], "index": 0, "props": None}),
        ]
        per_call = [
            tool_call_chunks(i, cid, name, args, random.Random(i + 11)) for i, (cid, name, args) in enumerate(calls)
        ]
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
        events = [
            role_chunk(),
            *tool_call_chunks(0, "call_mr_0", "add_nodes", args),
            chunk({}, "tool_calls"),
            chunk(usage=usage(100, 20), empty_choices=True),
        ]
        await stream_events(out, events)
        return
    results = req.tool_results()
    if phase == 1:
        added = results["call_mr_0"].get("added") or []
        if not added:
            raise BadRequest(f"expected the new node's id in the tool result, got {results}")
        args = {"parent_id": added[0]["id"], "values": ["Milk", "Eggs"], "index": None, "props": None}
        events = [
            role_chunk(),
            *tool_call_chunks(0, "call_mr_1", "add_nodes", args),
            chunk({}, "tool_calls"),
            chunk(usage=usage(150, 20), empty_choices=True),
        ]
        await stream_events(out, events)
        return
    if not results["call_mr_1"].get("ok"):
        raise BadRequest(f"expected the second add_nodes call to have succeeded, got {results}")
    await stream_events(out, text_events("Added Groceries with Milk and Eggs."))


async def s_all_tools(req: Req, out: Out) -> None:
    """add, then update + add under it, then move + remove, then text: the four tools."""
    phase = req.phase()
    if phase == 0:
        events = [
            role_chunk(),
            *tool_call_chunks(
                0,
                "call_at_0",
                "add_nodes",
                {"parent_id": "root", "values": ["Inbox", "Archive", "Temp"], "index": None, "props": None},
            ),
            chunk({}, "tool_calls"),
        ]
        await stream_events(out, events)
        return
    results = req.tool_results()
    if phase == 1:
        inbox = results["call_at_0"]["added"][0]["id"]
        events = [
            role_chunk(),
            *tool_call_chunks(
                0,
                "call_at_1",
                "update_node",
                {
                    "node_id": inbox,
                    "value": "Inbox (3)",
                    "props": [{"key": "color", "value": "blue"}, {"key": "count", "value": 3}],
                },
            ),
            *tool_call_chunks(
                1, "call_at_2", "add_nodes", {"parent_id": inbox, "values": ["Old mail"], "index": None, "props": None}
            ),
            chunk({}, "tool_calls"),
        ]
        await stream_events(out, events)
        return
    if phase == 2:
        ids = _ids_from_messages(req)
        old_mail = results["call_at_2"]["added"][0]["id"]
        events = [
            role_chunk(),
            *tool_call_chunks(
                0, "call_at_3", "move_node", {"node_id": old_mail, "new_parent_id": ids["Archive"], "index": 0}
            ),
            *tool_call_chunks(1, "call_at_4", "remove_node", {"node_id": ids["Temp"]}),
            chunk({}, "tool_calls"),
        ]
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
        first = chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_bad_0",
                        "type": "function",
                        "function": {"name": "add_nodes", "arguments": ""},
                    }
                ]
            }
        )
        events = [
            role_chunk(),
            first,
            *(
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
                for p in split_text(bad, random.Random(3))
            ),
        ]
        events.append(chunk({}, "tool_calls"))
    elif phase == 1:
        events = [
            role_chunk(),
            *tool_call_chunks(
                0,
                "call_bad_1",
                "add_nodes",
                {"parent_id": "no-such-node", "values": ["Fixed"], "index": None, "props": None},
            ),
            chunk({}, "tool_calls"),
        ]
    elif phase == 2:
        events = [
            role_chunk(),
            *tool_call_chunks(
                0, "call_bad_2", "add_nodes", {"parent_id": "root", "values": ["Fixed"], "index": None, "props": None}
            ),
            chunk({}, "tool_calls"),
        ]
    else:
        events = text_events("Fixed it on the third try.")
    await stream_events(out, events)


async def s_gated_tools(req: Req, out: Out) -> None:
    """Call 0 completes, then the stream waits for POST /_release?gate=applied before call 1."""
    if req.phase() == 0:
        await out.head()
        for e in [
            role_chunk(),
            *text_chunks("Working on it."),
            *tool_call_chunks(
                0, "call_gate_0", "add_nodes", {"parent_id": "root", "values": ["First"], "index": None, "props": None}
            ),
        ]:
            await out.event(e)
        await req.gate("applied")
        for e in [
            *tool_call_chunks(
                1, "call_gate_1", "add_nodes", {"parent_id": "root", "values": ["Second"], "index": None, "props": None}
            ),
            chunk({}, "tool_calls"),
        ]:
            await out.event(e)
        await out.event("[DONE]")
        await out.end()
        return
    req.tool_results()
    await stream_events(out, text_events("Both added."))


async def s_unauthorized(req: Req, out: Out) -> None:
    await out.json(
        401,
        {
            "error": {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
    )


async def s_forbidden(req: Req, out: Out) -> None:
    await out.json(
        403,
        {
            "error": {
                "message": "You are not allowed to use this model.",
                "type": "invalid_request_error",
                "code": "model_not_allowed",
            }
        },
    )


async def s_not_found(req: Req, out: Out) -> None:
    await out.json(
        404,
        {
            "error": {
                "message": "The model `nope` does not exist.",
                "type": "invalid_request_error",
                "code": "model_not_found",
            }
        },
    )


async def s_rate_limited(req: Req, out: Out) -> None:
    """429 with ``Retry-After: 1`` (``0`` when the tag starts with 'ra0') once, then text."""
    if req.count() == 0:
        retry_after = "0" if req.tag.startswith("ra0") else "1"
        await out.json(
            429,
            {"error": {"message": "Rate limit reached.", "type": "requests", "code": "rate_limit_exceeded"}},
            {"Retry-After": retry_after},
        )
        return
    await stream_events(out, text_events("Answer after a rate limit."))


async def s_server_error_twice(req: Req, out: Out) -> None:
    n = req.count()
    if n < 2:
        await out.json(
            500 if n == 0 else 503, {"error": {"message": "The server had an error.", "type": "server_error"}}
        )
        return
    await stream_events(out, text_events("Answer after two failures."))


async def s_timeout_then_conflict(req: Req, out: Out) -> None:
    """408, then 409 (both retried by the official OpenAI client), then text."""
    n = req.count()
    if n < 2:
        status, kind = (408, "request_timeout") if n == 0 else (409, "conflict")
        await out.json(status, {"error": {"message": f"Try again ({kind}).", "type": kind}})
        return
    await stream_events(out, text_events("Answer after a timeout and a conflict."))


async def s_cut_at_length(req: Req, out: Out) -> None:
    """An answer stopped at the output token limit: ``finish_reason: length``."""
    await stream_events(out, text_events("The first half of a long answer", finish="length"))


async def s_content_filtered(req: Req, out: Out) -> None:
    """An answer stopped by the provider's filter: ``finish_reason: content_filter``."""
    await stream_events(out, text_events("I started to", finish="content_filter"))


async def s_failing_tools(req: Req, out: Out) -> None:
    """Every round calls a tool that cannot be applied (an unknown parent), never text."""
    phase = req.phase()
    if phase:
        results = req.tool_results()
        if any(r.get("ok") is not False for r in results.values()):
            raise BadRequest(f"expected the tool calls to fail, got {results}")
    events = [
        role_chunk(),
        *tool_call_chunks(
            0,
            f"call_fail_{phase}",
            "add_nodes",
            {"parent_id": "no-such-node", "values": ["Lost"], "index": None, "props": None},
        ),
        chunk({}, "tool_calls"),
    ]
    await stream_events(out, events)


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
    await out.event(
        {
            "error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
                "code": None,
            }
        }
    )
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
        await out.keepalive()
        await asyncio.sleep(KEEPALIVE_INTERVAL)


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
    events: list[Any] = [
        role_chunk(),
        *text_chunks("Naïve café ☕ 日本語 — split anywhere.", rng),
        *tool_call_chunks(
            0,
            "call_frag_0",
            "add_nodes",
            {"parent_id": "root", "values": ["Frägment ☕"], "index": None, "props": None},
            rng,
        ),
        chunk({}, "tool_calls"),
        chunk(usage=usage(20, 10), empty_choices=True),
    ]
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
        await out.write(body[i : i + n])
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
    await out.json(
        200,
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "fake-model",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Not streamed."}, "finish_reason": "stop"}
            ],
            "usage": usage(10, 2),
        },
    )


Scenario = Callable[[Req, Out], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {
    name[2:]: fn for name, fn in sorted(globals().items()) if name.startswith("s_") and callable(fn)
}
