"""The tree engine: one session's object tree and the deltas that change it.

Pure code: no I/O, no asyncio, no logging. The wire format is the contract's:

- a node is ``{"id": str, "value": str, "props"?: {str: scalar}, "children": [node]}``
  (``props`` present only when non-empty),
- a delta is one of ``add`` / ``update`` / ``remove`` / ``move`` and addresses nodes by id
  paths from the root (``/root``, ``/root/a/b``); ``add`` and ``move`` name a parent as
  ``<parent path>/children``.

Internally every node is indexed by id, so applying one delta costs O(depth + size of the
subtree it carries or removes), never O(tree); a move that puts a subtree deeper also walks
that subtree to check the depth limit. A node's position among its siblings is found near
where it was last placed; when that hint is far off, one pass over that one parent's child
list refreshes every sibling's hint (~40 ns per sibling, paid once per burst of shifts).

Each internal node *is* its own wire-format dict (a ``dict`` subclass whose children are the
child nodes), kept in step by every mutation, so the tree is always its own JSON view:
:meth:`Tree.to_json` is one ``orjson.dumps`` of the root, with no per-node Python work. The
view never shares a mutable object with a caller: props dicts are built by the engine, and
everything handed out (:meth:`Tree.to_dict`, :meth:`Tree.subtree`, :meth:`Tree.props`,
``Change``) is a fresh copy; only :meth:`Tree.view` exposes the live dicts, read-only.

Beyond the wire format: prop keys are 1-64 characters, string prop values 0-500, integer
props within +-(2**53-1) (what JavaScript and orjson represent exactly), and no string may
hold lone surrogates. Lengths count code points (Python ``len``), not UTF-16 units.

Errors are :class:`DeltaError` with an HTTP-like code:

- 400: malformed or invalid content (shape, types, unknown action, path syntax, id format,
  value length, prop count/type/size),
- 404: an id named in a path does not exist (:class:`NodeNotFoundError`),
- 409: conflict: the path is not the node's real ancestry, duplicate id, remove/move of the
  root, move into its own subtree, node-count, depth or byte limit exceeded.

The byte limit (``TreeLimits.max_bytes``) is on the serialised size: every node keeps the
size of its own JSON (id, value, props, brackets and a separating comma; not its children)
and the tree a running total, so a delta is checked in O(what it carries) without
re-serialising the tree. A stored tree already over a lowered limit still loads; it cannot grow.

Checks run in a fixed order, so one delta always gets the same code: first everything that
can be checked without the tree (400), then path resolution (404 for an unknown id anywhere
in the path, then 409 for a chain that is not the real ancestry; ``move`` resolves ``path``
before ``to``), then the state-dependent checks (duplicate ids, root, cycles, limits: 409;
the merged prop count of an ``update``: 400).
"""

from __future__ import annotations

import gc
import math
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Final, TypeAlias, TypeGuard

import orjson

from canopy.errors import CanopyError

__all__ = [
    "ROOT_ID",
    "Change",
    "DeltaError",
    "NodeNotFoundError",
    "Scalar",
    "Tree",
    "TreeLimits",
]

ROOT_ID: Final = "root"
ROOT_VALUE: Final = "Root"

Scalar: TypeAlias = str | int | float | bool

_ID_RE: Final = re.compile(r"[A-Za-z0-9_.:-]+")
_CHILDREN: Final = "/children"
_ACTIONS: Final = ("add", "update", "remove", "move")
# Prop ints are kept within what a JavaScript number (and orjson) represents exactly.
_MAX_SAFE_INT: Final = 2**53 - 1
# orjson refuses to nest more than 255 containers and every tree level is two (a node dict and
# its children list); 120 levels leave room for the frames a snapshot is embedded in.
_MAX_DEPTH_LIMIT: Final = 120
# The children of every leaf: one shared, immutable empty array (saves a list per leaf).
_LEAF: Final[tuple[()]] = ()


@dataclass(frozen=True, slots=True)
class TreeLimits:
    max_nodes: int = 100_000
    max_depth: int = 64  # the root is depth 1
    max_value_chars: int = 500  # a value is 1..max_value_chars characters
    max_props: int = 32
    max_prop_key_chars: int = 64
    max_prop_value_chars: int = 500
    max_id_chars: int = 64
    max_bytes: int = 8 * 1024 * 1024  # serialised size of the whole tree (Tree.byte_size)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if type(v) is not int or v < 1:
                raise ValueError(f"TreeLimits.{f.name} must be a positive int, got {v!r}")
        if self.max_depth > _MAX_DEPTH_LIMIT:
            raise ValueError(f"TreeLimits.max_depth must be at most {_MAX_DEPTH_LIMIT}, got {self.max_depth}")


class DeltaError(CanopyError):
    """A delta (or a tree snapshot) that cannot be applied; ``code`` is 400, 404 or 409."""


class NodeNotFoundError(DeltaError, KeyError):
    """404: an unknown node id. Also a ``KeyError``, which the read accessors raise."""

    def __init__(self, node_id: str, message: str | None = None) -> None:
        super().__init__(404, message or f"node {node_id!r} does not exist")
        self.node_id = node_id


@dataclass(frozen=True, slots=True)
class Change:
    """One applied delta, normalized, and the delta that undoes it (normalized the same way).

    ``add`` and ``move`` always carry the integer ``index`` actually used; ``add`` carries the
    full node with its children; ``update`` carries only the fields that were given.
    """

    delta: dict[str, Any]
    inverse: dict[str, Any]


class _Node(dict[str, Any]):
    """One node, stored as its own wire-format dict: the live JSON view of its subtree.

    Keys, in this order: ``"id"`` (str), ``"value"`` (str), ``"props"`` (a dict owned by the
    engine, present only when non-empty) and ``"children"`` (a list of child ``_Node`` s, or the
    shared empty tuple ``_LEAF`` for a leaf). ``orjson`` serialises it like a plain dict.

    The parent is held as an id, so the structure has no reference cycles and removed subtrees
    are freed at once. Compared by ``==`` it is a dict (by content): use ``is`` for identity.
    """

    __slots__ = ("parent", "pos", "size")

    parent: str | None
    pos: int  # where it was last placed among its siblings: a hint, see _position
    size: int  # bytes of its own JSON, see _own_size

    def __init__(
        self,
        node_id: str,
        value: str,
        props: dict[str, Scalar] | None,
        parent: str | None,
        children: list[_Node] | tuple[()] = _LEAF,
    ) -> None:
        # item by item: ~3x faster than dict.__init__ with keyword arguments
        self["id"] = node_id
        self["value"] = value
        if props:
            self["props"] = props
        self["children"] = children
        self.parent = parent
        self.pos = 0
        self.size = _own_size(node_id, value, props)

    def __repr__(self) -> str:  # not the whole subtree
        return f"<_Node {self['id']!r}>"


# {"id":…,"value":…,"children":[]} and a comma before the next sibling; ids need no escaping.
_NODE_OVERHEAD: Final = len('{"id":"","value":,"children":[]},')
_PROPS_OVERHEAD: Final = len(',"props":')


def _own_size(node_id: str, value: str, props: dict[str, Scalar] | None) -> int:
    """Bytes a node adds to the serialised tree, its children aside."""
    size = _NODE_OVERHEAD + len(node_id) + len(orjson.dumps(value))
    if props:
        size += _PROPS_OVERHEAD + len(orjson.dumps(props))
    return size


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold the cyclic GC while allocating a whole tree's worth of containers.

    Building 100k nodes otherwise triggers several full collections over every live object,
    which costs more than the building itself. Nothing here creates cycles.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _bad(message: str) -> DeltaError:
    return DeltaError(400, message)


def _has_surrogates(s: str) -> bool:
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clamp(index: int | None, length: int) -> int:
    if index is None or index > length:
        return length
    return max(index, 0)


def _index_field(delta: dict[str, Any]) -> int | None:
    index = delta.get("index")
    if index is None:
        return None
    if type(index) is not int:
        raise _bad("'index' must be an integer")
    return index


def _position(kids: list[_Node], node: _Node) -> int:
    """``kids.index(node)``, looking near the node's last known position first.

    Siblings inserted or removed before it since then shift it by a little, so a long
    sibling list is walked only when the hint is far off, and that walk refreshes every
    sibling's hint, so its cost is paid once per burst of shifts, not per lookup.
    (``list.index`` finds the node itself at once, but compares other siblings as dicts,
    ~60 ns each, hence the small window.)
    """
    h = node.pos
    try:
        return kids.index(node, max(h - 32, 0), h + 33)
    except ValueError:
        pass
    for j, c in enumerate(kids):
        c.pos = j
    i = node.pos
    if i >= len(kids) or kids[i] is not node:
        raise ValueError("node is not among these children")
    return i


def _own_kids(node: _Node) -> list[_Node]:
    """``node``'s children list, giving a leaf its own list in place of the shared ``_LEAF``."""
    kids: list[_Node] | tuple[()] = node["children"]
    if type(kids) is tuple:
        fresh: list[_Node] = []
        node["children"] = fresh
        return fresh
    assert isinstance(kids, list)
    return kids


def _detach(parent: _Node, kids: list[_Node], i: int) -> None:
    """Drop ``parent``'s child at ``i`` (``kids`` is its children list)."""
    del kids[i]
    if not kids:
        parent["children"] = _LEAF


def _walk(top: _Node) -> Iterator[_Node]:
    """``top`` and its descendants, pre-order."""
    stack = [top]
    pop = stack.pop
    extend = stack.extend
    while stack:
        n = pop()
        yield n
        kids = n["children"]
        if kids:
            extend(reversed(kids))


def _fits(top: _Node, max_below: int) -> bool:
    """True when no descendant of ``top`` lies more than ``max_below`` levels below it."""
    if max_below < 0:
        return False
    stack = [(top, 0)]
    while stack:
        n, rel = stack.pop()
        kids = n["children"]
        if kids:
            if rel >= max_below:
                return False
            stack.extend((c, rel + 1) for c in kids)
    return True


def _plain(top: _Node) -> dict[str, Any]:
    """``top``'s subtree as fresh plain dicts and lists (safe to mutate, shares nothing mutable).

    Each node is copied with ``dict(node)`` (a C-level copy of its table) and then given its
    own props dict and children list; ids, values and prop values are immutable and shared.
    About 20% faster than building each dict from its fields, and than an orjson round trip.
    """
    out = dict(top)
    if top["children"]:
        with _gc_paused():
            _own_containers(out)
    else:  # a leaf: the common ``remove``, too small to be worth pausing the GC
        _own_containers(out)
    return out


def _own_containers(top: dict[str, Any]) -> None:
    """Give ``top`` and, recursively, its children (node copies) their own props and children."""
    stack = [top]
    pop = stack.pop
    extend = stack.extend
    while stack:
        d = pop()
        p = d.get("props")
        if p is not None:
            d["props"] = dict(p)
        kids = d["children"]
        if kids:
            fresh: list[dict[str, Any]] = list(map(dict, kids))
            d["children"] = fresh
            extend(fresh)
        else:
            d["children"] = []


@dataclass(slots=True)
class _Parsed:
    """A validated subtree, not yet attached: nodes in pre-order and its normalized dict."""

    top: str
    nodes: dict[str, _Node]
    normalized: dict[str, Any]
    height: int
    duplicate: str | None
    size: int  # bytes of the subtree's JSON (the sum of its nodes' own sizes)


class Tree:
    """An object tree indexed by id. Read it through the accessors; change it with :meth:`apply`."""

    __slots__ = ("_bytes", "_limits", "_nodes", "_rev")

    def __init__(self, limits: TreeLimits | None = None) -> None:
        self._limits = limits or TreeLimits()
        root = _Node(ROOT_ID, ROOT_VALUE, None, None)
        self._nodes: dict[str, _Node] = {ROOT_ID: root}
        self._bytes = root.size
        self._rev = 0

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_dict(cls, node: dict[str, Any], rev: int = 0, limits: TreeLimits | None = None) -> Tree:
        """Build a tree from a snapshot, validating everything; any problem is ``DeltaError(400)``."""
        tree = cls(limits)
        if type(rev) is not int or rev < 0:
            raise _bad("rev must be a non-negative integer")
        try:
            with _gc_paused():
                parsed = tree._parse_subtree(node, "tree", normalize=False)
        except DeltaError as exc:
            raise _bad(exc.message) from None
        lim = tree._limits
        if parsed.top != ROOT_ID:
            raise _bad(f"the root node's id must be {ROOT_ID!r}")
        if parsed.duplicate is not None:
            raise _bad(f"duplicate node id {parsed.duplicate!r}")
        if len(parsed.nodes) > lim.max_nodes:
            raise _bad(f"the tree has more than {lim.max_nodes} nodes")
        if parsed.height > lim.max_depth:
            raise _bad(f"the tree is deeper than {lim.max_depth} levels")
        tree._nodes = parsed.nodes
        tree._bytes = parsed.size  # not checked against max_bytes: a stored tree loads even if the limit fell
        tree._rev = rev
        return tree

    # ------------------------------------------------------------------ reading

    @property
    def rev(self) -> int:
        return self._rev

    @property
    def limits(self) -> TreeLimits:
        return self._limits

    @property
    def byte_size(self) -> int:
        """The serialised size of the tree, kept up to date by every change (an upper bound: over by one
        comma per parent node, as the last child has none)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return isinstance(node_id, str) and node_id in self._nodes

    def __repr__(self) -> str:
        return f"<Tree nodes={len(self._nodes)} rev={self._rev}>"

    def _node(self, node_id: str) -> _Node:
        try:
            return self._nodes[node_id]
        except (KeyError, TypeError):
            raise NodeNotFoundError(str(node_id)) from None

    def value(self, node_id: str) -> str:
        v: str = self._node(node_id)["value"]
        return v

    def props(self, node_id: str) -> dict[str, Scalar]:
        p = self._node(node_id).get("props")
        return dict(p) if p else {}

    def parent(self, node_id: str) -> str | None:
        return self._node(node_id).parent

    def children(self, node_id: str) -> tuple[str, ...]:
        return tuple([c["id"] for c in self._node(node_id)["children"]])

    def depth(self, node_id: str) -> int:
        node = self._node(node_id)
        d = 1
        nodes = self._nodes
        while node.parent is not None:
            node = nodes[node.parent]
            d += 1
        return d

    def path(self, node_id: str) -> str:
        node = self._node(node_id)
        parts = [node_id]
        nodes = self._nodes
        while node.parent is not None:
            parts.append(node.parent)
            node = nodes[node.parent]
        parts.reverse()
        return "/" + "/".join(parts)

    def iter_ids(self, node_id: str = ROOT_ID) -> Iterator[str]:
        """Ids of ``node_id``'s subtree (the whole tree by default), pre-order.

        Do not apply deltas while iterating.
        """
        return (n["id"] for n in _walk(self._node(node_id)))

    def name_index(self) -> dict[str, list[str]]:
        """Ids by value, compared as :meth:`find` compares them (case and surrounding whitespace
        ignored): one pass over every node, for callers that look up many names at once. The ids
        under a name are in no particular order: :meth:`order_key` sorts them."""
        index: dict[str, list[str]] = {}
        get = index.get
        with _gc_paused():  # a list per name: at 100k nodes, collections would cost as much as the pass
            for node_id, node in self._nodes.items():
                key = node["value"].strip().casefold()
                found = get(key)
                if found is None:
                    index[key] = [node_id]
                else:
                    found.append(node_id)
        return index

    def order_key(self, node_id: str) -> tuple[int, ...]:
        """Sorts ids in pre-order (tree order): each ancestor's position among its siblings, from the top."""
        node = self._node(node_id)
        nodes = self._nodes
        key: list[int] = []
        while node.parent is not None:
            parent = nodes[node.parent]
            key.append(_position(parent["children"], node))
            node = parent
        key.reverse()
        return tuple(key)

    def find(self, name: str) -> list[str]:
        """Ids whose value equals ``name`` ignoring case and surrounding whitespace, and the
        node whose id is ``name``; pre-order, each id once."""
        key = name.strip().casefold()
        stripped = name.strip()
        out: list[str] = []
        if not key:
            return out
        for n in _walk(self._nodes[ROOT_ID]):
            nid = n["id"]
            if nid in (name, stripped) or n["value"].strip().casefold() == key:
                out.append(nid)
        return out

    def new_id(self) -> str:
        """A fresh id such as ``n-1a2b3c4d`` that no node has."""
        while True:
            nid = "n-" + secrets.token_hex(4)
            if nid not in self._nodes:
                return nid

    def to_json(self) -> bytes:
        """The whole tree as its serialised nested snapshot (UTF-8 JSON, compact).

        One ``orjson.dumps`` of the live view: no per-node Python work. To embed it in a
        larger message, wrap it: ``orjson.dumps({"tree": orjson.Fragment(tree.to_json())})``.
        """
        return orjson.dumps(self._nodes[ROOT_ID])

    def view(self) -> Mapping[str, Any]:
        """The whole tree as the engine's own live nested snapshot, for serialising in place.

        The same shape as :meth:`to_dict` (children arrays may be tuples). It is the tree's
        internal state, not a copy, so: serialise it at once (``orjson.dumps``, without
        ``OPT_PASSTHROUGH_SUBCLASS``), never mutate it or anything in it, and never hold it
        across an ``await`` or an :meth:`apply`: it changes with the tree. Use :meth:`to_dict`
        for something to keep or change.
        """
        return self._nodes[ROOT_ID]

    def to_dict(self) -> dict[str, Any]:
        """The whole tree as a nested snapshot (fresh plain dicts and lists, safe to mutate)."""
        return _plain(self._nodes[ROOT_ID])

    def subtree(self, node_id: str) -> dict[str, Any]:
        """``node_id`` and its descendants as a nested snapshot (fresh, like :meth:`to_dict`)."""
        return _plain(self._node(node_id))

    # ------------------------------------------------------------------ changing

    def validate(self, delta: Any) -> None:
        """Raise :class:`DeltaError` when ``delta`` would not apply; never changes the tree."""
        self._prepare(delta)

    def apply(self, delta: Any) -> Change:
        """Validate, then apply ``delta`` all-or-nothing; ``rev`` goes up by one."""
        execute = self._prepare(delta)
        change = execute()  # cannot fail: everything was checked by _prepare
        self._rev += 1
        return change

    def revert(self, change: Change) -> None:
        """Take back ``change``, the latest successful :meth:`apply`, as if it never happened:
        the tree and ``rev`` return to what they were before it.

        Applies ``change.inverse`` all-or-nothing; raises :class:`DeltaError` (changing
        nothing) when it does not fit, which only happens if ``change`` was not the latest.
        """
        if self._rev < 1:
            raise DeltaError(409, "there is no change to revert")
        self._prepare(change.inverse)()
        self._rev -= 1

    def _prepare(self, delta: Any) -> Callable[[], Change]:
        if not isinstance(delta, dict):
            raise _bad("a delta must be an object")
        action = delta.get("action")
        if action == "add":
            return self._prepare_add(delta)
        if action == "update":
            return self._prepare_update(delta)
        if action == "remove":
            return self._prepare_remove(delta)
        if action == "move":
            return self._prepare_move(delta)
        if action is None:
            raise _bad("the delta has no 'action'")
        raise _bad(f"unknown action {action!r}; expected one of {', '.join(_ACTIONS)}")

    # -- add

    def _prepare_add(self, delta: dict[str, Any]) -> Callable[[], Change]:
        path = delta.get("path")
        parent_segs = self._parse_path(path, "path", children=True)
        parsed = self._parse_subtree(delta.get("node"), "node")
        index = _index_field(delta)
        parent_id = self._resolve(parent_segs, "path")
        if parsed.duplicate is not None:
            raise DeltaError(409, f"the node carries id {parsed.duplicate!r} twice")
        nodes = self._nodes
        for nid in parsed.nodes:
            if nid in nodes:
                raise DeltaError(409, f"a node with id {nid!r} already exists")
        lim = self._limits
        if len(nodes) + len(parsed.nodes) > lim.max_nodes:
            raise DeltaError(409, f"the tree would exceed {lim.max_nodes} nodes")
        if len(parent_segs) + parsed.height > lim.max_depth:
            raise DeltaError(409, f"the tree would exceed a depth of {lim.max_depth}")
        self._check_bytes(parsed.size)
        assert isinstance(path, str)

        def execute() -> Change:
            kids = _own_kids(nodes[parent_id])
            i = _clamp(index, len(kids))
            top = parsed.nodes[parsed.top]
            top.parent = parent_id
            nodes.update(parsed.nodes)
            kids.insert(i, top)
            top.pos = i
            self._bytes += parsed.size
            return Change(
                {"action": "add", "path": path, "node": parsed.normalized, "index": i},
                {"action": "remove", "path": path[: -len(_CHILDREN)] + "/" + parsed.top},
            )

        return execute

    # -- update

    def _prepare_update(self, delta: dict[str, Any]) -> Callable[[], Change]:
        path = delta.get("path")
        segs = self._parse_path(path, "path")
        raw = delta.get("fields")
        if not isinstance(raw, dict):
            raise _bad("'fields' must be an object")
        has_value = "value" in raw
        has_props = "props" in raw
        if not has_value and not has_props:
            raise _bad("'fields' must carry 'value' and/or 'props'")
        new_value = self._check_value(raw["value"], "fields.value") if has_value else None
        new_props: dict[str, Scalar | None] = {}
        if has_props:
            rp = raw["props"]
            if not isinstance(rp, dict):
                raise _bad("'fields.props' must be an object")
            for k, v in rp.items():
                self._check_prop_key(k, "fields.props")
                new_props[k] = None if v is None else self._check_prop_value(v, f"fields.props.{k}")
        node_id = self._resolve(segs, "path")
        node = self._nodes[node_id]
        if has_props:
            merged = set(node.get("props") or ())
            for k, v in new_props.items():
                if v is None:
                    merged.discard(k)
                else:
                    merged.add(k)
            if len(merged) > self._limits.max_props:
                raise _bad(f"a node may have at most {self._limits.max_props} props")
        old_props: dict[str, Scalar] = node.get("props") or {}
        props = dict(old_props)  # a new dict: the view never holds the caller's
        for k, v in new_props.items():
            if v is None:
                props.pop(k, None)
            else:
                props[k] = v
        new_size = _own_size(node_id, new_value if new_value is not None else node["value"], props)
        self._check_bytes(new_size - node.size)
        assert isinstance(path, str)

        def execute() -> Change:
            fwd: dict[str, Any] = {}
            inv: dict[str, Any] = {}
            if new_value is not None:
                inv["value"] = node["value"]
                fwd["value"] = new_value
                node["value"] = new_value
            if has_props:
                inv["props"] = {k: old_props.get(k) for k in new_props}
                fwd["props"] = dict(new_props)
                if not props:
                    node.pop("props", None)
                elif "props" in node:
                    node["props"] = props
                else:  # keep the key order id, value, props, children
                    kids = node.pop("children")
                    node["props"] = props
                    node["children"] = kids
            self._bytes += new_size - node.size
            node.size = new_size
            return Change(
                {"action": "update", "path": path, "fields": fwd},
                {"action": "update", "path": path, "fields": inv},
            )

        return execute

    # -- remove

    def _prepare_remove(self, delta: dict[str, Any]) -> Callable[[], Change]:
        path = delta.get("path")
        segs = self._parse_path(path, "path")
        node_id = self._resolve(segs, "path")
        if node_id == ROOT_ID:
            raise DeltaError(409, "the root cannot be removed")
        assert isinstance(path, str)

        def execute() -> Change:
            nodes = self._nodes
            node = nodes[node_id]
            assert node.parent is not None
            snapshot = _plain(node)
            parent = nodes[node.parent]
            kids = parent["children"]
            i = _position(kids, node)
            _detach(parent, kids, i)
            freed = 0
            for n in _walk(node):
                del nodes[n["id"]]
                freed += n.size
            self._bytes -= freed
            parent_path = path[: path.rindex("/")]
            return Change(
                {"action": "remove", "path": path},
                {"action": "add", "path": parent_path + _CHILDREN, "node": snapshot, "index": i},
            )

        return execute

    # -- move

    def _prepare_move(self, delta: dict[str, Any]) -> Callable[[], Change]:
        path = delta.get("path")
        to = delta.get("to")
        segs = self._parse_path(path, "path")
        to_segs = self._parse_path(to, "to", children=True)
        index = _index_field(delta)
        node_id = self._resolve(segs, "path")
        new_parent = self._resolve(to_segs, "to")
        if node_id == ROOT_ID:
            raise DeltaError(409, "the root cannot be moved")
        if node_id in to_segs:
            # to_segs is new_parent's real ancestry, so this is "into itself or a descendant"
            raise DeltaError(409, "a node cannot be moved into itself or its own subtree")
        old_depth = len(segs)
        new_depth = len(to_segs) + 1
        if new_depth > old_depth and not _fits(self._nodes[node_id], self._limits.max_depth - new_depth):
            raise DeltaError(409, f"the tree would exceed a depth of {self._limits.max_depth}")
        assert isinstance(path, str) and isinstance(to, str)

        def execute() -> Change:
            nodes = self._nodes
            node = nodes[node_id]
            old_parent = node.parent
            assert old_parent is not None
            old_kids = nodes[old_parent]["children"]
            old_i = _position(old_kids, node)
            _detach(nodes[old_parent], old_kids, old_i)
            new_kids = _own_kids(nodes[new_parent])
            i = _clamp(index, len(new_kids))
            new_kids.insert(i, node)
            node.pos = i
            node.parent = new_parent
            old_parent_path = path[: path.rindex("/")]
            new_path = to[: -len(_CHILDREN)] + "/" + node_id
            return Change(
                {"action": "move", "path": path, "to": to, "index": i},
                {"action": "move", "path": new_path, "to": old_parent_path + _CHILDREN, "index": old_i},
            )

        return execute

    # ------------------------------------------------------------------ validation helpers

    def _parse_path(self, path: Any, name: str, *, children: bool = False) -> list[str]:
        """Check a path's syntax; return its id segments (of the parent, for ``children``)."""
        if not isinstance(path, str):
            raise _bad(f"'{name}' must be a string")
        lim = self._limits
        if len(path) > (lim.max_id_chars + 1) * (lim.max_depth + 1) + len(_CHILDREN):
            raise _bad(f"'{name}' is too long")
        if children:
            if not path.endswith(_CHILDREN):
                raise _bad(f"'{name}' must be a parent path ending in '/children', got {path!r}")
            path = path[: -len(_CHILDREN)]
        if not path.startswith("/" + ROOT_ID):
            raise _bad(f"'{name}' must start with '/{ROOT_ID}', got {path!r}")
        segs: list[str] = path[1:].split("/")
        if segs[0] != ROOT_ID:
            raise _bad(f"'{name}' must start with '/{ROOT_ID}', got {path!r}")
        for s in segs:
            if not self._valid_id(s):
                raise _bad(f"'{name}' has an invalid segment {s!r}")
        return segs

    def _resolve(self, segs: list[str], name: str) -> str:
        """The id the path names: 404 for an unknown id, 409 when the chain is not its ancestry."""
        nodes = self._nodes
        for s in segs:
            if s not in nodes:
                raise NodeNotFoundError(s, f"'{name}': node {s!r} does not exist")
        node_id = segs[-1]
        parent = nodes[node_id].parent
        for i in range(len(segs) - 2, -1, -1):
            if parent != segs[i]:
                break
            parent = nodes[parent].parent
        else:
            if parent is None:
                return node_id
        raise DeltaError(409, f"'{name}' does not match the tree: {node_id!r} is at {self.path(node_id)}")

    def _check_bytes(self, growth: int) -> None:
        limit = self._limits.max_bytes
        if growth > 0 and self._bytes + growth > limit:
            raise DeltaError(409, f"the tree would exceed {limit} bytes (TREE_MAX_BYTES)")

    def _valid_id(self, s: Any) -> TypeGuard[str]:
        return isinstance(s, str) and len(s) <= self._limits.max_id_chars and _ID_RE.fullmatch(s) is not None

    def _check_value(self, v: Any, where: str) -> str:
        if not isinstance(v, str):
            raise _bad(f"'{where}' must be a string")
        if not v:
            raise _bad(f"'{where}' must not be empty")
        if len(v) > self._limits.max_value_chars:
            raise _bad(f"'{where}' is longer than {self._limits.max_value_chars} characters")
        if _has_surrogates(v):
            raise _bad(f"'{where}' is not valid Unicode text")
        return str(v)

    def _check_prop_key(self, k: Any, where: str) -> None:
        if not isinstance(k, str) or not k:
            raise _bad(f"'{where}' keys must be non-empty strings")
        if len(k) > self._limits.max_prop_key_chars:
            raise _bad(f"'{where}' key is longer than {self._limits.max_prop_key_chars} characters")
        if _has_surrogates(k):
            raise _bad(f"'{where}' key is not valid Unicode text")

    def _check_prop_value(self, v: Any, where: str) -> Scalar:
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, int):
            if not -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
                raise _bad(f"'{where}' is outside the safe integer range (±2^53-1)")
            return int(v)
        if isinstance(v, float):
            if not math.isfinite(v):
                raise _bad(f"'{where}' must be a finite number")
            return float(v)
        if isinstance(v, str):
            if len(v) > self._limits.max_prop_value_chars:
                raise _bad(f"'{where}' is longer than {self._limits.max_prop_value_chars} characters")
            if _has_surrogates(v):
                raise _bad(f"'{where}' is not valid Unicode text")
            return str(v)
        raise _bad(f"'{where}' must be a string, number or boolean")

    def _parse_subtree(self, raw: Any, where: str, *, normalize: bool = True) -> _Parsed:
        """Validate a node with its descendants (iteratively) into detached internal nodes.

        ``normalized`` is a separate plain copy for the caller (empty unless ``normalize``).

        Raises 400 for anything malformed; duplicate ids are reported in ``duplicate`` so
        the caller can rank them after the 400s. Nodes nested deeper than the depth limit
        are not descended into (``height`` still shows the excess), and more nodes than the
        node limit is a 409 straight away: that bounds the work on hostile (even cyclic) input.
        """
        lim = self._limits
        nodes: dict[str, _Node] = {}
        duplicate: str | None = None
        height = 0
        top = ""
        result: dict[str, Any] = {}
        check_value = self._check_value
        check_key = self._check_prop_key
        check_prop = self._check_prop_value
        valid_id = self._valid_id
        # (raw node, parent node, depth, location, normalized children list of the parent);
        # a location is the root label or (parent location, child index), formatted on error.
        stack: list[tuple[Any, _Node | None, int, Any, list[dict[str, Any]] | None]] = [(raw, None, 1, where, None)]
        seen = 0
        size = 0
        while stack:
            item, parent, depth, loc, siblings = stack.pop()
            seen += 1
            if seen > lim.max_nodes:
                raise DeltaError(409, f"the tree would exceed {lim.max_nodes} nodes")
            try:
                if not isinstance(item, dict):
                    raise _bad("a node must be an object")
                nid = item.get("id")
                if not valid_id(nid):
                    raise _bad(f"'id' must be 1-{lim.max_id_chars} characters of A-Z a-z 0-9 _ . : -, got {nid!r}")
                value = check_value(item.get("value"), "value")
                raw_props = item.get("props")
                props: dict[str, Scalar] = {}
                if raw_props is not None:
                    if not isinstance(raw_props, dict):
                        raise _bad("'props' must be an object")
                    if len(raw_props) > lim.max_props:
                        raise _bad(f"'props' has more than {lim.max_props} entries")
                    for k, v in raw_props.items():
                        check_key(k, "props")
                        props[k] = check_prop(v, f"props.{k}")
                raw_kids = item.get("children")
                if raw_kids is None:
                    raw_kids = []
                elif not isinstance(raw_kids, list):
                    raise _bad("'children' must be a list")
            except DeltaError as exc:
                raise _bad(f"{_location(loc)}: {exc.message}") from None
            kids_norm: list[dict[str, Any]] | None = None
            if normalize:
                kids_norm = []
                if props:
                    norm = {"id": nid, "value": value, "props": dict(props), "children": kids_norm}
                else:
                    norm = {"id": nid, "value": value, "children": kids_norm}
                if parent is None:
                    result = norm
                elif siblings is not None:
                    siblings.append(norm)
            # a node with children gets its own list at once (filled below); the rest share _LEAF
            node = _Node(nid, value, props or None, None, [] if raw_kids else _LEAF)
            size += node.size
            if nid in nodes:
                if duplicate is None:
                    duplicate = nid
            else:
                nodes[nid] = node
            if parent is None:
                top = nid
            else:
                node.parent = parent["id"]
                kids = parent["children"]  # a list: the parent had raw children
                node.pos = len(kids)
                kids.append(node)
            if depth > height:
                height = depth
            if depth > lim.max_depth:
                continue
            for i in range(len(raw_kids) - 1, -1, -1):
                stack.append((raw_kids[i], node, depth + 1, (loc, i), kids_norm))
        return _Parsed(top, nodes, result, height, duplicate, size)


def _location(loc: Any) -> str:
    parts: list[str] = []
    while isinstance(loc, tuple):
        loc, i = loc
        parts.append(f".children[{i}]")
    parts.append(str(loc))
    return "".join(reversed(parts))
