"""What trying the provider against a real proxy (LiteLLM) showed, fixed and pinned down (issue 13, section 5):

- malformed tool-call arguments are echoed back as valid JSON (strict servers refuse anything else, and so
  does the fake server now); the raw text reaches the model only in the tool error;
- 408 and 409 are retried, like 429 and 5xx (as the official OpenAI client does);
- an answer cut by ``finish_reason: length``/``content_filter`` says so in the turn's final frame and history;
- the round-limit note says what the rounds achieved.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from canopy.assistant.base import TurnOutcome
from canopy.assistant.openai import OpenAIProvider
from canopy.config import Settings
from tests.fake_llm.fixture import API_KEY, FakeLLM
from tests.support.openai import finals, make_provider, new_tag, openai_client, prompt, tool_messages
from tests.support.turn_context import FakeTurnContext as Ctx
from tests.support.ws import collect_turn, login, recv, session_socket

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


async def play(
    http: httpx.AsyncClient, fake: FakeLLM, scenario: str, **settings: Any
) -> tuple[Ctx, TurnOutcome, list[dict[str, Any]]]:
    tag = new_tag()
    ctx = Ctx()
    if settings:
        s = Settings(
            _env_file=None,
            llm_base_url=fake,
            llm_api_key=API_KEY,
            llm_model=f"scenario:{scenario}:{tag}",
            **settings,
        )
        provider = OpenAIProvider(http, s)
    else:
        provider = make_provider(http, fake, scenario, tag)
    outcome = await provider.run_turn(ctx)
    return ctx, outcome, await fake.requests(tag)


# ---------------------------------------------------------------------------------- malformed arguments


async def test_the_fake_server_refuses_arguments_that_are_not_json(fake_llm: FakeLLM) -> None:
    """The stand-in is as strict as LiteLLM's Anthropic translation, so the provider is tested against it."""

    def body(arguments: str) -> dict[str, Any]:
        return {
            "model": FakeLLM.model("plain_text"),
            "stream": True,
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "add_nodes", "arguments": arguments}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "{}"},
            ],
        }

    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        for bad in ('{"parent_id": "root", "values": ["Broken"', "[1, 2]", ""):
            r = await c.post(fake_llm + "/chat/completions", json=body(bad), headers=headers)
            assert r.status_code == 400, (bad, r.text)
            assert "arguments" in r.json()["error"]["message"]
        r = await c.post(fake_llm + "/chat/completions", json=body("{}"), headers=headers)
        assert r.status_code == 200, r.text


async def test_malformed_arguments_are_echoed_as_json_and_told_in_the_tool_error(
    http: httpx.AsyncClient, fake_llm: FakeLLM
) -> None:
    ctx, outcome, reqs = await play(http, fake_llm, "invalid_args")
    assert [r["status"] for r in reqs] == [200, 200, 200, 200]  # no round refused by the strict server
    assert ctx.values() == ["Fixed"] and ctx.text_out == "Fixed it on the third try."
    assert outcome == TurnOutcome()
    echoed = next(m for m in reqs[1]["body"]["messages"] if m.get("tool_calls"))
    assert echoed["tool_calls"][0]["id"] == "call_bad_0"
    assert json.loads(echoed["tool_calls"][0]["function"]["arguments"]) == {}
    error = json.loads(tool_messages(reqs[1]["body"])[-1]["content"])
    assert error["ok"] is False and "not valid JSON" in error["error"]
    assert '{"parent_id": "root", "values": ["Broken"' in error["error"]  # the raw text, for the model


# ---------------------------------------------------------------------------------- retries


async def test_408_and_409_are_retried(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    ctx, _, reqs = await play(http, fake_llm, "timeout_then_conflict")
    assert [r["status"] for r in reqs] == [408, 409, 200]
    assert ctx.text_out == "Answer after a timeout and a conflict."
    assert ctx.debug_info["retries"] == 2


# ---------------------------------------------------------------------------------- cut answers


@pytest.mark.parametrize(("scenario", "reason"), [("cut_at_length", "length"), ("content_filtered", "content_filter")])
async def test_a_cut_answer_is_reported(http: httpx.AsyncClient, fake_llm: FakeLLM, scenario: str, reason: str) -> None:
    ctx, outcome, _ = await play(http, fake_llm, scenario)
    assert outcome.truncated == reason
    assert ctx.debug_info["finish_reason"] == reason


async def test_a_finished_answer_is_not_cut(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    _, outcome, _ = await play(http, fake_llm, "plain_text")
    assert outcome.truncated is None


def test_the_final_frame_and_the_history_say_the_answer_was_cut(tmp_path: Path, fake_llm: FakeLLM) -> None:
    with openai_client(tmp_path, fake_llm, "scenario:by_prompt") as tc:
        token = login(tc)
        with session_socket(tc, token) as (ws, ready):
            prompt(ws, "Write a long story [scenario:cut_at_length]", "q1")
            cut = finals(collect_turn(ws))
            prompt(ws, "Say hello", "q2")
            whole = finals(collect_turn(ws))
        assert len(cut) == 1 and cut[0]["data"]["truncated"] == "length"
        assert cut[0]["data"]["text"] == "The first half of a long answer"
        assert len(whole) == 1 and "truncated" not in whole[0]["data"]

        with tc.websocket_connect("/ws/session") as ws:
            ws.send_json({"type": "init_session", "data": {"token": token, "session_id": ready["data"]["session_id"]}})
            assert recv(ws)["type"] == "session_ready"
            history = recv(ws)
        answers = [m for m in history["data"]["messages"] if m["role"] == "assistant"]
        assert [m.get("truncated") for m in answers] == ["length", None]


# ---------------------------------------------------------------------------------- the round limit


async def test_the_round_limit_note_says_nothing_changed(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    ctx, outcome, reqs = await play(http, fake_llm, "failing_tools", llm_max_rounds=2)
    assert len(reqs) == 2 and ctx.values() == []
    assert outcome.truncated is None
    assert ctx.text_out == (
        "\n\n(Stopped after 2 rounds without changing the tree: none of the assistant's "
        "2 tool calls could be applied; the last error: node 'no-such-node' does not exist.)"
    )


async def test_the_round_limit_note_counts_the_changes(http: httpx.AsyncClient, fake_llm: FakeLLM) -> None:
    ctx, _, _ = await play(http, fake_llm, "multi_round", llm_max_rounds=2)
    assert ctx.values() == ["Groceries"]
    assert ctx.text_out == (
        "\n\n(Stopped after 2 rounds of changes: 3 changes made, but the assistant had not finished.)"
    )
