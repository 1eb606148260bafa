"""What each command does: a chosen reading → deltas (through `Planner.emit`) and a reply; answers to questions.

Every builder returns its reply and the nodes it acted on (what "it" means in the next clause).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from canopy.assistant.offline.forms import Question
from canopy.assistant.offline.grammar import EXAMPLES, Command
from canopy.assistant.offline.result import MAX_NODES_PER_COMMAND, MAX_VALUE_LENGTH, Stop
from canopy.assistant.offline.text import cap, join, plural, quote, split_list
from canopy.tree import ROOT_ID

if TYPE_CHECKING:
    from canopy.assistant.offline.planner import Planner

_KEY_OK: Final = re.compile(r"[a-z_][a-z0-9_.-]{0,63}")
_KEY_SPACES: Final = re.compile(r"[\s-]+")
_LEVEL_PRIORITY: Final = re.compile(r"(\w+)[ -]priority", re.I)
Built = tuple[str, list[str]]


def _stop(reply: str, *steps: str) -> Exception:
    return Stop(reply, *steps)


def _limits() -> tuple[int, int]:
    return MAX_NODES_PER_COMMAND, MAX_VALUE_LENGTH


# ------------------------------------------------------------------- add


def _numbered(p: Planner, parent: str, noun: str, count: int) -> list[str]:
    """'Task 1'...'Task n', continuing after the highest 'Task N' already under the parent."""
    pattern = re.compile(rf"{re.escape(noun)} (\d+)", re.I)
    taken = [int(m.group(1)) for c in p.tree.children(parent) if (m := pattern.fullmatch(p.tree.value(c)))]
    start = max(taken, default=0) + 1
    return [f"{noun} {i}" for i in range(start, start + count)]


def _placement(p: Planner, cmd: Command) -> tuple[str, int | None, str]:
    """Parent, index of the first new node and the words for the reply; a missing parent is created."""
    if not cmd.refs:
        p.steps.append(f"No parent given: using the root ({p.tree.path(ROOT_ID)}).")
        return ROOT_ID, None, "under"
    ref = cmd.refs[0]
    if not p.lookup(ref) and p._creatable(cmd):
        name = p.new_name(ref)
        parent = p.add_node(ROOT_ID, p.value(name))
        p.steps.append(f"No node {quote(name)}: creating it under the root.")
        p.replies.append(f"There was no {quote(name)}, so I created it under the root.")
        return (
            parent,
            0 if cmd.where == "top" else None,
            {"top": "at the top of", "bottom": "at the end of"}.get(cmd.where, "under"),
        )
    anchor = p.resolve(ref, cmd.hint)
    if cmd.where == "between":
        other = p.resolve(cmd.refs[1])
        above = p.tree.parent(anchor)
        kids = p.tree.children(above) if above is not None else ()
        if above is None or p.tree.parent(other) != above or abs(kids.index(anchor) - kids.index(other)) != 1:
            raise _stop(
                f"{cap(p._shown(anchor))} and {p._shown(other)} are not next to each other, so 'between' "
                "is unclear: say 'after' or 'before' one of them."
            )
        return above, max(kids.index(anchor), kids.index(other)), f"between {p._shown(anchor)} and {p._shown(other)} in"
    if cmd.where in ("after", "before"):
        above = p.tree.parent(anchor)
        if above is None:
            raise _stop("Nothing can go before or after the root; say 'under root' instead.")
        index = p.tree.children(above).index(anchor) + (1 if cmd.where == "after" else 0)
        return above, index, f"{cmd.where} {p._shown(anchor)} in"
    words = {"top": "at the top of", "bottom": "at the end of"}.get(cmd.where, "under")
    return anchor, 0 if cmd.where == "top" else None, words


def build_add(p: Planner, cmd: Command) -> Built:
    max_nodes, _ = _limits()
    target = p.text.literal(cmd.refs[0])[0] if cmd.refs else "root (default)"
    count = cmd.count if cmd.count > 0 else len(cmd.values)
    p.steps.append(f"Parsing prompt: action 'add', {plural(count, 'value')}, target {quote(target)}.")
    if not cmd.values:
        raise _stop(f"I didn't understand what to add. Try: {EXAMPLES['add']}. Nothing was changed.")
    if cmd.count < 0 and -cmd.count != len(cmd.values):
        raise _stop(
            f"You asked for {-cmd.count} nodes but named {len(cmd.values)}: "
            f"{join([quote(p.text.literal(v)[0]) for v in cmd.values])}. Nothing was changed."
        )
    if count + len(cmd.kids) > max_nodes:
        raise _stop(f"I can add at most {max_nodes} nodes in one command.")
    plain = [p.value(v) for v in cmd.values]
    kids = [p.value(k) for k in cmd.kids]
    parent, index, words = _placement(p, cmd)
    values = _numbered(p, parent, plain[0], count) if cmd.count > 0 else plain
    added = []
    for i, value in enumerate(values):
        added.append(p.add_node(parent, value, None if index is None else index + i))
    for kid in kids:
        p.add_node(added[0], kid)
    with_kids = f" with {join([quote(k) for k in kids])} inside" if kids else ""
    shown = join([quote(v) for v in values])
    place = f"{words} {p._shown(parent)}".replace(" in the root", " at the top level")
    return f"Added {shown}{with_kids} {place}.", added


# ------------------------------------------------------------- rename / props


def build_rename(p: Planner, cmd: Command) -> Built:
    name, new = (p.text.literal(part)[0] for part in (cmd.refs[0], cmd.values[0]))
    p.steps.append(f"Parsing prompt: action 'rename', target {quote(name)}, new value {quote(new)}.")
    value = p.value(cmd.values[0])
    node = p.resolve(cmd.refs[0])
    if node == ROOT_ID:
        raise _stop("The root keeps its name; rename the nodes under it instead.")
    old = p.tree.value(node)
    p.emit({"action": "update", "path": p.tree.path(node), "fields": {"value": value}})
    return f"Renamed {quote(old)} to {quote(value)}.", [node]


def _key(p: Planner, raw: str) -> str:
    key = _KEY_SPACES.sub("_", p.text.literal(raw)[0].strip().lower())
    key = {"due": "due_date", "deadline": "due_date", "duedate": "due_date", "colour": "color"}.get(key, key)
    if not _KEY_OK.fullmatch(key):
        raise _stop(
            f"{quote(key)} is not a property name I can use: use letters, digits and underscores "
            "(up to 64 characters).",
            "Rejecting an invalid property name.",
        )
    return key


def build_set(p: Planner, cmd: Command) -> Built:
    key = _key(p, cmd.key)
    value = p.prop_value(cmd.values[0])
    if value is None:
        return build_unset(p, cmd)
    name = p.text.literal(cmd.refs[0])[0]
    shown = quote(value) if isinstance(value, str) else str(value).lower()
    p.steps.append(f"Parsing prompt: action 'set', property '{key}' = {shown}, target {quote(name)}.")
    nodes = p.resolve_many(cmd.refs[0])
    for node in nodes:
        p.emit({"action": "update", "path": p.tree.path(node), "fields": {"props": {key: value}}})
    return f"Set {key} of {join([p._shown(n) for n in nodes])} to {shown}.", nodes


def build_unset(p: Planner, cmd: Command) -> Built:
    key = _key(p, cmd.key)
    name = p.text.literal(cmd.refs[0])[0]
    p.steps.append(f"Parsing prompt: action 'unset', property '{key}', target {quote(name)}.")
    nodes = p.resolve_many(cmd.refs[0])
    having = [n for n in nodes if key in p.tree.props(n)]
    if not having and cmd.where == "from":
        raise _stop(
            f"There is no node named {quote(p.text.literal(cmd.key)[0])} under {p._shown(nodes[0])}, "
            f"and it has no property '{key}' either."
        )
    if not having:
        raise _stop(
            f"{cap(join([p._shown(n) for n in nodes]))} has no property '{key}', so there is nothing to remove."
        )
    for node in having:
        p.emit({"action": "update", "path": p.tree.path(node), "fields": {"props": {key: None}}})
    return f"Removed {key} from {join([p._shown(n) for n in having])}.", having


# ------------------------------------------------------------------ delete


def build_delete(p: Planner, cmd: Command) -> Built:
    names = [p.text.literal(ref)[0] for ref in cmd.refs]
    p.steps.append(
        f"Parsing prompt: action 'delete', {plural(len(names), 'target')}: {', '.join(quote(n) for n in names)}."
    )
    return _removal(p, [n for ref in cmd.refs for n in p.resolve_many(ref)])


def build_delete_from(p: Planner, cmd: Command) -> Built:
    """'remove Eggs (and Milk) from Shopping list': the named nodes inside that parent."""
    child, parent_ref = cmd.refs
    name = p.text.literal(child)[0]
    p.steps.append(
        f"Parsing prompt: action 'delete', target {quote(name)} under {quote(p.text.literal(parent_ref)[0])}."
    )
    parent = p.resolve(parent_ref)
    items = [child] if p.lookup(child) else split_list(child)
    found: list[str] = []
    for item in items:
        item_name = p.text.literal(item)[0]
        ids = [i for i in p.lookup(item) if i != parent and p._is_inside(i, parent)]
        if not ids:
            raise _stop(f"There is no node named {quote(item_name)} under {p._shown(parent)}.")
        if len(ids) > 1:
            raise p._ambiguous(item_name, ids)
        p.steps.append(f"Resolved {quote(item_name)} to {p.tree.path(ids[0])}.")
        found.append(ids[0])
    return _removal(p, found)


def _removal(p: Planner, ids: list[str]) -> Built:
    if ROOT_ID in ids:
        raise _stop("The root can't be deleted. To remove everything under it, say 'clear the tree'.")
    unique = list(dict.fromkeys(ids))
    keep = [i for i in unique if not any(o != i and p._is_inside(i, o) for o in unique)]
    inner = sum(p._descendants(i) for i in keep)
    shown = join([p._shown(i) for i in keep])
    for node in keep:
        p.emit({"action": "remove", "path": p.tree.path(node)})
    extra = f" (with {plural(inner, 'node')} inside)" if inner else ""
    return f"Deleted {shown}{extra}.", []


def build_clear(p: Planner, cmd: Command) -> Built:
    name = p.text.literal(cmd.refs[0])[0]
    p.steps.append(f"Parsing prompt: action 'clear', the children of {quote(name)}.")
    node = p.resolve(cmd.refs[0])
    kids = list(p.tree.children(node))
    if not kids:
        return f"{cap(p._shown(node))} has no children, so there was nothing to clear.", [node]
    total = len(kids) + sum(p._descendants(k) for k in kids)
    for kid in kids:
        p.emit({"action": "remove", "path": p.tree.path(kid)})
    return f"Cleared {p._shown(node)}: removed {plural(total, 'node')} under it.", [node]


# ------------------------------------------------------------------- move


def build_move(p: Planner, cmd: Command) -> Built:
    name, dest = (p.text.literal(ref)[0] for ref in cmd.refs)
    where = f" ({cmd.where})" if cmd.where not in ("", "in", "under") else ""
    p.steps.append(f"Parsing prompt: action 'move', node {quote(name)}, destination {quote(dest)}{where}.")
    nodes = p.resolve_many(cmd.refs[0])
    anchor = p.resolve(cmd.refs[1])
    if ROOT_ID in nodes:
        raise _stop("The root can't be moved.")
    for node in nodes:
        if p._is_inside(anchor, node):
            raise _stop(f"I can't move {p._shown(node)} into itself or one of its own descendants.")
    words = {"top": "to the top of", "bottom": "to the bottom of"}.get(cmd.where, "under")
    for offset, node in enumerate(nodes):
        delta: dict[str, Any] = {"action": "move", "path": p.tree.path(node)}
        if cmd.where in ("after", "before"):
            parent = p.tree.parent(anchor)
            if parent is None:
                raise _stop("Nothing can go before or after the root.")
            kids = [k for k in p.tree.children(parent) if k != node]
            index = kids.index(anchor) + (1 if cmd.where == "after" else 0) + (offset if cmd.where == "after" else 0)
            delta.update(to=f"{p.tree.path(parent)}/children", index=index)
            words = f"{cmd.where}"
        else:
            delta["to"] = f"{p.tree.path(anchor)}/children"
            if cmd.where == "top":
                delta["index"] = offset
        p.emit(delta)
    return f"Moved {join([p._shown(n) for n in nodes])} {words} {p._shown(anchor)}.", nodes


def _one_node(p: Planner, cmd: Command, action: str, detail: str = "") -> str:
    """Notes the parsed command of one node (by the name the prompt gave) and resolves that node."""
    name = p.text.literal(cmd.refs[0])[0]
    p.steps.append(f"Parsing prompt: action '{action}', node {quote(name)}{detail}.")
    return p.resolve(cmd.refs[0])


def build_shift(p: Planner, cmd: Command) -> Built:
    node = _one_node(p, cmd, "move", f" {cmd.where} among its siblings")
    parent = p.tree.parent(node)
    if parent is None:
        raise _stop("The root can't be moved.")
    kids = p.tree.children(parent)
    here = kids.index(node)
    target = {"up": here - 1, "down": here + 1, "first": 0, "last": len(kids) - 1}[cmd.where]
    if not 0 <= target < len(kids) or target == here:
        return f"{cap(p._shown(node))} is already {'first' if here == 0 else 'last'} among its siblings.", [node]
    p.emit({"action": "move", "path": p.tree.path(node), "to": f"{p.tree.path(parent)}/children", "index": target})
    return f"Moved {p._shown(node)} {cmd.where}.", [node]


def build_outdent(p: Planner, cmd: Command) -> Built:
    """One level up: the node goes right after its parent."""
    node = _one_node(p, cmd, "outdent")
    parent = p.tree.parent(node)
    above = p.tree.parent(parent) if parent is not None else None
    if parent is None or above is None:
        raise _stop(f"{cap(p._shown(node))} is already at the top level.")
    index = p.tree.children(above).index(parent) + 1
    p.emit({"action": "move", "path": p.tree.path(node), "to": f"{p.tree.path(above)}/children", "index": index})
    return f"Moved {p._shown(node)} out of {p._shown(parent)}, right after it.", [node]


def build_indent(p: Planner, cmd: Command) -> Built:
    """One level down: the node becomes the last child of the sibling before it."""
    node = _one_node(p, cmd, "indent")
    parent = p.tree.parent(node)
    if parent is None:
        raise _stop("The root can't be moved.")
    kids = p.tree.children(parent)
    here = kids.index(node)
    if here == 0:
        raise _stop(f"{cap(p._shown(node))} is the first child, so there is no node before it to indent it under.")
    target = kids[here - 1]
    p.emit({"action": "move", "path": p.tree.path(node), "to": f"{p.tree.path(target)}/children"})
    return f"Moved {p._shown(node)} under {p._shown(target)}.", [node]


def build_swap(p: Planner, cmd: Command) -> Built:
    names = [p.text.literal(ref)[0] for ref in cmd.refs]
    p.steps.append(f"Parsing prompt: action 'swap', {quote(names[0])} and {quote(names[1])}.")
    first, second = p.resolve(cmd.refs[0]), p.resolve(cmd.refs[1])
    parent = p.tree.parent(first)
    if parent is None or parent != p.tree.parent(second) or first == second:
        raise _stop("I can swap two different nodes that share a parent; use 'move' for the others.")
    i, j = sorted((p.tree.children(parent).index(first), p.tree.children(parent).index(second)))
    low, high = p.tree.children(parent)[i], p.tree.children(parent)[j]
    to = f"{p.tree.path(parent)}/children"
    p.emit({"action": "move", "path": p.tree.path(high), "to": to, "index": i})
    p.emit({"action": "move", "path": p.tree.path(low), "to": to, "index": j})
    return f"Swapped {p._shown(first)} and {p._shown(second)}.", [first, second]


def build_duplicate(p: Planner, cmd: Command) -> Built:
    node = _one_node(p, cmd, "duplicate")
    if node == ROOT_ID:
        raise _stop("The root can't be duplicated.")
    if len(cmd.refs) > 1:
        parent, index = p.resolve(cmd.refs[1]), None
        if cmd.where in ("after", "before"):
            anchor, parent = parent, p.tree.parent(parent) or ROOT_ID
            index = p.tree.children(parent).index(anchor) + (cmd.where == "after")
        elif cmd.where == "top":
            index = 0
    else:
        parent = p.tree.parent(node) or ROOT_ID
        index = p.tree.children(parent).index(node) + 1
    copy = _copy(p, p.tree.subtree(node))
    size = sum(1 for _ in p.tree.iter_ids(node))
    max_nodes, _ = _limits()
    if size > max_nodes:
        raise _stop(f"I can copy at most {max_nodes} nodes in one command ({p._shown(node)} has {size}).")
    delta: dict[str, Any] = {"action": "add", "path": f"{p.tree.path(parent)}/children", "node": copy}
    if index is not None:
        delta["index"] = index
    p.emit(delta)
    where = "next to it" if len(cmd.refs) == 1 else f"under {p._shown(parent)}"
    inner = f" (with {plural(size - 1, 'node')} inside)" if size > 1 else ""
    return f"Duplicated {p._shown(node)}{inner}: the copy is {where}.", [copy["id"]]


def _copy(p: Planner, node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.fresh_id(),
        "value": node["value"],
        "children": [_copy(p, c) for c in node.get("children", [])],
    }
    if node.get("props"):
        out["props"] = dict(node["props"])
    return out


def build_sort(p: Planner, cmd: Command) -> Built:
    name = p.text.literal(cmd.refs[0])[0]
    key = _key(p, cmd.key) if cmd.key else ""
    order = cmd.where
    if key in ("name", "title", "value", "text"):
        order, key = ("-name" if order == "-key" else "name"), ""
    elif key == "priority":
        order, key = "priority", ""
    label = {"name": "alphabetically", "-name": "in reverse alphabetical order", "priority": "by priority"}.get(
        order, f"by {key}" + (" (descending)" if order == "-key" else "")
    )
    p.steps.append(f"Parsing prompt: action 'sort', the children of {quote(name)} {label}.")
    node = p.resolve(cmd.refs[0])
    kids = list(p.tree.children(node))
    wanted = sorted(kids, key=p.sort_key(order, key), reverse=order in ("-name", "-key"))
    moves = 0
    for index, kid in enumerate(wanted):
        if p.tree.children(node)[index] != kid:
            p.emit({"action": "move", "path": p.tree.path(kid), "to": f"{p.tree.path(node)}/children", "index": index})
            moves += 1
    if not moves:
        return f"The children of {p._shown(node)} are already sorted {label}.", [node]
    return f"Sorted the {plural(len(kids), 'child').replace('childs', 'children')} of {p._shown(node)} {label}.", [node]


BUILDERS: Final[dict[str, Callable[[Planner, Command], Built]]] = {
    "add": build_add,
    "rename": build_rename,
    "set": build_set,
    "unset": build_unset,
    "delete": build_delete,
    "delete_from": build_delete_from,
    "clear": build_clear,
    "move": build_move,
    "shift": build_shift,
    "outdent": build_outdent,
    "indent": build_indent,
    "swap": build_swap,
    "duplicate": build_duplicate,
    "sort": build_sort,
}


# --------------------------------------------------------------- questions


def answer(p: Planner, asked: Question) -> str:
    if asked.kind == "total":
        n = len(p.tree) - 1
        top = len(p.tree.children(ROOT_ID))
        return f"There are {plural(n, 'node')} in the tree besides the root ({top} at the top level)."
    if asked.kind == "filter":
        return _filter(p, p.text.literal(asked.ref)[0])
    if asked.kind == "find":
        return _find(p, p.text.literal(asked.ref)[0])
    node = p.resolve(asked.ref)
    kids = p.tree.children(node)
    if asked.kind == "count":
        below = p._descendants(node)
        return f"{cap(p._shown(node))} has {plural(len(kids), 'child').replace('childs', 'children')}" + (
            f" ({below} nodes below it in all)." if below != len(kids) else "."
        )
    if asked.kind == "where":
        path = p._slash_path(node) if node != ROOT_ID else "the root"
        parent = p.tree.parent(node)
        inside = f" It is under {p._shown(parent)}." if parent is not None else ""
        return f"{cap(p._shown(node))} is at {path}.{inside}"
    if asked.kind == "prop":
        key = _key(p, asked.key)
        props = p.tree.props(node)
        if key not in props:
            have = f" It has: {', '.join(props)}." if props else " It has no properties."
            return f"{cap(p._shown(node))} has no {key}.{have}"
        return f"The {key} of {p._shown(node)} is {props[key]}."
    if not kids:
        return f"{cap(p._shown(node))} has no children."
    lines = p.outline(node)[1:]
    return f"Under {p._shown(node)}:\n" + "\n".join(line[2:] for line in lines)


def _find(p: Planner, name: str) -> str:
    needle = name.strip().casefold()
    hits = [i for i in p.tree.iter_ids() if i != ROOT_ID and needle and needle in p.tree.value(i).casefold()]
    if not hits:
        close = p._close(name)
        tip = f" Did you mean {join([quote(c) for c in close], 'or')}?" if close else ""
        return f"No node matches {quote(name)}.{tip}"
    listed = "; ".join(p._slash_path(i) for i in hits[:10])
    more = f" and {len(hits) - 10} more" if len(hits) > 10 else ""
    return f"{plural(len(hits), 'node')} match {quote(name)}: {listed}{more}."


def _filter(p: Planner, wanted: str) -> str:
    """'which tasks are done' / 'list high priority items': nodes whose status or priority matches."""
    from canopy.assistant.offline.grammar import status_value

    level = _LEVEL_PRIORITY.fullmatch(wanted)
    key, value = ("priority", level.group(1).lower()) if level else ("status", status_value(wanted))
    hits = [i for i in p.tree.iter_ids() if str(p.tree.props(i).get(key, "")).lower() == value]
    if not hits:
        return f"No node has {key} {quote(value)}."
    listed = "; ".join(p._slash_path(i) for i in hits[:20])
    more = f" and {len(hits) - 20} more" if len(hits) > 20 else ""
    return f"{plural(len(hits), 'node')} with {key} {quote(value)}: {listed}{more}."
