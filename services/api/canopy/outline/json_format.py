"""JSON: the session's tree in the wire format, in an envelope naming the format.

Export: `{"format": "canopy-tree", "version": 1, "title": str, "rev": int, "tree": NODE}`.
Import takes that envelope or a bare node (`{"value", "props"?, "children"?}`); ids are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from canopy.outline.model import Budget, Document, Item, OutlineError
from canopy.tree import TreeLimits

FORMAT_NAME = "canopy-tree"
VERSION = 1


def render(title: str, rev: int, tree: Mapping[str, Any]) -> str:
    envelope = {"format": FORMAT_NAME, "version": VERSION, "title": title, "rev": rev, "tree": tree}
    return orjson.dumps(envelope, option=orjson.OPT_INDENT_2).decode() + "\n"


def parse(content: str, limits: TreeLimits) -> Document:
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise OutlineError(f"not valid JSON (column {exc.colno}): {exc.msg}", line=exc.lineno) from None
    title: str | None = None
    where = "$"
    if isinstance(data, dict) and "tree" in data:
        raw_title = data.get("title")
        if raw_title is not None and not isinstance(raw_title, str):
            raise OutlineError("'title' must be a string", element="$.title")
        title = raw_title
        data, where = data["tree"], "$.tree"
    return Document(title, _items(data, where, Budget(limits)))


def _items(raw: Any, where: str, budget: Budget) -> Item:
    """Builds the item tree iteratively (a file may nest as deep as it likes before it is refused)."""
    root = _item(raw, where, 1, budget)
    stack: list[tuple[Any, Item, str, int]] = [(raw, root, where, 1)]
    while stack:
        node, item, loc, depth = stack.pop()
        kids = node.get("children")
        if kids is None:
            continue
        if not isinstance(kids, list):
            raise OutlineError("'children' must be a list", element=f"{loc}.children")
        for i, kid in enumerate(kids):
            kid_loc = f"{loc}.children[{i}]"
            child = _item(kid, kid_loc, depth + 1, budget)
            item.children.append(child)
            stack.append((kid, child, kid_loc, depth + 1))
    return root


def _item(raw: Any, where: str, depth: int, budget: Budget) -> Item:
    if not isinstance(raw, dict):
        raise OutlineError("a node must be an object", element=where)
    value = raw.get("value")
    if not isinstance(value, str):
        raise OutlineError("'value' must be a string", element=where)
    props = raw.get("props") or {}
    if not isinstance(props, dict):
        raise OutlineError("'props' must be an object", element=where)
    item = Item(value, dict(props))
    budget.add(item, depth, element=where)
    return item
