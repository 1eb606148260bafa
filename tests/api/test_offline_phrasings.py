"""The offline assistant against sets of everyday phrasings (issue #14).

Each case in a set (tests/api/data/offline_phrasings.json; tests/api/data/offline_phrasings_more.json,
a second set written as people type, independently of the grammar; and any extra sets named in the
CANOPY_PHRASING_SETS environment variable, ':'-separated paths in the same format) starts from a named
tree, sends one or more prompts as turns, and is judged by the resulting tree ("expect", in the
notation of tests/api/offline_tree_notation.py) or by an unchanged tree plus words the reply must
contain ("unchanged" and "reply"). A set passes when at least 95% of its cases do and no case left a
junk node: a node whose value is in neither the starting nor the expected tree.

The turns run through `OfflineAssistant.run_turn` with a session stand-in that keeps one change set per
turn, undo/redo stacks and `recent_nodes` as the live session does (`canopy.assistant.base.touched_nodes`).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from canopy.assistant.base import ChatMessage, touched_nodes
from canopy.assistant.offline import OfflineAssistant
from canopy.tree import Change, Tree
from tests.api.offline_tree_notation import build, parse, render, shape, values

PUBLIC_SET = Path(__file__).parent / "data" / "offline_phrasings.json"
MORE_SET = Path(__file__).parent / "data" / "offline_phrasings_more.json"
PASS_RATE = 0.95


class Session:
    """A TurnContext stand-in with one change set per turn, as `canopy.realtime.session` keeps them."""

    def __init__(self, tree: Tree) -> None:
        self._tree = tree
        self.undo_stack: list[list[Change]] = []
        self.redo_stack: list[list[Change]] = []
        self._turn: list[Change] | None = None
        self._prompt = ""
        self.replies: list[str] = []

    async def turn(self, prompt: str) -> str:
        parts: list[str] = []
        self._prompt, self._turn = prompt, None
        self._parts = parts
        await OfflineAssistant(chunk_delay=0).run_turn(self)
        reply = "".join(parts)
        self.replies.append(reply)
        return reply

    @property
    def prompt(self) -> str:
        return self._prompt

    @property
    def tree(self) -> Tree:
        return self._tree

    @property
    def history(self) -> list[ChatMessage]:
        return []

    @property
    def recent_nodes(self) -> tuple[str, ...]:
        return touched_nodes(self._tree, [c.delta for c in self.undo_stack[-1]]) if self.undo_stack else ()

    @property
    def proposing(self) -> bool:
        return False

    async def reasoning(self, text: str) -> None:
        assert text

    async def text(self, chunk: str) -> None:
        self._parts.append(chunk)

    async def apply(self, delta: dict[str, Any]) -> dict[str, Any]:
        change = self._tree.apply(delta)
        if self._turn is None:
            self._turn = []
            self.undo_stack.append(self._turn)
            self.redo_stack.clear()
        self._turn.append(change)
        return change.delta

    async def undo(self) -> bool:
        if not self.undo_stack:
            return False
        changes = self.undo_stack.pop()
        for change in reversed(changes):
            self._tree.apply(change.inverse)
        self.redo_stack.append(changes)
        return True

    async def redo(self) -> bool:
        if not self.redo_stack:
            return False
        changes = self.redo_stack.pop()
        self.undo_stack.append([self._tree.apply(c.delta) for c in changes])
        return True

    async def debug(self, info: dict[str, Any]) -> None:
        assert info["provider"] == "offline"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def judge(case: dict[str, Any], trees: dict[str, str]) -> tuple[bool, bool, str]:
    """(passed, left junk, what happened) for one case."""
    start = parse(trees[case["tree"]])
    session = Session(build(trees[case["tree"]]))
    prompts = case["say"] if isinstance(case["say"], list) else [case["say"]]
    for prompt in prompts:
        asyncio.run(session.turn(prompt))
    reply = session.replies[-1]
    got = shape(session.tree)
    expected = start if case.get("unchanged") else parse(case["expect"])
    junk = values(got) - values(start) - values(expected)
    ok = got == expected and all(w.casefold() in reply.casefold() for w in case.get("reply", []))
    return (
        ok,
        bool(junk),
        f"{prompts!r}: got {render(got)!r}, reply {reply!r}" + (f", junk {sorted(junk)}" if junk else ""),
    )


def sets() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("CANOPY_PHRASING_SETS", "").split(":") if p]
    return [PUBLIC_SET, MORE_SET, *extra]


@pytest.mark.parametrize(("path", "least"), [(PUBLIC_SET, 150), (MORE_SET, 120)], ids=["public", "more"])
def test_the_sets_are_big_enough(path: Path, least: int) -> None:
    data = load(path)
    assert len(data["cases"]) >= least
    assert len({json.dumps([c["tree"], c["say"]]) for c in data["cases"]}) == len(data["cases"]), (
        "a case is listed twice"
    )


@pytest.mark.parametrize("path", sets(), ids=lambda p: p.name)
def test_phrasing_set(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = load(path)
    failed, junk = [], []
    for case in data["cases"]:
        ok, left_junk, what = judge(case, data["trees"])
        if not ok:
            failed.append(what)
        if left_junk:
            junk.append(what)
    total = len(data["cases"])
    rate = (total - len(failed)) / total
    with capsys.disabled():
        print(f"\n{path.name}: {total - len(failed)}/{total} phrasings pass ({rate:.1%}), {len(junk)} with junk nodes")
        for what in failed:
            print("  FAIL", what)
    assert not junk, f"junk nodes: {junk}"
    assert rate >= PASS_RATE, f"{rate:.1%} < {PASS_RATE:.0%}: {failed}"
