"""Hypothesis: random interleavings of two editors' edits, undos, redos and proposal decisions
never break the tree's invariants, and every tab (applying the `tree_update`s it receives)
converges to the session's tree and to the tree a reload from storage builds.

The session, tree, turn runner, review host and frames are real; the tabs and the store are the
fakes of `realtime_fakes` (an in-memory store that keeps what a reload would see)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canopy.assistant.base import TurnContext
from canopy.errors import CanopyError
from canopy.metrics import Metrics
from canopy.ratelimit import SlidingWindow
from canopy.realtime.changes import Actor
from canopy.realtime.session import LiveSession, SessionConfig
from canopy.tree import ROOT_ID, Tree, TreeLimits
from tests.api.realtime_fakes import FakePeer, MemoryStore

USERS = (Actor("alice"), Actor("bob"))
LIMITS = TreeLimits(max_nodes=40, max_depth=5)


class PlannedProvider:
    """Applies the deltas planned for the next turn (each may fail: the assistant carries on)."""

    name = "planned"

    def __init__(self) -> None:
        self.plan: list[dict[str, Any]] = []

    async def run_turn(self, ctx: TurnContext) -> None:
        for delta in self.plan:
            with contextlib.suppress(CanopyError):
                await ctx.apply(delta)


def _delta(tree: Tree, kind: int, a: int, b: int, fresh: str) -> dict[str, Any]:
    ids = list(tree.iter_ids())
    node = ids[a % len(ids)]
    other = ids[b % len(ids)]
    if kind == 0 or (node == ROOT_ID and kind in (1, 2)):
        return {"action": "add", "path": tree.path(other) + "/children", "node": {"id": fresh, "value": fresh}}
    if kind == 1:
        return {"action": "remove", "path": tree.path(node)}
    if kind == 2:
        return {"action": "move", "path": tree.path(node), "to": tree.path(other) + "/children", "index": 0}
    return {"action": "update", "path": tree.path(node), "fields": {"value": f"{fresh}!"}}


Step = tuple[str, int, int, int, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(["op", "op", "undo", "redo", "propose", "decide"]),
        st.integers(0, 1),
        st.integers(0, 3),
        st.integers(0, 50),
        st.integers(0, 50),
    ),
    min_size=1,
    max_size=30,
)


def _check_invariants(tree: Tree) -> None:
    again = Tree.from_dict(tree.to_dict(), tree.rev, LIMITS)  # unique ids, limits, shape
    assert len(again) == len(tree)
    for node_id in tree.iter_ids():
        for child in tree.children(node_id):
            assert tree.parent(child) == node_id


def _check_undo_states(live: LiveSession, tabs: list[FakePeer]) -> None:
    """Every tab's latest undo_state is what its user's undo / redo would find now (no turn runs here)."""
    for i, tab in enumerate(tabs):
        user_id = USERS[i % 2].user_id
        expected = {
            "can_undo": any(cs.actor.user_id == user_id for cs in live.undo_stack),
            "can_redo": any(cs.actor.user_id == user_id for cs in live.redo_stack),
        }
        assert tab.of("undo_state")[-1]["data"] == expected, (user_id, expected)


async def _run(script: list[Step]) -> None:
    store = MemoryStore()
    provider = PlannedProvider()
    config = SessionConfig(LIMITS, 1000, provider, SlidingWindow(10_000, 60.0), 0)
    live = LiveSession(store.stored(members={"bob": "editor"}), store, Metrics(), config)
    tabs = [FakePeer() for _ in range(3)]
    for i, tab in enumerate(tabs):
        await live.attach(tab, None, None, USERS[i % 2].user_id)
    for counter, (kind, who, shape, a, b) in enumerate(script, start=1):
        actor = USERS[who]
        try:
            if kind == "op":
                await live.apply_op(actor, _delta(live.tree, shape, a, b, f"n{counter}"), live.tree.rev, None)
            elif kind == "undo":
                await live.undo(actor, None)
            elif kind == "redo":
                await live.redo(actor, None)
            elif kind == "propose":
                await live.set_review_mode(USERS[0], True)
                provider.plan = [_delta(live.tree, (shape + i) % 4, a + i, b, f"p{counter}-{i}") for i in range(3)]
                await live.prompt(actor, "go", None)
                assert live.turns.task is not None
                await live.turns.task
                await live.set_review_mode(USERS[0], False)
            elif kind == "decide" and live.proposals:
                proposal = list(live.proposals.values())[a % len(live.proposals)]
                n = len(proposal.deltas)
                accept: Any = "all" if shape == 0 else sorted({a % n, b % n})
                await live.decide(actor, proposal.id, accept, None)
        except CanopyError as exc:
            assert exc.code in (400, 404, 409), exc
        _check_invariants(live.tree)
        _check_undo_states(live, tabs)
    expected = orjson.loads(live.tree.to_json())
    for tab in tabs:
        mirror = Tree(LIMITS)
        for frame in tab.of("tree_update"):
            mirror.apply(frame["data"]["delta"])
            assert mirror.rev == frame["data"]["rev"]
        assert orjson.loads(mirror.to_json()) == expected
    reloaded = LiveSession(store.stored(members={"bob": "editor"}), store, Metrics(), config)
    assert orjson.loads(reloaded.tree.to_json()) == expected
    assert set(reloaded.proposals) == set(live.proposals)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_random_interleavings_converge(script: list[Step]) -> None:
    asyncio.run(_run(script))
