"""Unit tests of `Turn` and `TurnRunner` against a fake `TurnHost`: a turn reaches its session
only through that protocol, so these need no session, store or socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from canopy.assistant.base import ProviderError, TurnContext, TurnOutcome
from canopy.errors import CanopyError
from canopy.metrics import Metrics
from canopy.realtime.changes import Actor
from canopy.realtime.turns import Turn, TurnEnd, TurnRunner
from canopy.tree import Change, Tree
from tests.api.realtime_fakes import ScriptedProvider, add

ON_BEHALF = Actor("alice", "assistant")


class FakeHost:
    """Records what the turn asks of its session; applies deltas to a real tree."""

    id = "s1"

    def __init__(self) -> None:
        self.tree = Tree.from_dict({"id": "root", "value": "Root", "children": []})
        self.emitted: list[tuple[str, dict[str, Any]]] = []
        self.applied: list[tuple[Actor, dict[str, Any]]] = []
        self.undos = 0
        self.ended = asyncio.Event()
        self.end: TurnEnd | None = None

    async def emit(self, frame_type: str, data: dict[str, Any], frame_id: str | None) -> None:
        self.emitted.append((frame_type, data))

    async def apply_for_turn(self, actor: Actor, delta: dict[str, Any], frame_id: str | None) -> Change:
        change = self.tree.apply(delta)
        self.applied.append((actor, change.delta))
        return change

    async def undo_for_turn(self, actor: Actor, frame_id: str | None) -> None:
        if self.undos == 0:
            self.undos += 1
            return
        raise CanopyError(409, "Nothing to undo")

    async def redo_for_turn(self, actor: Actor, frame_id: str | None) -> None:
        raise CanopyError(409, "Nothing to redo")

    def recent_nodes(self) -> tuple[str, ...]:
        return ()

    @property
    def proposing(self) -> bool:
        return False

    async def end_turn(self, end: TurnEnd) -> None:
        self.end = end
        self.ended.set()


def start(runner: TurnRunner, host: FakeHost, provider: ScriptedProvider, prompt: str = "hi") -> None:
    runner.start(lambda: Turn(host, provider, Metrics(), ON_BEHALF, prompt, "p1", []))


async def ended(host: FakeHost, runner: TurnRunner) -> TurnEnd:
    await asyncio.wait_for(host.ended.wait(), 10)
    assert runner.task is not None
    await asyncio.wait_for(asyncio.shield(runner.task), 10)
    assert host.end is not None
    return host.end


async def test_a_turn_streams_through_its_host_and_ends_once() -> None:
    async def work(ctx: TurnContext) -> None:
        await ctx.reasoning("thinking")
        applied = await ctx.apply(add("a", "Alpha"))
        assert applied["node"]["id"] == "a" and ctx.tree.rev == 1
        await ctx.text("Added ")
        await ctx.text("")
        await ctx.text("Alpha")
        await ctx.debug({"usage": 3})

    host, runner = FakeHost(), TurnRunner()
    start(runner, host, ScriptedProvider(work))
    assert runner.running
    end = await ended(host, runner)
    assert not runner.running and runner.change_set is None
    assert [t for t, _ in host.emitted] == ["reasoning", "assistant_response", "assistant_response"]
    assert host.applied == [(ON_BEHALF, host.applied[0][1])]
    assert end.text == "Added Alpha" and end.failure is None and not end.cancelled
    assert end.meta == {"reasoning": [host.emitted[0][1]["text"]]}  # reasoning is stored with the answer
    assert end.debug["tree_updates"] == 1 and end.debug["usage"] == 3 and end.debug["provider"] == "scripted"
    assert end.frame_id == "p1"


async def test_a_second_turn_is_refused_while_one_runs() -> None:
    gate = asyncio.Event()
    host, runner = FakeHost(), TurnRunner()
    start(runner, host, ScriptedProvider(gate=gate))
    with pytest.raises(CanopyError) as info:
        start(runner, host, ScriptedProvider())
    assert info.value.code == 409
    gate.set()
    await ended(host, runner)
    host.ended.clear()
    start(runner, host, ScriptedProvider())  # and accepted once it has ended
    await ended(host, runner)


async def test_cancel_stops_the_provider_and_the_turn_still_ends() -> None:
    provider = ScriptedProvider(gate=asyncio.Event())
    host, runner = FakeHost(), TurnRunner()
    with pytest.raises(CanopyError, match="No turn is running"):
        await runner.cancel()
    start(runner, host, provider)
    await provider.started.wait()
    await runner.cancel()
    end = await ended(host, runner)
    assert end.cancelled and end.meta == {"cancelled": True} and end.failure is None


async def test_provider_errors_become_the_turns_failure() -> None:
    async def fail(ctx: TurnContext) -> None:
        raise ProviderError(504, "The model did not answer in time")

    async def crash(ctx: TurnContext) -> None:
        raise RuntimeError("bug")

    for step, code in ((fail, 504), (crash, 500)):
        host, runner = FakeHost(), TurnRunner()
        start(runner, host, ScriptedProvider(step))
        end = await ended(host, runner)
        assert end.failure is not None and end.failure.code == code
        assert end.meta == {"error": {"code": code, "message": end.failure.message}}


async def test_undo_from_a_turn_reports_whether_there_was_anything() -> None:
    results: list[bool] = []

    async def undo_twice(ctx: TurnContext) -> None:
        results.append(await ctx.undo())
        results.append(await ctx.undo())

    host, runner = FakeHost(), TurnRunner()
    start(runner, host, ScriptedProvider(undo_twice))
    await ended(host, runner)
    assert results == [True, False]


async def test_stop_waits_for_the_turn_to_end() -> None:
    host, runner = FakeHost(), TurnRunner()
    start(runner, host, ScriptedProvider(gate=asyncio.Event()))
    await runner.stop()
    assert not runner.running and host.end is not None and host.end.cancelled
    await runner.stop()  # nothing running: a no-op


async def test_a_cut_answer_is_reported_as_truncated() -> None:
    class CutShort:
        name = "cut"

        async def run_turn(self, ctx: TurnContext) -> TurnOutcome:
            await ctx.text("Half an ans")
            return TurnOutcome(truncated="length")

    host, runner = FakeHost(), TurnRunner()
    runner.start(lambda: Turn(host, CutShort(), Metrics(), ON_BEHALF, "hi", None, []))
    end = await ended(host, runner)
    assert end.truncated == "length" and end.meta == {"truncated": "length"} and end.failure is None
