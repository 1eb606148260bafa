"""The offline assistant's planning cost per prompt, in-process, across checkouts in alternation.

    .venv/bin/python -m bench.offline_planner [CHECKOUT ...] [--rounds 5] [--runs 2000] [--passes 5]

Times what `OfflineAssistant.run_turn` calls to plan (`canopy.assistant.offline.plan(prompt, tree)`,
a module in one file before issue #13 and a package after it, the same call in both) on:

- the burst prompt of `make bench` ("add item p123 to root") on a tree of 100 nodes shaped like a
  burst session's (the root and 99 earlier "item pN" nodes): CPU microseconds per plan;
- every prompt of the phrasing sets (tests/api/data/offline_phrasings*.json), each on its case's
  starting tree padded to ~100 nodes (an "Archive" node with "Record N" children): CPU milliseconds for
  one pass over all of them. A checkout that predates the sets still plans them (mostly to a "not
  understood" reply), so compare this figure between checkouts that understand them.

Each CHECKOUT (default: this one) is a directory holding a Canopy tree (`git worktree add /tmp/old-ad
ad94848` will do); each run is a fresh interpreter with that checkout's `services/api` first on its
path. Checkouts run in alternation, `--rounds` times, because this machine's speed drifts by ~2x within
minutes: compare the medians, and the per-round ratios, not one run. Planning never changes the tree
(its trial changes are reverted), so one tree serves every run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import median

ROOT = Path(__file__).resolve().parent.parent
SETS = [ROOT / "tests/api/data/offline_phrasings.json", ROOT / "tests/api/data/offline_phrasings_more.json"]
BENCH_PROMPT = "add item p123 to root"
TREE_SIZE = 100


# ---- the worker: runs inside one checkout's interpreter -----------------------------------------


def _with_ids(nodes: list[dict[str, Any]], counter: list[int]) -> list[dict[str, Any]]:
    out = []
    for node in nodes:
        counter[0] += 1
        item: dict[str, Any] = {"id": f"t{counter[0]}", "value": node["value"]}
        item["children"] = _with_ids(node.get("children", []), counter)
        if node.get("props"):
            item["props"] = node["props"]
        out.append(item)
    return out


def _count(nodes: list[dict[str, Any]]) -> int:
    return sum(1 + _count(n.get("children", [])) for n in nodes)


def _padded(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The case's nodes plus an 'Archive' of records, ~TREE_SIZE nodes with the root."""
    filler = max(0, TREE_SIZE - 2 - _count(nodes))
    records = [{"value": f"Record {i}", "children": []} for i in range(1, filler + 1)]
    return [*nodes, {"value": "Archive", "children": records}]


def _tree(tree_cls: Any, root_id: str, nodes: list[dict[str, Any]]) -> Any:
    return tree_cls.from_dict({"id": root_id, "value": "root", "children": _with_ids(nodes, [0])})


def _timed(fn: Callable[[], object], repeat: int) -> float:
    """CPU seconds of this process for `repeat` calls (other processes on the shared cores do not count;
    their cache and clock effects still do), garbage collection off (as the worker's frozen startup objects make
    collections rare, and so that one collection does not land on one checkout's run only)."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(repeat):
            fn()
        return time.process_time() - start
    finally:
        gc.enable()


def worker(runs: int, passes: int) -> dict[str, float]:
    from canopy.assistant.offline import plan  # the checkout's, first on sys.path
    from canopy.tree import ROOT_ID, Tree
    from tests.api.offline_tree_notation import parse

    burst = _tree(Tree, ROOT_ID, [{"value": f"item p{i}", "children": []} for i in range(TREE_SIZE - 1)])
    assert len(burst) == TREE_SIZE
    cases: list[tuple[str, Any]] = []
    for path in SETS:
        data = json.loads(path.read_text(encoding="utf-8"))
        trees = {name: _tree(Tree, ROOT_ID, _padded(parse(text))) for name, text in data["trees"].items()}
        for case in data["cases"]:
            for prompt in case["say"] if isinstance(case["say"], list) else [case["say"]]:
                cases.append((prompt, trees[case["tree"]]))

    def one_pass() -> None:
        for prompt, tree in cases:
            plan(prompt, tree)

    rev = burst.rev
    _timed(lambda: plan(BENCH_PROMPT, burst), max(1, runs // 10))  # warm-up: re's cache, imports
    one_pass()
    bench_us = _timed(lambda: plan(BENCH_PROMPT, burst), runs) / runs * 1e6
    sets_ms = median([_timed(one_pass, 1) * 1000 for _ in range(passes)])
    assert burst.rev == rev, "planning changed the tree"
    return {"bench_us": bench_us, "sets_ms": sets_ms, "prompts": len(cases)}


# ---- the driver ---------------------------------------------------------------------------------


def one_run(checkout: Path, runs: int, passes: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": f"{checkout / 'services/api'}{os.pathsep}{ROOT}"}
    out = subprocess.run(
        [sys.executable, "-m", "bench.offline_planner", "--worker", "--runs", str(runs), "--passes", str(passes)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="*", type=Path, default=[ROOT])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the checkouts (alternating)")
    parser.add_argument("--runs", type=int, default=2000, help="plans of the bench prompt per run")
    parser.add_argument("--passes", type=int, default=5, help="passes over the phrasing sets per run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.runs, args.passes)))
        return
    checkouts = [c.resolve() for c in args.checkouts]
    results: dict[Path, list[dict[str, float]]] = {c: [] for c in checkouts}
    for number in range(1, args.rounds + 1):
        for checkout in checkouts:
            r = one_run(checkout, args.runs, args.passes)
            results[checkout].append(r)
            print(
                f"round {number} {checkout}: bench prompt {r['bench_us']:.1f} µs/plan, "
                f"phrasing sets {r['sets_ms']:.1f} ms/pass ({r['prompts']:.0f} prompts)",
                flush=True,
            )
    first = checkouts[0]
    for checkout in checkouts:
        rows = results[checkout]
        ratios = [r["bench_us"] / f["bench_us"] for r, f in zip(rows, results[first], strict=True)]
        sets_ratios = [r["sets_ms"] / f["sets_ms"] for r, f in zip(rows, results[first], strict=True)]
        print(
            f"{checkout}: median bench prompt {median([r['bench_us'] for r in rows]):.1f} µs/plan "
            f"(x{median(ratios):.2f} of the first checkout's, per round), median phrasing sets "
            f"{median([r['sets_ms'] for r in rows]):.1f} ms/pass (x{median(sets_ratios):.2f})"
        )


if __name__ == "__main__":
    main()
