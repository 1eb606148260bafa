"""The document model shared by the import/export formats, and the checks every import runs.

A `Document` is a title (when the format has one) and a root `Item`; the root's value and props
are the tree root's, its children the outline. Items carry no ids: an import gives every node a
fresh one, so a file can be imported any number of times, anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from canopy.tree import DeltaError, Scalar, Tree, TreeLimits

IMPORT_MAX_BYTES = 1_000_000  # of content (UTF-8); nginx refuses request bodies over 1 MiB anyway


class OutlineError(Exception):
    """Bad input: a reason and where (a 1-based line, or an element path such as `/opml/body/outline[2]`)."""

    def __init__(self, reason: str, *, line: int | None = None, element: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.element = element

    @property
    def message(self) -> str:
        if self.line is not None:
            return f"line {self.line}: {self.reason}"
        if self.element is not None:
            return f"{self.element}: {self.reason}"
        return self.reason

    def body(self) -> dict[str, Any]:
        """The 422 response body: `detail` as everywhere, plus where the problem is."""
        out: dict[str, Any] = {"detail": self.message, "reason": self.reason}
        if self.line is not None:
            out["line"] = self.line
        if self.element is not None:
            out["element"] = self.element
        return out


@dataclass(slots=True)
class Item:
    value: str
    props: dict[str, Scalar] = field(default_factory=dict)
    children: list[Item] = field(default_factory=list)

    def count(self) -> int:
        """Nodes in this item's subtree, itself included."""
        total, stack = 0, [self]
        while stack:
            item = stack.pop()
            total += 1
            stack.extend(item.children)
        return total

    def height(self) -> int:
        """Levels in this item's subtree (a leaf is 1)."""
        best, stack = 0, [(self, 1)]
        while stack:
            item, depth = stack.pop()
            best = max(best, depth)
            stack.extend((c, depth + 1) for c in item.children)
        return best


@dataclass(slots=True)
class Document:
    title: str | None
    root: Item


class Budget:
    """Checks each item as a parser makes it: the tree's own rules for values and props, and the
    node and depth limits, so an oversized or invalid file is refused at the line that breaks it."""

    def __init__(self, limits: TreeLimits) -> None:
        self.limits = limits
        self.nodes = 1  # the root
        self._probe = Tree(limits)

    def add(self, item: Item, depth: int, *, line: int | None = None, element: str | None = None) -> None:
        """Counts a new item at `depth` (the root is 1) and checks it. Raises OutlineError."""
        if depth > self.limits.max_depth:
            raise OutlineError(
                f"nested deeper than the limit of {self.limits.max_depth} levels", line=line, element=element
            )
        if depth > 1:
            self.nodes += 1
            if self.nodes > self.limits.max_nodes:
                raise OutlineError(f"more than the limit of {self.limits.max_nodes} nodes", line=line, element=element)
        self.check(item, line=line, element=element)

    def check(self, item: Item, *, line: int | None = None, element: str | None = None) -> None:
        """Checks an item's value and props by the tree's own rules. Raises OutlineError."""
        node: dict[str, Any] = {"id": "probe", "value": item.value}
        if item.props:
            node["props"] = item.props
        try:
            self._probe.validate({"action": "add", "path": "/root/children", "node": node})
        except DeltaError as exc:
            raise OutlineError(exc.message.removeprefix("node: "), line=line, element=element) from None


def check_size(content: str) -> None:
    size = len(content.encode("utf-8", "surrogatepass"))
    if size > IMPORT_MAX_BYTES:
        raise OutlineError(f"the content is {size} bytes; the limit is {IMPORT_MAX_BYTES}")


def to_node(item: Item, new_id: Any) -> dict[str, Any]:
    """The wire-format node for an item and its subtree, each node with an id from `new_id()`."""

    def build(it: Item) -> dict[str, Any]:
        node: dict[str, Any] = {"id": new_id(), "value": it.value, "children": [build(c) for c in it.children]}
        if it.props:
            node["props"] = dict(it.props)
        return node

    return build(item)
