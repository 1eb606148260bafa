"""Unit tests of `LiveSession`, the one entry point for changing a session: fake tabs, an
in-memory store, a scripted provider; the session, tree, turn runner and frames are real."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from canopy.assistant.base import TurnContext
from canopy.errors import CanopyError
from canopy.metrics import Metrics
from canopy.protocol import PROTOCOL_VERSION, TreeLimitsData
from canopy.ratelimit import SlidingWindow
from canopy.realtime.changes import Actor
from canopy.realtime.errors import StorageError
from canopy.realtime.session import LiveSession, SessionConfig
from canopy.tree import DeltaError, TreeLimits
from tests.api.realtime_fakes import FakePeer, MemoryStore, ScriptedProvider, add

ALICE = Actor("alice", "user")


def make_session(
    store: MemoryStore | None = None, provider: ScriptedProvider | None = None, prompts_per_minute: int = 30
) -> tuple[LiveSession, MemoryStore, FakePeer]:
    store = store or MemoryStore()
    config = SessionConfig(
        TreeLimits(max_nodes=50, max_depth=4),
        100,
        provider or ScriptedProvider(),
        SlidingWindow(prompts_per_minute, 60.0),
        10,
    )
    live = LiveSession(store.stored(), store, Metrics(), config)
    peer = FakePeer()
    live.peers.add(peer)
    return live, store, peer


async def test_a_tree_op_is_stored_with_its_actor_then_broadcast() -> None:
    live, store, peer = make_session()
    other = FakePeer()
    live.peers.add(other)
    await live.apply_op(ALICE, add("a"), 0, "f1")
    assert live.tree.rev == 1 and "a" in live.tree
    assert [(cs.number, cs.actor) for cs in store.change_sets.values()] == [(1, ALICE)]
    for tab in (peer, other):
        (update,) = tab.of("tree_update")
        assert update["data"]["origin"] == "user" and update["data"]["rev"] == 1 and update["id"] == "f1"
        assert update["seq"] == 1


async def test_a_bad_delta_is_the_one_error_type_and_changes_nothing() -> None:
    live, store, peer = make_session()
    with pytest.raises(CanopyError) as info:
        await live.apply_op(ALICE, {"action": "remove", "path": "/root/nope"}, 0, None)
    assert isinstance(info.value, DeltaError) and info.value.code == 404
    assert live.tree.rev == 0 and store.log == [] and peer.frames == []


async def test_a_failed_commit_reverts_the_tree_and_sends_nothing() -> None:
    live, store, peer = make_session()
    store.failing = True
    with pytest.raises(StorageError):
        await live.apply_op(ALICE, add("a"), 0, None)
    assert "a" not in live.tree and live.tree.rev == 0 and peer.frames == [] and live.undo_stack == []


async def test_undo_and_redo_walk_change_sets_and_survive_a_reload() -> None:
    live, store, peer = make_session()
    await live.apply_op(ALICE, add("a"), 0, None)
    await live.apply_op(ALICE, add("b"), 1, None)
    await live.undo(ALICE, "u")
    assert "b" not in live.tree and store.change_sets[2].undone
    assert peer.of("tree_update")[-1]["data"]["origin"] == "undo"
    reloaded, _, _ = make_session(store)
    assert [cs.number for cs in reloaded.undo_stack] == [1] and [cs.number for cs in reloaded.redo_stack] == [2]
    await reloaded.redo(ALICE, None)
    assert "b" in reloaded.tree
    with pytest.raises(CanopyError, match="Nothing to redo"):
        await reloaded.redo(ALICE, None)


async def test_a_base_rev_ahead_of_the_session_is_refused() -> None:
    live, _, _ = make_session()
    with pytest.raises(CanopyError) as info:
        await live.apply_op(ALICE, add("a"), 5, None)
    assert info.value.code == 409 and live.tree.rev == 0


async def test_a_prompt_runs_a_turn_whose_changes_are_the_assistants_on_the_users_behalf() -> None:
    async def build(ctx: TurnContext) -> None:
        await ctx.apply(add("x"))
        await ctx.apply(add("y"))
        await ctx.text("done")

    provider = ScriptedProvider(build)
    live, store, peer = make_session(provider=provider)
    await live.prompt(ALICE, "make two", "p1")
    await _turn_ended(live)
    (change_set,) = store.change_sets.values()
    assert change_set.actor == Actor("alice", "assistant") and len(change_set.changes) == 2
    assert [m.role for m in store.messages] == ["user", "assistant"] and store.messages[1].content == "done"
    assert peer.types() == [
        "chat_message",
        "tree_update",
        "tree_update",
        "assistant_response",
        "debug",
        "assistant_response",
    ]
    assert [f["data"]["origin"] for f in peer.of("tree_update")] == ["assistant", "assistant"]
    assert {f["id"] for f in peer.frames} == {"p1"}
    await live.undo(ALICE, None)  # the whole turn undoes as one
    assert "x" not in live.tree and "y" not in live.tree


async def test_one_turn_at_a_time_and_no_undo_while_it_runs() -> None:
    gate = asyncio.Event()
    provider = ScriptedProvider(gate=gate)
    live, _, _ = make_session(provider=provider)
    await live.apply_op(ALICE, add("a"), 0, None)
    await live.prompt(ALICE, "one", None)
    with pytest.raises(CanopyError, match="already running"):
        await live.prompt(ALICE, "two", None)
    for action in (live.undo, live.redo):
        with pytest.raises(CanopyError, match="A turn is running"):
            await action(ALICE, None)
    assert not live.idle
    gate.set()
    await _turn_ended(live)
    await live.undo(ALICE, None)
    assert "a" not in live.tree


async def test_cancel_ends_the_turn_with_a_cancelled_answer() -> None:
    provider = ScriptedProvider(gate=asyncio.Event())  # never released
    live, store, peer = make_session(provider=provider)
    with pytest.raises(CanopyError, match="No turn is running"):
        await live.cancel(ALICE)
    await live.prompt(ALICE, "wait", None)
    await provider.started.wait()
    await live.cancel(ALICE)
    await _turn_ended(live)
    assert not live.turns.running
    assert peer.of("assistant_response")[-1]["data"] == {"text": "", "chunk": False, "cancelled": True}
    assert store.messages[-1].meta == {"cancelled": True}


async def test_prompts_are_rate_limited_per_user() -> None:
    live, store, _ = make_session(prompts_per_minute=1)
    await live.prompt(ALICE, "one", None)
    await _turn_ended(live)
    with pytest.raises(CanopyError) as info:
        await live.prompt(ALICE, "two", None)
    assert info.value.code == 429 and [m.content for m in store.messages if m.role == "user"] == ["one"]


async def test_rename_and_close_go_through_the_session() -> None:
    live, store, peer = make_session(provider=ScriptedProvider(gate=asyncio.Event()))
    await live.rename(ALICE, "Plans")
    assert live.title == store.title == "Plans"
    await live.prompt(ALICE, "wait", None)
    await live.close(1000, "session deleted")
    assert peer.closed == (1000, "session deleted") and not live.peers and not live.turns.running


async def test_attach_sends_the_protocol_version_and_the_servers_limits() -> None:
    live, _, _ = make_session()
    tab = FakePeer()
    await live.attach(tab, None, "c1")
    ready = tab.of("session_ready")[0]["data"]
    assert ready["protocol_version"] == PROTOCOL_VERSION
    assert ready["limits"] == dataclasses.asdict(TreeLimits(max_nodes=50, max_depth=4))
    assert set(ready["limits"]) == set(TreeLimitsData.model_fields)
    assert tab.types() == ["session_ready", "chat_history", "undo_state", "presence"] and tab in live.peers
    assert tab.of("undo_state")[0]["data"] == {"can_undo": False, "can_redo": False}


async def _turn_ended(live: LiveSession) -> None:
    """Waits for the running turn's own task (the runner's) to end; no polling."""
    task = live.turns.task
    assert task is not None
    await asyncio.wait_for(asyncio.shield(task), 10)
