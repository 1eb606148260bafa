"""The OpenAI-compatible provider against the fake LLM server (a real process), plus unit tests
for the SSE parser, the tool argument checks and the context outline budget."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar, cast

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canopy.assistant.base import ChatMessage, ProviderError
from canopy.assistant.context import build_messages, history_messages, named_nodes, outline
from canopy.assistant.openai import OpenAIProvider
from canopy.assistant.sse import SSEError, SSEEvent, SSEParser
from canopy.assistant.tools import TOOLS, ToolArgumentError, parse_arguments
from canopy.config import Settings
from canopy.tree import Tree
from tests.fake_llm.fixture import API_KEY, FakeLLM
from tests.fake_llm.scenarios import KEEPALIVE_INTERVAL
from tests.support.openai import make_provider, new_tag, tool_messages
from tests.support.turn_context import FakeTurnContext as Ctx
from tests.support.turn_context import TurnOptions

SECRET_KEY = "sk-wrong-SECRET-4f9a8b7c6d5e"
# A hang guard, not a timing assertion: far above what any awaited step here should take.
HANG_GUARD = 30.0

T = TypeVar("T")


# ---------------------------------------------------------------------------------- helpers


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


async def run(
    http: httpx.AsyncClient, fake: FakeLLM, scenario: str, ctx: Ctx | None = None, **kwargs: Any
) -> tuple[Ctx, list[dict[str, Any]], str]:
    tag = new_tag()
    ctx = ctx or Ctx()
    provider = make_provider(http, fake, scenario, tag, **kwargs)
    await provider.run_turn(ctx)
    return ctx, await fake.requests(tag), tag


async def fails(
    http: httpx.AsyncClient, fake: FakeLLM, scenario: str, code: int, ctx: Ctx | None = None, **kwargs: Any
) -> tuple[ProviderError, list[dict[str, Any]], Ctx]:
    tag = new_tag()
    ctx = ctx or Ctx()
    provider = make_provider(http, fake, scenario, tag, **kwargs)
    with pytest.raises(ProviderError) as info:
        await provider.run_turn(ctx)
    assert info.value.code == code, info.value.message
    return info.value, await fake.requests(tag), ctx


# ---------------------------------------------------------------------------------- happy paths


async def test_plain_text_request_shape_and_debug(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    ctx, reqs, tag = await run(http, fake_llm, "plain_text", Ctx(prompt="Say hello"))
    assert ctx.text_out == "Hello from the fake LLM."
    assert ctx.kinds()[-1] == "debug"
    assert len(reqs) == 1
    req = reqs[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == "Bearer test-key"
    body = req["body"]
    assert body["model"] == f"scenario:plain_text:{tag}"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert [t["function"]["name"] for t in body["tools"]] == ["add_nodes", "update_node", "remove_node", "move_node"]
    for tool in body["tools"]:
        fn = tool["function"]
        assert fn["strict"] is True
        assert fn["parameters"]["additionalProperties"] is False
        assert set(fn["parameters"]["required"]) == set(fn["parameters"]["properties"])
    assert body["messages"][0]["role"] == "system"
    assert "- Root [id=root]" in body["messages"][0]["content"]
    assert body["messages"][-1] == {"role": "user", "content": "Say hello"}
    info = ctx.debug_info
    assert info["provider"] == "openai" and info["rounds"] == 1 and info["retries"] == 0
    assert info["usage"] == {"prompt_tokens": 42, "completion_tokens": 5, "total_tokens": 47}
    assert info["ttft_ms"] is not None and 0 <= info["ttft_ms"] <= info["latency_ms"]


@pytest.mark.parametrize(
    ("scenario", "usage"),
    [
        ("plain_text", {"prompt_tokens": 42, "completion_tokens": 5, "total_tokens": 47}),
        ("usage_final_chunk", {"prompt_tokens": 42, "completion_tokens": 6, "total_tokens": 48}),
        ("no_usage", None),
    ],
)
async def test_usage_where_servers_put_it(
    http: httpx.AsyncClient, fake_llm: FakeLLM, scenario: str, usage: dict[str, int] | None
) -> None:
    ctx, _, _ = await run(http, fake_llm, scenario)
    assert ctx.debug_info.get("usage") == usage


async def test_history_and_outline_in_messages(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    tree = Tree()
    tree.apply(
        {
            "action": "add",
            "path": "/root/children",
            "node": {"id": "n-1", "value": "Tasks", "props": {"priority": "high"}, "children": []},
        }
    )
    history = [
        ChatMessage("user", "first"),
        ChatMessage("assistant", "one"),
        ChatMessage("user", "second"),
        ChatMessage("assistant", "two"),
        ChatMessage("user", "What now?"),
    ]
    ctx, reqs, _ = await run(http, fake_llm, "echo", Ctx("What now?", tree, TurnOptions(history=history)))
    msgs = reqs[0]["body"]["messages"]
    assert "  - Tasks [id=n-1] {priority: high}" in msgs[0]["content"]
    assert [m["content"] for m in msgs[1:]] == ["first", "one", "second", "two", "What now?"]
    assert ctx.text_out == "You said: What now?"


async def test_tool_call_arguments_split_across_chunks(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    ctx, reqs, _ = await run(http, fake_llm, "tool_calls_split")
    assert ctx.values() == ["Tâche ☕ 1", 'Task "2" {x}']
    assert ctx.text_out == "Adding two nodes.Added both nodes."
    # both changes happened before the second round's text
    applies = [i for i, (k, _) in enumerate(ctx.frames) if k == "apply"]
    assert len(applies) == 2 and applies[-1] < text_frame_at(ctx, len("Adding two nodes."))
    assert len(reqs) == 2
    second = reqs[1]["body"]["messages"]
    assistant = [m for m in second if m["role"] == "assistant"][-1]
    assert assistant["content"] == "Adding two nodes."
    assert assistant["tool_calls"][0]["id"] == "call_split_0"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"])["values"][0] == "Tâche ☕ 1"
    result = json.loads(tool_messages(reqs[1]["body"])[0]["content"])
    assert result["ok"] is True
    assert [a["value"] for a in result["added"]] == ["Tâche ☕ 1", 'Task "2" {x}']
    assert all(a["id"] in ctx.tree for a in result["added"])


async def test_parallel_interleaved_tool_calls(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    ctx, reqs, _ = await run(http, fake_llm, "parallel_tools")
    # applied in index order; the third call inserts at index 0
    assert [a["node"]["value"] for a in ctx.applied] == ["Alpha", "Beta", "Gamma", "Zero"]
    assert ctx.values() == ["Zero", "Alpha", "Beta", "Gamma"]
    beta = ctx.tree.find("Beta")[0]
    assert ctx.tree.props(beta) == {"kind": "greek"}
    results = tool_messages(reqs[1]["body"])
    assert [m["tool_call_id"] for m in results] == ["call_par_0", "call_par_1", "call_par_2"]
    assert ctx.debug_info["tool_calls"] == 3 and ctx.debug_info["changes"] == 4


async def test_tool_calls_apply_while_the_response_still_streams(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    """The server holds the rest of the response until the first change was applied."""
    tag = new_tag()

    async def release(delta: dict[str, Any]) -> None:
        if delta["node"]["value"] == "First":
            await fake_llm.release(tag, "applied")

    ctx = Ctx(options=TurnOptions(on_apply=release))
    provider = make_provider(http, fake_llm, "gated_tools", tag)
    await provider.run_turn(ctx)
    reqs = await fake_llm.requests(tag)
    # the gate opened from inside apply(): the first change happened while the response was held open
    assert reqs[0]["gates"] == {"applied": "released"}
    assert ctx.values() == ["First", "Second"]
    assert ctx.text_out == "Working on it.Both added."
    applies = [i for i, (k, _) in enumerate(ctx.frames) if k == "apply"]
    assert applies[-1] < text_frame_at(ctx, len("Working on it."))


def text_frame_at(ctx: Ctx, offset: int) -> int:
    """The index in ctx.frames of the text frame that starts at character ``offset`` of the text."""
    seen = 0
    for i, (kind, value) in enumerate(ctx.frames):
        if kind == "text":
            if seen >= offset:
                return i
            seen += len(value)
    raise AssertionError(f"no text at offset {offset}")


@pytest.mark.parametrize("scenario", ["reasoning_content", "reasoning"])
async def test_reasoning_is_forwarded(http: httpx.AsyncClient, fake_llm: FakeLLM, scenario: str) -> None:
    ctx, _, _ = await run(http, fake_llm, scenario)
    assert "".join(ctx.reasoning_out) == "Let me think about this.\nThe user wants a greeting."
    assert 1 <= len(ctx.reasoning_out) <= 6
    assert ctx.reasoning_out[0].endswith("\n")  # flushed at the line end, before the rest arrived
    kinds = ctx.kinds()
    assert max(i for i, k in enumerate(kinds) if k == "reasoning") < kinds.index("text")
    assert ctx.text_out == "Hi there!"
    assert ctx.debug_info["usage"]["total_tokens"] == 50


async def test_multi_round_feeds_tool_results_back(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    ctx, reqs, _ = await run(http, fake_llm, "multi_round")
    groceries = ctx.tree.find("Groceries")
    assert len(groceries) == 1
    assert ctx.values(groceries[0]) == ["Milk", "Eggs"]
    assert ctx.text_out == "Added Groceries with Milk and Eggs."
    assert len(reqs) == 3
    first_result = tool_messages(reqs[1]["body"])[0]
    assert first_result["tool_call_id"] == "call_mr_0"
    assert json.loads(first_result["content"])["added"][0]["id"] == groceries[0]
    assert len(tool_messages(reqs[2]["body"])) == 2
    info = ctx.debug_info
    assert info["rounds"] == 3 and info["finish_reason"] == "stop"
    assert info["usage"]["prompt_tokens"] == 100 + 150 + 42  # summed over rounds
    assert info["usage"]["total_tokens"] == 120 + 170 + 42 + 6


async def test_all_four_tools(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    ctx, reqs, _ = await run(http, fake_llm, "all_tools")
    tree = ctx.tree
    assert ctx.values() == ["Inbox (3)", "Archive"]
    inbox, archive = tree.children("root")
    assert tree.props(inbox) == {"color": "blue", "count": 3}
    assert ctx.values(inbox) == []
    assert ctx.values(archive) == ["Old mail"]
    assert [a["action"] for a in ctx.applied] == ["add", "add", "add", "update", "add", "move", "remove"]
    assert len(reqs) == 4


async def test_invalid_arguments_are_told_to_the_model(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    ctx, reqs, _ = await run(http, fake_llm, "invalid_args")
    assert ctx.values() == ["Fixed"]
    assert ctx.text_out == "Fixed it on the third try."
    first = json.loads(tool_messages(reqs[1]["body"])[-1]["content"])
    assert first["ok"] is False and "not valid JSON" in first["error"]
    second = json.loads(tool_messages(reqs[2]["body"])[-1]["content"])
    assert second["ok"] is False and second["code"] == 404 and "no-such-node" in second["error"]
    assert len(reqs) == 4


async def test_max_rounds_stops_the_loop(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    tag = new_tag()
    s = Settings(
        _env_file=None,
        llm_base_url=fake_llm,
        llm_api_key=API_KEY,
        llm_model=f"scenario:multi_round:{tag}",
        llm_max_rounds=2,
    )
    ctx = Ctx()
    await OpenAIProvider(http, s).run_turn(ctx)
    assert len(await fake_llm.requests(tag)) == 2
    assert "Stopped after 2 rounds" in ctx.text_out
    assert ctx.debug_info["rounds"] == 2


@pytest.mark.parametrize("scenario", ["keepalive_comments", "no_done", "non_streaming"])
async def test_tolerated_stream_shapes(http: httpx.AsyncClient, fake_llm: FakeLLM, scenario: str) -> None:
    ctx, _, _ = await run(http, fake_llm, scenario)
    expected = {
        "keepalive_comments": "Comments are ignored.",
        "no_done": "Finished but no DONE.",
        "non_streaming": "Not streamed.",
    }[scenario]
    assert ctx.text_out == expected


@pytest.mark.parametrize("scenario", ["fragmented", "crlf", "coalesced"])
async def test_network_chunking(http: httpx.AsyncClient, fake_llm: FakeLLM, scenario: str) -> None:
    ctx, reqs, _ = await run(http, fake_llm, scenario)
    assert ctx.text_out == "Naïve café ☕ 日本語 — split anywhere.Done."
    assert ctx.values() == ["Frägment ☕"]
    assert len(reqs) == 2
    assert ctx.debug_info["usage"]["prompt_tokens"] == 20 + 42


# ---------------------------------------------------------------------------------- retries


def retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits before each retry, as the provider logged them (the delay it then sleeps)."""
    waits = []
    for record in caplog.records:
        if record.msg.startswith("llm request got HTTP") and isinstance(record.args, tuple):
            waits.append(float(cast(float, record.args[3])))
    return waits


async def test_429_honours_retry_after(
    http: httpx.AsyncClient, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="canopy.assistant.openai"):
        ctx, reqs, _ = await run(http, fake_llm, "rate_limited")
    assert [r["status"] for r in reqs] == [429, 200]
    assert retry_waits(caplog) == [1.0]  # the server's Retry-After: 1, not the 0.01 s backoff
    assert ctx.text_out == "Answer after a rate limit."
    assert ctx.debug_info["retries"] == 1


async def test_retry_after_is_capped(
    http: httpx.AsyncClient, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="canopy.assistant.openai"):
        ctx, reqs, _ = await run(http, fake_llm, "rate_limited", retry_after_cap=0.05)
    assert [r["status"] for r in reqs] == [429, 200]
    assert retry_waits(caplog) == [0.05]  # Retry-After: 1, cut to the cap
    assert ctx.text_out == "Answer after a rate limit."
    assert ctx.debug_info["retries"] == 1


async def test_5xx_twice_then_success(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    ctx, reqs, _ = await run(http, fake_llm, "server_error_twice")
    assert [r["status"] for r in reqs] == [500, 503, 200]
    assert ctx.text_out == "Answer after two failures."
    assert ctx.debug_info["retries"] == 2


async def test_5xx_forever_gives_502_after_two_retries(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    err, reqs, ctx = await fails(http, fake_llm, "server_error_forever", 502)
    assert len(reqs) == 3
    assert "HTTP 500" in err.message and "The server had an error" in err.detail
    assert ctx.debug_info["error"] == 502


# ---------------------------------------------------------------------------------- failures


async def test_401_names_bad_credentials(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    err, reqs, _ = await fails(http, fake_llm, "plain_text", 502, key=SECRET_KEY)
    assert len(reqs) == 1 and reqs[0]["status"] == 401
    assert "credentials" in err.message and "LLM_API_KEY" in err.message
    assert SECRET_KEY not in err.message and SECRET_KEY not in str(err) and SECRET_KEY not in repr(err)
    assert "[redacted]" in err.detail  # the server echoed the key; it was scrubbed (and stays in the log)


async def test_403_names_bad_credentials(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    err, _, _ = await fails(http, fake_llm, "forbidden", 502)
    assert "credentials" in err.message and "HTTP 403" in err.message


async def test_unknown_model_is_502(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    err, _, _ = await fails(http, fake_llm, "not_found", 502)
    assert "HTTP 404" in err.message and "does not exist" in err.detail


@pytest.mark.parametrize(
    ("scenario", "words"),
    [
        ("malformed_json", "malformed JSON"),
        ("stream_error", "server had an error"),
        ("stream_cut", "cut"),
        ("stream_cut_eof", "ended before"),
    ],
)
async def test_broken_streams_are_502(http: httpx.AsyncClient, fake_llm: FakeLLM, scenario: str, words: str) -> None:
    err, _, ctx = await fails(http, fake_llm, scenario, 502)
    assert words in err.message + err.detail
    assert ctx.text_out.startswith("Partial") or ctx.text_out.startswith("This")


async def test_connection_refused_is_502(http: httpx.AsyncClient) -> None:
    from tests.helpers import free_port

    provider = make_provider(http, f"http://127.0.0.1:{free_port()}/v1", "plain_text", "x")
    with pytest.raises(ProviderError) as info:
        await provider.run_turn(Ctx())
    assert info.value.code == 502
    assert "cannot connect" in info.value.message


async def not_hung(work: Awaitable[T], guard: float, what: str) -> T:
    """``work``, or a failure saying it hung: a bound far above the expected time (no timing assertion)."""
    try:
        return await asyncio.wait_for(work, guard)
    except TimeoutError:
        pytest.fail(f"hung: {what} (nothing after {guard:g} s)")


async def abandoned(fake: FakeLLM, tag: str) -> dict[str, Any]:
    """The fake server's view of the request of ``tag``: its connection closed by the client, unfinished."""
    closed = await fake.wait_closed(tag, timeout=HANG_GUARD)
    assert closed["closed"] is True, f"hung: the upstream request stayed open for {HANG_GUARD:g} s: {closed}"
    assert closed["client_closed"] is True and closed["finished"] is False, closed
    return closed


@pytest.mark.parametrize("scenario", ["hang", "hang_after_headers"])
async def test_silence_times_out_with_504(http: httpx.AsyncClient, fake_llm: FakeLLM, scenario: str) -> None:
    # The overall timeout is far away: only the silence timeout can end this within the guard.
    err, reqs, _ = await not_hung(
        fails(http, fake_llm, scenario, 504, timeout=0.3, overall_timeout=600),
        HANG_GUARD,
        "the 0.3 s silence timeout never fired",
    )
    assert err.message.startswith("the LLM provider sent nothing for 0.3 s"), err.message
    assert len(reqs) == 1, "a timed-out request is not retried"
    await abandoned(fake_llm, reqs[0]["tag"])  # the silent request is given up, not left open


async def test_keepalives_forever_hit_the_overall_timeout(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    err, reqs, _ = await not_hung(
        fails(http, fake_llm, "keepalive_forever", 504, timeout=0.3, overall_timeout=1.5),
        HANG_GUARD,
        "the 1.5 s overall timeout never fired",
    )
    assert err.message == "the LLM provider did not finish within 1.5 s", err.message  # not the silence timeout
    closed = await abandoned(fake_llm, reqs[0]["tag"])
    # N keep-alives have at least N - 1 of the server's pauses (KEEPALIVE_INTERVAL) between them, so this many span
    # more than the 0.3 s silence timeout: the keep-alives kept it from firing, and the connection outlived it.
    beats = round(0.3 / KEEPALIVE_INTERVAL) + 2
    assert closed["keepalives"] >= beats, closed


async def test_cancel_closes_the_upstream(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    tag = new_tag()
    streaming = asyncio.Event()

    async def on_text(_: str) -> None:
        streaming.set()

    ctx = Ctx(options=TurnOptions(on_text=on_text))
    # slow_stream takes a minute; the provider's own timeouts are far away: only the cancel can close it sooner.
    provider = make_provider(http, fake_llm, "slow_stream", tag, timeout=600)
    task = asyncio.create_task(provider.run_turn(ctx))
    await not_hung(streaming.wait(), HANG_GUARD, "the slow stream never started")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await not_hung(task, HANG_GUARD, "the cancelled turn never ended")
    await abandoned(fake_llm, tag)  # closed by the client while the stream still had ticks to send
    assert "debug" not in ctx.kinds()


async def test_cancel_while_the_server_hangs(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    tag = new_tag()
    provider = make_provider(http, fake_llm, "hang", tag, timeout=600)  # no timeout closes it meanwhile
    task = asyncio.create_task(provider.run_turn(Ctx()))
    # the request is in flight once the server recorded it (a server-side long poll, no sleeping)
    for _ in range(200):
        if await fake_llm.requests(tag):
            break
    assert await fake_llm.requests(tag), "the request never reached the server"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await not_hung(task, HANG_GUARD, "the cancelled turn never ended")
    await abandoned(fake_llm, tag)


# ---------------------------------------------------------------------------------- the key


async def test_api_key_never_logged_or_shown(
    http: httpx.AsyncClient, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[ProviderError] = []
    for scenario, key in [
        ("plain_text", API_KEY),
        ("multi_round", API_KEY),
        ("stream_error", API_KEY),
        ("server_error_forever", API_KEY),
        ("plain_text", SECRET_KEY),
    ]:
        provider = make_provider(http, fake_llm, scenario, new_tag(), key=key)
        assert key not in repr(provider) and key not in str(vars(provider).get("_key"))
        try:
            await provider.run_turn(Ctx())
        except ProviderError as error:
            errors.append(error)
    assert len(errors) == 3
    assert caplog.records, "expected some log records"
    for record in caplog.records:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        assert API_KEY not in text and SECRET_KEY not in text, text
    for exc in errors:
        for text in (str(exc), repr(exc), exc.message, str(exc.__cause__), str(exc.__context__)):
            assert API_KEY not in text and SECRET_KEY not in text


# ---------------------------------------------------------------------------------- SSE parser


def parse_all(pieces: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    out: list[SSEEvent] = []
    for p in pieces:
        out += parser.feed(p)
    return out + parser.close()


def test_sse_basics() -> None:
    stream = b": comment\n\ndata: one\n\ndata:two\r\n\r\ndata: a\ndata: b\n\nevent: e\nid: 7\ndata: c\r\rdata: [DONE]"
    events = parse_all([stream])
    assert [e.data for e in events] == ["one", "two", "a\nb", "c", "[DONE]"]
    assert events[3].event == "e" and events[3].id == "7"


def test_sse_cr_then_lf_across_pieces_is_one_line_end() -> None:
    assert [e.data for e in parse_all([b"data: x\r", b"\n\r", b"\ndata: y\r\n\r\n"])] == ["x", "y"]


def test_sse_utf8_split_inside_a_character() -> None:
    raw = "data: ☕ café\n\n".encode()
    assert [e.data for e in parse_all([raw[:7], raw[7:9], raw[9:]])] == ["☕ café"]


def test_sse_rejects_endless_lines_and_bad_utf8() -> None:
    parser = SSEParser(max_line_bytes=100)
    with pytest.raises(SSEError):
        parser.feed(b"data: " + b"x" * 200)
    with pytest.raises(SSEError):
        SSEParser().feed(b"data: \xff\xfe\n\n")


_event_text = st.text(st.characters(blacklist_categories=cast(Any, ("Cs",)), blacklist_characters="\r\n"), max_size=30)


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    events = draw(st.lists(st.lists(_event_text, min_size=1, max_size=3), max_size=8))
    out: list[str] = []
    for lines in events:
        if draw(st.booleans()):
            out.append(":" + draw(_event_text) + newline)
        for line in lines:
            spaced = line.startswith(" ") or draw(st.booleans())  # "data:" + " x" would lose the space
            out.append(("data: " if spaced else "data:") + line + newline)
        out.append(newline)
    expected = ["\n".join(lines) for lines in events]
    return "".join(out).encode(), expected


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=20)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_sse_any_split_yields_the_same_events(data: st.DataObject) -> None:
    raw, expected = data.draw(sse_streams())
    pieces = data.draw(splits(raw))
    assert [e.data for e in parse_all(pieces)] == expected
    assert [e.data for e in parse_all([raw])] == expected


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_sse_arbitrary_bytes_are_split_independent(data: st.DataObject) -> None:
    raw = data.draw(st.binary(max_size=200) | st.text(alphabet="data: x\r\n:é", max_size=200).map(str.encode))
    pieces = data.draw(splits(raw))

    def outcome(chunks: list[bytes]) -> Any:
        try:
            return [(e.data, e.event, e.id) for e in parse_all(chunks)]
        except SSEError:
            return "error"

    assert outcome(pieces) == outcome([raw])


# ---------------------------------------------------------------------------------- tools


def test_tool_schemas_are_strict() -> None:
    def walk(schema: Any) -> None:
        if isinstance(schema, dict):
            if schema.get("type") == "object" or (isinstance(schema.get("type"), list) and "object" in schema["type"]):
                assert schema["additionalProperties"] is False
                assert set(schema["required"]) == set(schema["properties"])
            for key in ("minItems", "minLength", "pattern", "minimum"):
                assert key not in schema
            for v in schema.values():
                walk(v)
        elif isinstance(schema, list):
            for v in schema:
                walk(v)

    for tool in TOOLS:
        assert tool["function"]["strict"] is True
        walk(tool["function"]["parameters"])


@pytest.mark.parametrize(
    ("name", "args", "words"),
    [
        ("add_nodes", '{"parent_id": "root", "values": []}', "non-empty"),
        ("add_nodes", '{"parent_id": "root", "values": ["a"], "extra": 1}', "unexpected"),
        ("add_nodes", '{"parent_id": 5, "values": ["a"]}', "string"),
        ("add_nodes", '{"parent_id": "root", "values": ["a"], "index": "2"}', "integer"),
        ("update_node", '{"node_id": "n-1", "value": null, "props": null}', "give a new"),
        ("update_node", '{"node_id": "n-1", "value": null, "props": [{"k": 1}]}', "key"),
        ("move_node", '{"node_id": "n-1"}', "new_parent_id"),
        ("remove_node", "[1]", "object"),
        ("explode", "{}", "unknown tool"),
        ("remove_node", '{"node_id": "n-1"', "not valid JSON"),
    ],
)
def test_tool_argument_errors(name: str, args: str, words: str) -> None:
    with pytest.raises(ToolArgumentError) as info:
        parse_arguments(name, args)
    assert words in str(info.value)


def test_tool_arguments_accept_pairs_objects_and_missing_nullables() -> None:
    assert parse_arguments("update_node", '{"node_id": "a", "props": [{"key": "k", "value": 1}]}') == {
        "node_id": "a",
        "value": None,
        "props": {"k": 1},
    }
    assert parse_arguments("update_node", '{"node_id": "a", "value": "x", "props": {"k": null}}')["props"] == {
        "k": None
    }
    assert parse_arguments("add_nodes", '{"parent_id": "root", "values": "One"}')["values"] == ["One"]


# ---------------------------------------------------------------------------------- context


def big_tree(groups: int = 30, items: int = 100) -> Tree:
    node = {
        "id": "root",
        "value": "Root",
        "children": [
            {
                "id": f"g-{g}",
                "value": f"Group {g}",
                "children": [
                    {
                        "id": f"i-{g}-{i}",
                        "value": f"Item {g}-{i}",
                        "props": {"n": i},
                        "children": [{"id": f"d-{g}-{i}", "value": f"Detail of {g}-{i}", "children": []}],
                    }
                    for i in range(items)
                ],
            }
            for g in range(groups)
        ],
    }
    return Tree.from_dict(node)


def test_outline_small_tree_is_complete() -> None:
    tree = Tree.from_dict(
        {
            "id": "root",
            "value": "Root",
            "children": [
                {
                    "id": "n-1",
                    "value": "Tasks",
                    "props": {"priority": "high", "done": False, "note": "a, b"},
                    "children": [{"id": "n-2", "value": "Write\nreport", "children": []}],
                }
            ],
        }
    )
    o = outline(tree, budget=10_000)
    assert o.omitted == 0 and o.shown == 3
    assert o.text.splitlines() == [
        "- Root [id=root]",
        '  - Tasks [id=n-1] {priority: high, done: false, note: "a, b"}',
        "    - Write report [id=n-2]",
    ]


def test_outline_budget_keeps_top_levels_and_named_nodes() -> None:
    tree = big_tree()
    total = len(tree)
    o = outline(tree, budget=4000, prompt="Rename 'Item 17-42' and move d-3-99 under Group 5")
    assert len(o.text) <= 4000
    lines = o.text.splitlines()
    assert lines[0] == "- Root [id=root]"
    assert o.shown + o.omitted == total and o.omitted > 0
    assert f"{o.omitted} of {total} nodes are not shown" in lines[-1]
    # all top-level groups are there (breadth-first)
    for g in range(30):
        assert f"[id=g-{g}]" in o.text
    # named nodes and their ancestors
    assert any(line.startswith("    - Item 17-42 [id=i-17-42] {n: 42}") for line in lines)
    assert "      - Detail of 3-99 [id=d-3-99]" in lines
    assert "    - Item 3-99 [id=i-3-99] {n: 99}" in lines
    assert "[id=i-17-4]" not in o.text  # 'Item 17-4' is not named by 'Item 17-42'
    # a group that lost children says so
    assert any(line.startswith("  - Group 0 [id=g-0] (+") and "more children not shown" in line for line in lines)
    # every shown node's parent is shown right above it in the indentation
    depth_stack: list[int] = []
    for line in lines[:-1]:
        depth = (len(line) - len(line.lstrip(" "))) // 2
        assert depth <= len(depth_stack)
        depth_stack = [*depth_stack[:depth], depth]


def test_outline_tiny_budget_still_has_root() -> None:
    o = outline(big_tree(3, 3), budget=10, prompt="")
    assert o.text.splitlines()[0] == "- Root [id=root] (+3 more children not shown)"
    assert o.shown == 1


def test_named_nodes_by_value_and_id() -> None:
    tree = big_tree(3, 3)
    assert set(named_nodes(tree, "put i-1-2 under group 2")) == {"g-2", "i-1-2"}
    assert "g-1" in named_nodes(tree, "collapse 'Group 1' please")


def test_history_trimmed_and_prompt_not_duplicated() -> None:
    history = [ChatMessage("user", f"u{i}") if i % 2 == 0 else ChatMessage("assistant", f"a{i}") for i in range(10)]
    msgs = history_messages([*history, ChatMessage("user", "now")], 4, "now")
    assert [m["content"] for m in msgs] == ["u6", "a7", "u8", "a9"]
    assert history_messages(history, 0, "x") == []
    built = build_messages(Tree(), "now", history, context_chars=32_000, history_messages_limit=3)
    assert [m["role"] for m in built] == ["system", "assistant", "user", "assistant", "user"]
    assert built[-1]["content"] == "now"


async def test_by_prompt_picks_the_scenario_from_the_prompt(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    tag = new_tag()
    ctx = Ctx(prompt=f"Please add things [scenario:multi_round:{tag}]")
    await make_provider(http, fake_llm, "by_prompt", "outer").run_turn(ctx)
    assert ctx.text_out == "Added Groceries with Milk and Eggs."
    assert [r["scenario"] for r in await fake_llm.requests(tag)] == ["multi_round"] * 3
    ctx = Ctx(prompt="hello there")
    await make_provider(http, fake_llm, "by_prompt", "outer").run_turn(ctx)
    assert ctx.text_out == "You said: hello there"
