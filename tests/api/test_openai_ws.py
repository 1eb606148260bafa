"""The OpenAI-compatible provider end to end over the WebSocket: the real app (TestClient, real
SQLite) talking to the fake LLM server (a real process). The provider's own behaviour is covered in
test_openai_provider.py; these tests check what a client sees on /ws/session."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fake_llm.fixture import API_KEY, FakeLLM
from tests.helpers import free_port, wait_until
from tests.support.openai import finals, openai_client, prompt
from tests.support.ws import Frame, collect_turn, login, recv, session_socket

pytestmark = pytest.mark.timeout(60)  # also the hang guard of the socket reads, which have no timeout of their own
HANG_GUARD = 20.0  # seconds; far above what a step should take, not a timing assertion

WRONG_KEY = "sk-wrong-WS-SECRET-7e1d2c3b4a59"
EMPTY_TREE = {"id": "root", "value": "Root", "children": []}


# ---------------------------------------------------------------------------------- helpers


def new_tag() -> str:
    return uuid.uuid4().hex[:12]


def assert_quiet_then_pong(ws: Any) -> None:
    """Nothing more of the turn is pending: the very next frame answers a ping."""
    ws.send_json({"type": "ping", "data": {}, "id": "after"})
    pong = recv(ws)
    assert pong["type"] == "pong" and pong["id"] == "after", f"unexpected frame after the turn end: {pong}"


def assert_abandoned(fake_llm: FakeLLM, tag: str) -> None:
    """The fake server saw the client close the request of ``tag`` before the response was finished."""
    closed = asyncio.run(fake_llm.wait_closed(tag, timeout=HANG_GUARD))
    assert closed["closed"] is True, f"hung: the upstream request stayed open for {HANG_GUARD:g} s: {closed}"
    assert closed["client_closed"] is True and closed["finished"] is False, closed


def turn_errors(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f["type"] == "error"]


def chunks_text(frames: list[Frame]) -> str:
    return "".join(f["data"]["text"] for f in frames if f["type"] == "assistant_response" and f["data"]["chunk"])


def assert_seq_gapless(frames: list[Frame], after: int) -> None:
    seqs = [f.get("seq") for f in frames]
    assert seqs == list(range(after + 1, after + 1 + len(frames))), seqs


# A tiny independent model of the delta format, to check that the updates add up to the snapshot.


def _find(tree: dict[str, Any], path: str) -> dict[str, Any]:
    ids = [p for p in path.split("/") if p]
    assert ids and ids[0] == tree["id"], path
    node = tree
    for node_id in ids[1:]:
        node = next(c for c in node["children"] if c["id"] == node_id)
    return node


def _parent_of(tree: dict[str, Any], path: str) -> dict[str, Any]:
    return _find(tree, path.rstrip("/").rsplit("/", 1)[0])


def apply_delta(tree: dict[str, Any], delta: dict[str, Any]) -> None:
    action = delta["action"]
    if action == "add":
        parent = _find(tree, delta["path"].removesuffix("/children"))
        index = delta.get("index")
        index = len(parent["children"]) if index is None else min(index, len(parent["children"]))
        parent["children"].insert(index, copy.deepcopy(delta["node"]))
    elif action == "update":
        node = _find(tree, delta["path"])
        fields = delta["fields"]
        if "value" in fields and fields["value"] is not None:
            node["value"] = fields["value"]
        if fields.get("props") is not None:
            props = dict(node.get("props") or {})
            for k, v in fields["props"].items():
                if v is None:
                    props.pop(k, None)
                else:
                    props[k] = v
            node["props"] = props
    elif action == "remove":
        node = _find(tree, delta["path"])
        _parent_of(tree, delta["path"])["children"].remove(node)
    elif action == "move":
        node = _find(tree, delta["path"])
        _parent_of(tree, delta["path"])["children"].remove(node)
        parent = _find(tree, delta["to"].removesuffix("/children"))
        index = delta.get("index")
        index = len(parent["children"]) if index is None else min(index, len(parent["children"]))
        parent["children"].insert(index, node)
    else:  # pragma: no cover - a delta the contract does not know
        raise AssertionError(f"unknown delta {delta}")


def normalise(node: dict[str, Any]) -> dict[str, Any]:
    """Empty props and missing props are the same node."""
    out: dict[str, Any] = {
        "id": node["id"],
        "value": node["value"],
        "children": [normalise(c) for c in node["children"]],
    }
    if node.get("props"):
        out["props"] = dict(node["props"])
    return out


def values(node: dict[str, Any]) -> list[str]:
    return [c["value"] for c in node["children"]]


def by_value(node: dict[str, Any], value: str) -> dict[str, Any]:
    return next(c for c in node["children"] if c["value"] == value)


def resync(ws: Any) -> Frame:
    ws.send_json({"type": "resync", "data": {}})
    snap = recv(ws)
    assert snap["type"] == "tree_snapshot", snap
    return snap


# ---------------------------------------------------------------------------------- 1. tool turns


def _check_multi_round(tree: dict[str, Any]) -> None:
    assert values(tree) == ["Groceries"]
    assert values(tree["children"][0]) == ["Milk", "Eggs"]


def _check_all_tools(tree: dict[str, Any]) -> None:
    assert values(tree) == ["Inbox (3)", "Archive"]
    inbox, archive = tree["children"]
    assert inbox["props"] == {"color": "blue", "count": 3} and values(inbox) == []
    assert values(archive) == ["Old mail"]


def _check_parallel(tree: dict[str, Any]) -> None:
    assert values(tree) == ["Zero", "Alpha", "Beta", "Gamma"]
    assert by_value(tree, "Beta").get("props") == {"kind": "greek"}


def _check_split(tree: dict[str, Any]) -> None:
    assert values(tree) == ["Tâche ☕ 1", 'Task "2" {x}']


TOOL_SCENARIOS = {
    "multi_round": (_check_multi_round, "Added Groceries with Milk and Eggs.", 3, ["add"] * 3),
    "all_tools": (
        _check_all_tools,
        "Inbox renamed, old mail archived, Temp removed.",
        4,
        ["add", "add", "add", "update", "add", "move", "remove"],
    ),
    "parallel_tools": (_check_parallel, "Added four nodes.", 2, ["add"] * 4),
    "tool_calls_split": (_check_split, "Adding two nodes.Added both nodes.", 2, ["add"] * 2),
}


@pytest.mark.parametrize("scenario", list(TOOL_SCENARIOS))
def test_tool_turn_over_the_websocket(tmp_path: Path, fake_llm: FakeLLM, scenario: str) -> None:
    check_tree, text, rounds, actions = TOOL_SCENARIOS[scenario]
    tag = new_tag()
    with (
        openai_client(tmp_path, fake_llm, fake_llm.model(scenario, tag)) as tc,
        session_socket(tc, login(tc)) as (ws, ready),
    ):
        prompt(ws, "Please organise the tree.", "q1")
        frames = collect_turn(ws)
        assert_quiet_then_pong(ws)  # nothing after the end: one final, no trailing error

        types = [f["type"] for f in frames]
        assert types[0] == "chat_message" and frames[0]["data"]["content"] == "Please organise the tree."
        assert len(finals(frames)) == 1 and frames[-1] is finals(frames)[0]
        assert not turn_errors(frames), turn_errors(frames)
        final = frames[-1]
        assert final["data"]["chunk"] is False and not final["data"].get("cancelled")
        assert final["data"]["text"] == chunks_text(frames) == text

        updates = [f for f in frames if f["type"] == "tree_update"]
        assert [u["data"]["delta"]["action"] for u in updates] == actions
        assert all(u["data"]["origin"] == "assistant" for u in updates)
        assert [u["data"]["rev"] for u in updates] == list(range(1, len(updates) + 1))
        assert max(i for i, t in enumerate(types) if t == "tree_update") < len(frames) - 1
        assert types.count("debug") == 1 and types.index("debug") < len(frames) - 1
        debug = frames[types.index("debug")]["data"]
        assert json.dumps(debug)  # the debug frame is plain JSON
        assert all(f.get("id") == "q1" for f in frames)
        assert_seq_gapless(frames, ready["data"]["seq"])
        assert len(fake_llm.requests_sync(tag)) == rounds

        # the updates, applied in order to the initial tree, give the snapshot
        model = copy.deepcopy(ready["data"]["initial_tree"])
        for u in updates:
            apply_delta(model, u["data"]["delta"])
        snap = resync(ws)
        assert snap["data"]["rev"] == updates[-1]["data"]["rev"]
        assert normalise(snap["data"]["tree"]) == normalise(model)
        check_tree(snap["data"]["tree"])

        # one undo takes back the whole turn; a second has nothing left
        ws.send_json({"type": "undo", "data": {}, "id": "u1"})
        ws.send_json({"type": "ping", "data": {}, "id": "p-undo"})
        undone = []
        while (f := recv(ws))["type"] != "pong":
            undone.append(f)
        assert undone and all(f["type"] == "tree_update" and f["data"]["origin"] == "undo" for f in undone), undone
        assert all(f.get("id") == "u1" for f in undone)
        for u in undone:
            apply_delta(model, u["data"]["delta"])
        assert normalise(model) == EMPTY_TREE
        snap = resync(ws)
        assert normalise(snap["data"]["tree"]) == EMPTY_TREE
        assert snap["data"]["rev"] == undone[-1]["data"]["rev"] > updates[-1]["data"]["rev"]
        ws.send_json({"type": "undo", "data": {}})
        assert recv(ws)["error"]["code"] == 409


# ---------------------------------------------------------------------------------- 2. reasoning


@pytest.mark.parametrize("scenario", ["reasoning", "reasoning_content"])
def test_reasoning_frames(tmp_path: Path, fake_llm: FakeLLM, scenario: str) -> None:
    with (
        openai_client(tmp_path, fake_llm, fake_llm.model(scenario, new_tag())) as tc,
        session_socket(tc, login(tc)) as (ws, ready),
    ):
        prompt(ws, "Say hi.")
        frames = collect_turn(ws)
        assert_quiet_then_pong(ws)
    types = [f["type"] for f in frames]
    reasoning = [f for f in frames if f["type"] == "reasoning"]
    assert reasoning, types
    assert "".join(r["data"]["text"] for r in reasoning) == "Let me think about this.\nThe user wants a greeting."
    first_chunk = next(i for i, f in enumerate(frames) if f["type"] == "assistant_response")
    assert max(i for i, t in enumerate(types) if t == "reasoning") < first_chunk
    assert len(finals(frames)) == 1 and frames[-1]["data"]["text"] == chunks_text(frames) == "Hi there!"
    assert "Let me" not in frames[-1]["data"]["text"]  # reasoning does not leak into the answer
    assert types.index("debug") < len(frames) - 1
    assert_seq_gapless(frames, ready["data"]["seq"])


# ---------------------------------------------------------------------------------- 3. failures


FAILURES = [
    # (id, scenario, settings overrides, code, words in the message)
    ("401", "plain_text", {"key": WRONG_KEY}, 502, "credentials"),
    ("500-forever", "server_error_forever", {}, 502, "HTTP 500"),
    ("malformed-json", "malformed_json", {}, 502, "malformed JSON"),
    ("stream-error", "stream_error", {}, 502, "reported an error"),
    ("stream-cut", "stream_cut", {}, 502, "cut"),
    ("hang", "hang", {"llm_timeout_seconds": 0.3}, 504, "sent nothing for 0.3 s"),
    ("hang-after-headers", "hang_after_headers", {"llm_timeout_seconds": 0.3}, 504, "sent nothing for 0.3 s"),
    ("refused", None, {}, 502, "cannot connect"),
]


@pytest.mark.parametrize(
    ("scenario", "overrides", "code", "words"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_failure_ends_the_turn_with_one_error(
    tmp_path: Path, fake_llm: FakeLLM, scenario: str | None, overrides: dict[str, Any], code: int, words: str
) -> None:
    tag = new_tag()
    base_url = fake_llm if scenario is not None else f"http://127.0.0.1:{free_port()}/v1"
    with (
        openai_client(tmp_path, base_url, fake_llm.model("by_prompt", tag), **overrides) as tc,
        session_socket(tc, login(tc)) as (ws, ready),
    ):
        prompt(ws, f"Break please [scenario:{scenario or 'plain_text'}:{tag}]", "bad")
        frames = collect_turn(ws)
        if code == 504:  # the silence timeout (not the 1.5 s overall one) gave the request up, once
            assert len(fake_llm.requests_sync(tag)) == 1, "a timed-out request is not retried"
            assert_abandoned(fake_llm, tag)
        assert_quiet_then_pong(ws)  # exactly one end, and the socket still answers

        errors = turn_errors(frames)
        assert len(errors) == 1 and frames[-1] is errors[0], frames
        err = errors[0]
        assert err["error"]["code"] == code, err
        assert words in err["error"]["message"], err["error"]["message"]
        assert "seq" in err and err.get("id") == "bad"  # broadcast, correlated to the prompt
        assert not finals(frames), "a failed turn must not also send a final assistant_response"
        types = [f["type"] for f in frames]
        assert "debug" in types and types.index("debug") < len(frames) - 1
        assert_seq_gapless(frames, ready["data"]["seq"])
        for f in frames:
            assert WRONG_KEY not in json.dumps(f) and API_KEY not in json.dumps(f)
            # user terms only: neither the provider's address nor its answer (which may echo part of the key)
            assert "127.0.0.1" not in json.dumps(f) and WRONG_KEY[:6] not in json.dumps(f)

        # the session is free again: the next prompt runs a turn (not 409 busy)
        prompt(ws, "hello again", "next")
        after = collect_turn(ws)
        if scenario is not None and "key" not in overrides:
            assert finals(after) and after[-1]["data"]["text"] == "You said: hello again"
        else:
            assert after[-1]["type"] == "error" and after[-1]["error"]["code"] == code
        assert not any(f["type"] == "error" and f["error"]["code"] == 409 for f in after)


def test_partial_changes_stay_after_a_timeout(tmp_path: Path, fake_llm: FakeLLM) -> None:
    """gated_tools streams one complete tool call, then goes silent: the change is applied, then 504."""
    tag = new_tag()
    with (
        openai_client(tmp_path, fake_llm, fake_llm.model("gated_tools", tag), llm_timeout_seconds=0.5) as tc,
        session_socket(tc, login(tc)) as (ws, ready),
    ):
        prompt(ws, "Add two things.")
        frames = collect_turn(ws)
        assert_quiet_then_pong(ws)
        assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == 504, frames[-1]
        assert len(turn_errors(frames)) == 1 and not finals(frames)
        updates = [f for f in frames if f["type"] == "tree_update"]
        assert [u["data"]["delta"]["node"]["value"] for u in updates] == ["First"]
        assert chunks_text(frames) == "Working on it."
        assert_seq_gapless(frames, ready["data"]["seq"])
        snap = resync(ws)
        assert values(snap["data"]["tree"]) == ["First"] and snap["data"]["rev"] == 1
        # the partial turn is still one change set
        ws.send_json({"type": "undo", "data": {}})
        undo = recv(ws)
        assert undo["type"] == "tree_update" and undo["data"]["origin"] == "undo"
        assert values(resync(ws)["data"]["tree"]) == []


# ---------------------------------------------------------------------------------- 4. cancel


def test_cancel_during_a_slow_stream(tmp_path: Path, fake_llm: FakeLLM) -> None:
    tag = new_tag()
    with (
        # slow_stream takes a minute and the LLM timeouts are far away: only the cancel can end it sooner
        openai_client(tmp_path, fake_llm, fake_llm.model("slow_stream", tag), llm_timeout_seconds=600) as tc,
        session_socket(tc, login(tc)) as (ws, ready),
    ):
        prompt(ws, "Talk slowly.")
        frames: list[Frame] = []
        while not (frames and frames[-1]["type"] == "assistant_response"):
            frames.append(recv(ws))
        ws.send_json({"type": "cancel", "data": {}, "id": "stop"})
        frames += collect_turn(ws)
        assert_quiet_then_pong(ws)
        assert_abandoned(fake_llm, tag)  # the stream still had ticks to send when the app closed it

    final = frames[-1]
    assert len(finals(frames)) == 1 and final["data"]["cancelled"] is True and final["data"]["chunk"] is False
    assert not turn_errors(frames)
    assert final["data"]["text"] == chunks_text(frames) and final["data"]["text"].startswith("tick 0 ")
    types = [f["type"] for f in frames]
    assert "debug" in types and types.index("debug") < len(frames) - 1
    assert_seq_gapless(frames, ready["data"]["seq"])


def test_cancel_while_the_provider_hangs(tmp_path: Path, fake_llm: FakeLLM) -> None:
    tag = new_tag()
    model = fake_llm.model("hang", tag)
    # no LLM timeout fires meanwhile (a 504 instead of a cancelled answer, or a close the cancel did not make)
    with (
        openai_client(tmp_path, fake_llm, model, llm_timeout_seconds=600) as tc,
        session_socket(tc, login(tc)) as (ws, _),
    ):
        prompt(ws, "Anyone there?")
        assert recv(ws)["type"] == "chat_message"
        wait_until(lambda: bool(fake_llm.requests_sync(tag)), HANG_GUARD, "the request reaches the fake LLM")
        ws.send_json({"type": "cancel", "data": {}})
        frames = collect_turn(ws)
        assert_quiet_then_pong(ws)
        assert_abandoned(fake_llm, tag)
    assert frames[-1]["type"] == "assistant_response" and frames[-1]["data"]["cancelled"] is True
    assert len(finals(frames)) == 1 and not turn_errors(frames)


# ---------------------------------------------------------------------------------- 5. two tabs


def test_second_tab_sees_the_same_turns_including_errors(tmp_path: Path, fake_llm: FakeLLM) -> None:
    tag = new_tag()
    with openai_client(tmp_path, fake_llm, fake_llm.model("by_prompt", tag)) as tc:
        token = login(tc)
        with (
            session_socket(tc, token) as (tab1, ready1),
            session_socket(tc, token, session_id=ready1["data"]["session_id"]) as (tab2, ready2),
        ):
            assert ready2["data"]["seq"] == ready1["data"]["seq"]
            prompt(tab1, f"Shopping [scenario:multi_round:{tag}-a]", "t1")
            seen1, seen2 = collect_turn(tab1), collect_turn(tab2)
            assert seen1 == seen2  # same frames, same seqs, same ids
            assert [f["type"] for f in seen2].count("tree_update") == 3
            assert finals(seen2) and seen2[-1]["data"]["text"] == "Added Groceries with Milk and Eggs."

            prompt(tab2, f"Now break [scenario:stream_cut:{tag}-b]", "t2")
            fail2, fail1 = collect_turn(tab2), collect_turn(tab1)
            assert fail1 == fail2
            err = fail1[-1]
            assert err["type"] == "error" and err["error"]["code"] == 502 and err["id"] == "t2"
            assert err["seq"] == seen1[-1]["seq"] + len(fail1)
            assert fail1[0]["type"] == "chat_message" and fail1[0]["id"] == "t2"
            assert len(turn_errors(fail1)) == 1 and not finals(fail1)
            assert_quiet_then_pong(tab1)
            assert_quiet_then_pong(tab2)


# ---------------------------------------------------------------------------------- 6. the key


def test_api_key_in_no_frame_and_no_log(tmp_path: Path, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture) -> None:
    canopy_log = logging.getLogger("canopy")
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="canopy")
    canopy_log.addHandler(caplog.handler)  # in case logging was configured with propagate=False
    seen: list[str] = []
    try:
        tag = new_tag()
        with (
            openai_client(tmp_path / "good", fake_llm, fake_llm.model("by_prompt", tag)) as tc,
            session_socket(tc, login(tc)) as (ws, _),
        ):
            for name in ["multi_round", "reasoning", "stream_error", "server_error_forever", "echo"]:
                prompt(ws, f"go [scenario:{name}:{tag}-{name}]")
                seen += [json.dumps(f, ensure_ascii=False) for f in collect_turn(ws)]
            ws.send_json({"type": "resync", "data": {}})
            seen.append(json.dumps(recv(ws)))
        (tmp_path / "bad").mkdir()
        with (
            openai_client(tmp_path / "bad", fake_llm, fake_llm.model("plain_text", tag), key=WRONG_KEY) as tc,
            session_socket(tc, login(tc)) as (ws, _),
        ):
            prompt(ws, "hello")
            frames = collect_turn(ws)
            assert frames[-1]["error"]["code"] == 502
            # the server echoed the key back: the user hears only that the credentials were refused
            assert "credentials" in frames[-1]["error"]["message"] and "Incorrect" not in frames[-1]["error"]["message"]
            seen += [json.dumps(f, ensure_ascii=False) for f in frames]
    finally:
        canopy_log.removeHandler(caplog.handler)

    assert any('"error"' in s for s in seen) and any("tree_update" in s for s in seen)
    for s in seen:
        assert API_KEY not in s and WRONG_KEY not in s, s
    records = [r for r in caplog.records if r.name.startswith("canopy")]
    assert any(r.name.startswith("canopy.assistant") for r in records), "expected provider log records"
    for r in records:
        text = r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        assert API_KEY not in text and WRONG_KEY not in text, text
    assert WRONG_KEY not in caplog.text and API_KEY not in caplog.text
