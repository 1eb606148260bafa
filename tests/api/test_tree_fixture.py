"""Applies the shared reducer fixture (tests/fixtures/tree_cases.json) with the Python engine.

The TypeScript client reducer runs the same file, so both sides agree on every outcome.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from canopy.tree import DeltaError, Tree
from tests.api.test_tree import code_of

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tree_cases.json"
CASES: list[dict[str, Any]] = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    tree = Tree.from_dict(case["initial"])
    assert tree.rev == 0
    for i, step in enumerate(case["steps"]):
        before = tree.to_dict()
        try:
            tree.validate(step["delta"])
            validated: int | None = None
        except DeltaError as exc:
            validated = exc.code
        got = code_of(tree, step["delta"])
        assert got == step["error"], f"step {i}: {json.dumps(step['delta'])[:300]}"
        assert validated == got
        if got is not None:
            assert tree.to_dict() == before, f"step {i} failed but changed the tree"
            continue
        # the inverse of every applied step restores the tree exactly
        scratch = Tree.from_dict(before)
        change = scratch.apply(step["delta"])
        assert scratch.to_dict() == tree.to_dict()
        scratch.apply(change.inverse)
        assert scratch.to_dict() == before
    assert tree.to_dict() == case["final"]
    assert tree.rev == case["rev"]
    assert Tree.from_dict(case["final"]).to_dict() == case["final"]
    # the JSON the server sends: the same document, in the same key order as a fresh build
    assert orjson.loads(tree.to_json()) == case["final"]
    assert tree.to_json() == Tree.from_dict(case["final"]).to_json()


def test_fixture_is_consistent_and_covers_the_spec() -> None:
    names = [c["name"] for c in CASES]
    assert len(CASES) >= 25
    assert len(set(names)) == len(names)
    seen: set[tuple[str, int | None]] = set()
    for case in CASES:
        assert set(case) == {"name", "initial", "steps", "final", "rev"}
        assert case["rev"] == sum(1 for s in case["steps"] if s["error"] is None)
        for step in case["steps"]:
            assert set(step) == {"delta", "error"}
            assert step["error"] in (None, 400, 404, 409)
            delta = step["delta"]
            action = delta.get("action") if isinstance(delta, dict) else None
            seen.add((action if action in ("add", "update", "remove", "move") else "other", step["error"]))
    for action in ("add", "update", "remove", "move"):
        for code in (None, 400, 404, 409):
            assert (action, code) in seen, (action, code)
    assert ("other", 400) in seen
