"""In-process tree engine figures: one delta and one snapshot at 1k / 10k / 100k nodes.

The snapshot figure is what the server sends: ``Tree.to_json()``, the serialised tree (the
engine keeps the tree as its own JSON view, so this is one ``orjson.dumps``). Info figures
beside it: the whole ``session_ready`` frame with the live view embedded, ``Tree.to_dict()``
(fresh Python objects, for REST and tests), and the tree's memory (tracemalloc).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

import orjson

from bench.stats import median, percentile
from canopy.assistant.offline import plan
from canopy.tree import Tree, TreeLimits

FANOUT = 10


def build_tree(n: int) -> tuple[Tree, list[str]]:
    """A tree of exactly n nodes (root included), breadth-first with fan-out 10; returns leaf ids."""
    root: dict[str, Any] = {"id": "root", "value": "Root", "children": []}
    queue = [root]
    made = 1
    head = 0
    while made < n:
        parent = queue[head]
        head += 1
        for _ in range(FANOUT):
            if made >= n:
                break
            node = {"id": f"n{made}", "value": f"node {made}", "children": []}
            parent["children"].append(node)
            queue.append(node)
            made += 1
    tree = Tree.from_dict(root, limits=TreeLimits(max_nodes=max(n + 1000, 100_000)))
    leaves = [q["id"] for q in queue if not q["children"]]
    return tree, leaves


def tree_memory_mb(n: int) -> float:
    """Memory held by a tree of n nodes (nodes, strings, id index), by tracemalloc, in MB."""
    tree, _ = build_tree(n)
    data = tree.to_json()
    limits = tree.limits
    del tree
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        src = orjson.loads(data)
        tree = Tree.from_dict(src, limits=limits)
        del src  # the tree keeps its strings; the input's containers go
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(tree) == n
    return used / 1e6


def _ms_runs(fn: Any, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        r = fn()
        out.append((time.perf_counter() - t0) * 1000)
        del r
    return out


def _per_op_us(fn: Any, ops: int) -> list[float]:
    out = []
    pc = time.perf_counter_ns
    for i in range(ops):
        t0 = pc()
        fn(i)
        out.append((pc() - t0) / 1000)
    return out


def bench_size(n: int, ops: int, snapshot_runs: int) -> dict[str, Any]:
    tree, leaves = build_tree(n)
    leaf_paths = [tree.path(x) for x in leaves[:64]]
    mover = leaves[0]
    home = tree.parent(mover)
    other = next(p for p in (tree.parent(x) for x in leaves) if p not in (home, None))
    upd_path = leaf_paths[-1]

    def update(i: int) -> None:
        tree.apply({"action": "update", "path": upd_path, "fields": {"value": f"v{i}"}})

    # move one leaf back and forth between two parents (at the deepest level)
    a, b = tree.path(str(home)), tree.path(str(other))
    where = [a]

    def move(i: int) -> None:
        dst = b if where[0] == a else a
        tree.apply({"action": "move", "path": f"{where[0]}/{mover}", "to": f"{dst}/children"})
        where[0] = dst

    def add_remove(i: int) -> None:
        tree.apply({"action": "add", "path": f"{a}/children", "node": {"id": f"x{i}", "value": "x", "children": []}})
        tree.apply({"action": "remove", "path": f"{a}/x{i}"})

    result: dict[str, Any] = {"nodes": len(tree)}
    for name, fn in (("update", update), ("move", move), ("add+remove", add_remove)):
        fn(-1 if name != "add+remove" else ops + 1)  # warm-up
        samples = _per_op_us(fn, ops)
        result[name] = {"median_us": median(samples), "p99_us": percentile(samples, 99), "ops": ops}

    # what attach / resync send: the tree inside a frame, serialised at once (frames.encode)
    def frame() -> bytes:
        return orjson.dumps({"type": "session_ready", "data": {"initial_tree": tree.view(), "rev": tree.rev}})

    snaps = _ms_runs(tree.to_json, snapshot_runs)
    frames = _ms_runs(frame, snapshot_runs)
    dicts = _ms_runs(tree.to_dict, snapshot_runs)
    data = tree.to_json()
    assert orjson.loads(data) == tree.to_dict()
    result["snapshot"] = {
        "median_ms": median(snaps),
        "p99_ms": percentile(snaps, 99),
        "runs": snapshot_runs,
        "bytes": len(data),
        "frame_median_ms": median(frames),
        "to_dict_median_ms": median(dicts),
        "to_dict_p99_ms": percentile(dicts, 99),
    }
    result["plan"] = bench_plan(tree, snapshot_runs)
    result["memory"] = {"tree_mb": tree_memory_mb(n)}
    return result


def bench_plan(tree: Tree, runs: int) -> dict[str, float]:
    """The offline assistant's planning of one prompt, on the event loop in a turn: an add at the
    top level (no name to look up) and an add under a named node (one walk to index the names)."""
    rev = tree.rev
    top = _ms_runs(lambda: plan("add 'Bench' to the root", tree), runs)
    named = _ms_runs(lambda: plan("add 'Bench' under node 12", tree), runs)
    assert tree.rev == rev, "planning changed the tree"
    return {"top_median_ms": median(top), "named_median_ms": median(named), "named_p99_ms": percentile(named, 99)}


def run(quick: bool) -> dict[int, dict[str, Any]]:
    ops = 2000 if quick else 10_000
    snapshot_runs = 5 if quick else 15
    return {n: bench_size(n, ops, snapshot_runs) for n in (1_000, 10_000, 100_000)}


if __name__ == "__main__":
    print(orjson.dumps(run(True), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
