"""What the model is told: the system prompt, the tree as an outline, the recent chat.

The outline has one line per node, indented two spaces per level::

    - Root [id=root]
      - Tasks [id=n-1] {priority: high}
        - Write report [id=n-2]

A tree whose outline does not fit the size budget (``llm_context_chars``) is cut
down: first the nodes the prompt names (a node's id, or its value, appearing among
the prompt's words or quoted phrases) with their ancestors and direct children, up
to half the budget; then the top levels breadth-first until the budget is used.
A node whose children are not all shown says how many are missing, and a last line
gives the number of nodes left out.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from canopy.assistant.base import ChatMessage
from canopy.tree import ROOT_ID, Scalar, Tree

SYSTEM_PROMPT: Final = """\
You are Canopy's assistant. The user sees a chat and, next to it, a live tree of nodes \
(an outline of tasks, notes, ideas...). You change that tree by calling tools; every call \
is applied at once and the user watches it happen.

Each node has an id, a text value, optional props (key/value pairs) and ordered children. \
The top node has id "root". Always address nodes by their id, taken from the outline below \
or from the results of your earlier tool calls (new nodes get their ids there).

Tools:
- add_nodes(parent_id, values, index, props): add one node per entry of values under parent_id, \
in order (index null = at the end).
- update_node(node_id, value, props): rename and/or set props (a null prop value deletes the key).
- remove_node(node_id): delete a node and everything under it.
- move_node(node_id, new_parent_id, index): move a node with its subtree.

Rules: make exactly the changes asked for, no others. When a name matches several nodes or no \
node, ask instead of guessing. When a tool answers with an error, fix the call or explain the \
problem. Several independent changes may be made with several tool calls in one reply. When \
done, answer briefly in plain text (the user's language) saying what you changed; do not \
repeat the whole tree. If the request is not about the tree, just answer it."""

_INDENT: Final = "  "
_MARKER_RESERVE: Final = len(" (+1000000 more children not shown)")
_FOOTER_RESERVE: Final = 160
_MAX_HISTORY_CHARS: Final = 8000
_WORD: Final = re.compile(r"[\w.:-]+", re.UNICODE)
_Q: Final = "\"'`\u2018\u2019\u201c\u201d\u00ab\u00bb"
_QUOTED: Final = re.compile(f"[{_Q}]([^{_Q}]{{1,200}})[{_Q}]")
_PLAIN: Final = re.compile(r"[^,{}:\"\n\r\t]*")


def _clean(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar(v: Scalar) -> str:
    if isinstance(v, str):
        return (
            v
            if v and v == v.strip() and _PLAIN.fullmatch(v) and len(v) <= 120
            else json.dumps(_clean(v, 120), ensure_ascii=False)
        )
    return json.dumps(v)


def node_line(tree: Tree, node_id: str, depth: int) -> str:
    """One outline line; ``depth`` counts from 0 for the root."""
    line = f"{_INDENT * depth}- {_clean(tree.value(node_id))} [id={node_id}]"
    props = tree.props(node_id)
    if props:
        line += " {" + ", ".join(f"{_clean(k, 64)}: {_scalar(v)}" for k, v in props.items()) + "}"
    return line


@dataclass(frozen=True, slots=True)
class Outline:
    text: str
    shown: int
    omitted: int


def _render(tree: Tree, include: set[str] | None) -> list[str]:
    """Pre-order lines of the included nodes (all when ``include`` is None)."""
    lines: list[str] = []
    stack: list[tuple[str, int]] = [(ROOT_ID, 0)]
    while stack:
        nid, depth = stack.pop()
        line = node_line(tree, nid, depth)
        kids = tree.children(nid)
        if include is not None:
            shown = [k for k in kids if k in include]
            if len(shown) < len(kids):
                line += f" (+{len(kids) - len(shown)} more children not shown)"
            kids = tuple(shown)
        lines.append(line)
        stack.extend((k, depth + 1) for k in reversed(kids))
    return lines


def named_nodes(tree: Tree, prompt: str) -> list[str]:
    """Ids of nodes the prompt names: by id, or by value among its words or quoted phrases."""
    folded = prompt.casefold()
    words = {w.casefold().strip(".:-") for w in _WORD.findall(prompt)}
    words.discard("")
    phrases = {" ".join(p.split()).casefold() for p in _QUOTED.findall(prompt)}
    raw_words = set(_WORD.findall(prompt)) | {w.strip(".:-") for w in _WORD.findall(prompt)}
    out: list[str] = []
    for nid in tree.iter_ids():
        if nid == ROOT_ID:
            continue
        value = " ".join(tree.value(nid).split()).casefold()
        if (
            nid in raw_words
            or value in words
            or value in phrases
            or (len(value) >= 4 and " " in value and _contains_phrase(folded, value))
        ):
            out.append(nid)
    return out


def _contains_phrase(text: str, phrase: str) -> bool:
    """``phrase`` occurs in ``text`` and is not part of a longer word there."""
    start = text.find(phrase)
    while start != -1:
        end = start + len(phrase)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before in "_-") and not (after.isalnum() or after in "_-"):
            return True
        start = text.find(phrase, start + 1)
    return False


def outline(tree: Tree, *, budget: int, prompt: str = "") -> Outline:
    """The tree as an outline of at most ``budget`` characters (always at least the root line)."""
    total = len(tree)
    lines: list[str] = []
    size = 0
    fits = True
    for line in _iter_full(tree):
        size += len(line) + 1
        if size > budget:
            fits = False
            break
        lines.append(line)
    if fits:
        return Outline("\n".join(lines), total, 0)

    limit = max(budget - _FOOTER_RESERVE, 0)
    include: set[str] = set()
    used = 0

    def cost(nid: str) -> int:
        c = len(node_line(tree, nid, tree.depth(nid) - 1)) + 1
        return c + _MARKER_RESERVE if tree.children(nid) else c

    def take(ids: Iterable[str], cap: int) -> bool:
        """Include ids (ancestors first) while they fit under ``cap``; False once full."""
        nonlocal used
        for nid in ids:
            if nid in include:
                continue
            chain = [nid]
            p = tree.parent(nid)
            while p is not None and p not in include:
                chain.append(p)
                p = tree.parent(p)
            need = sum(cost(c) for c in chain)
            if used + need > cap:
                return False
            used += need
            include.update(chain)
        return True

    include.add(ROOT_ID)  # always shown, whatever the budget
    used = cost(ROOT_ID)
    named = named_nodes(tree, prompt) if prompt else []
    if named:
        half = limit // 2
        if take(named, half):
            take((k for n in named for k in tree.children(n)), half)

    queue: deque[str] = deque([ROOT_ID])
    while queue:
        nid = queue.popleft()
        kids = tree.children(nid)
        if not take(kids, limit):
            break
        queue.extend(kids)

    lines = _render(tree, include)
    omitted = total - len(include)
    lines.append(
        f"({omitted} of {total} nodes are not shown to save space; "
        "nodes the user names are included. Ask the user when you need one you cannot see.)"
    )
    return Outline("\n".join(lines), len(include), omitted)


def _iter_full(tree: Tree) -> Iterable[str]:
    stack: list[tuple[str, int]] = [(ROOT_ID, 0)]
    while stack:
        nid, depth = stack.pop()
        yield node_line(tree, nid, depth)
        stack.extend((k, depth + 1) for k in reversed(tree.children(nid)))


def history_messages(history: list[ChatMessage], limit: int, prompt: str) -> list[dict[str, Any]]:
    """The last ``limit`` chat messages as API messages; consecutive same-role ones are merged."""
    turns = [t for t in history if t.role in ("user", "assistant") and t.content.strip()]
    if turns and turns[-1].role == "user" and turns[-1].content.strip() == prompt.strip():
        turns = turns[:-1]  # the current prompt, already in the history
    turns = turns[-limit:] if limit > 0 else []
    out: list[dict[str, Any]] = []
    for t in turns:
        content = t.content if len(t.content) <= _MAX_HISTORY_CHARS else t.content[:_MAX_HISTORY_CHARS] + "…"
        if out and out[-1]["role"] == t.role:
            out[-1]["content"] += "\n\n" + content
        else:
            out.append({"role": t.role, "content": content})
    return out


def build_messages(
    tree: Tree, prompt: str, history: list[ChatMessage], *, context_chars: int, history_messages_limit: int
) -> list[dict[str, Any]]:
    """System prompt with the tree outline, recent history, then the user's prompt."""
    tree_outline = outline(tree, budget=context_chars, prompt=prompt)
    system = f"{SYSTEM_PROMPT}\n\nThe tree now (revision {tree.rev}, {len(tree)} nodes):\n{tree_outline.text}"
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    messages.extend(history_messages(history, history_messages_limit, prompt))
    if messages[-1]["role"] == "user":
        messages.append({"role": "assistant", "content": "(no answer)"})
    messages.append({"role": "user", "content": prompt})
    return messages
