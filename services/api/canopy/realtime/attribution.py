"""What a change touched and how to say it in words: for history, proposals and per-user undo.

Everything here reads normalised deltas (`canopy.tree.Change.delta` and `.inverse`), which name
nodes by id paths (`/root/a/b`, `/root/a/children`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from canopy.tree import Change

SUMMARY_ITEMS = 3


def _last(path: str) -> str:
    parts = path.rstrip("/").split("/")
    return parts[-2] if parts[-1] == "children" else parts[-1]


def path_ids(path: str) -> list[str]:
    """The node ids a path names, root first (`/root/a/children` -> root, a)."""
    return [p for p in path.split("/") if p and p != "children"]


def subtree_ids(node: dict[str, Any]) -> Iterator[str]:
    yield node["id"]
    for child in node.get("children") or ():
        yield from subtree_ids(child)


def target(delta: dict[str, Any]) -> str:
    """The node a delta is about: the added node, or the one its path ends at."""
    if delta["action"] == "add":
        return str(delta["node"]["id"])
    return _last(delta["path"])


def _label(delta: dict[str, Any], inverse: dict[str, Any] | None) -> str:
    action = delta["action"]
    if action == "add":
        return repr(delta["node"]["value"])
    if action == "remove" and inverse is not None and "node" in inverse:
        return repr(inverse["node"]["value"])
    if action == "update" and "value" in (delta.get("fields") or {}):
        return repr(delta["fields"]["value"])
    return target(delta)


def summarise(pairs: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]) -> str:
    """`Add 'X', update 'Y', move n-1 and 2 more`: up to three changes in words."""
    if not pairs:
        return "No changes"
    words = [f"{delta['action']} {_label(delta, inverse)}" for delta, inverse in pairs[:SUMMARY_ITEMS]]
    text = ", ".join(words)
    if len(pairs) > SUMMARY_ITEMS:
        text += f" and {len(pairs) - SUMMARY_ITEMS} more"
    return text[0].upper() + text[1:]


def summarise_changes(changes: Sequence[Change]) -> str:
    return summarise([(ch.delta, ch.inverse) for ch in changes])


def touched(changes: Iterable[Change]) -> list[str]:
    """The top node of each change (added, removed, moved or updated), each once, in order."""
    return list(dict.fromkeys(target(ch.delta) for ch in changes))


def _own_nodes(change: Change) -> set[str]:
    """The nodes a change itself created, removed, moved or updated (whole subtrees for add/remove)."""
    delta = change.delta
    if delta["action"] == "add":
        return set(subtree_ids(delta["node"]))
    if delta["action"] == "remove" and "node" in change.inverse:
        return set(subtree_ids(change.inverse["node"]))
    return {target(delta)}


def needs(changes: Iterable[Change]) -> set[str]:
    """The nodes undoing (or redoing) these changes depends on: another user's later change to any
    of them blocks it."""
    out: set[str] = set()
    for change in changes:
        out |= _own_nodes(change)
    return out


def affects(changes: Iterable[Change]) -> set[str]:
    """The nodes these changes touched, including the parent an add or a move put something into
    (undoing an earlier add of that parent would take the newcomer with it)."""
    out: set[str] = set()
    for change in changes:
        out |= _own_nodes(change)
        delta = change.delta
        if delta["action"] == "add":
            out.add(_last(delta["path"]))
        elif delta["action"] == "move":
            out.add(_last(delta["to"]))
    return out
