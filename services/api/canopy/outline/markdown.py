"""Markdown: a nested bullet outline, props as `key:: value` lines under their bullet.

    # Root                       the root's value (optional; the first line when present)
    owner:: "ann"                the root's props: unindented, before the first bullet
    - Design                     a node: `-`, `*` or `+`, a space, the value
      priority:: "high"          its props: indented deeper than its bullet, before its children
      done:: true
      - Wireframes               a child: indented deeper than its parent's bullet

A value is the rest of its line with `\\`, `\n` and `\r` standing for a backslash, a line feed
and a carriage return (other backslashes are literal). A prop value is a JSON string, number or
boolean; a key is written bare when it is made of `A-Z a-z 0-9 _ . -`, else as a JSON string.
Blank lines are ignored; a tab in indentation counts as four spaces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from canopy.outline.model import Budget, Document, Item, OutlineError
from canopy.tree import Scalar, TreeLimits

INDENT = "  "
_BARE_KEY = re.compile(r"[A-Za-z0-9_.-]+")
_PROP = re.compile(r'(?P<key>"(?:[^"\\]|\\.)*"|[A-Za-z0-9_.-]+):: (?P<value>.*)')
_BULLET = re.compile(r"[-*+](?: (?P<text>.*)|$)")
_UNESCAPE = re.compile(r"\\([\\nr])")
_UNESCAPED = {"\\": "\\", "n": "\n", "r": "\r"}


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def unescape(text: str) -> str:
    return _UNESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], text)


def _prop_line(key: str, value: Scalar) -> str:
    shown = key if _BARE_KEY.fullmatch(key) else orjson.dumps(key).decode()
    return f"{shown}:: {orjson.dumps(value).decode()}"


def render(tree: Mapping[str, Any]) -> str:
    lines = [f"# {escape(tree['value'])}"]
    lines.extend(_prop_line(k, v) for k, v in (tree.get("props") or {}).items())
    if tree["children"]:
        lines.append("")
    stack: list[tuple[Mapping[str, Any], int]] = [(c, 0) for c in reversed(tree["children"])]
    while stack:
        node, level = stack.pop()
        lines.append(f"{INDENT * level}- {escape(node['value'])}")
        lines.extend(f"{INDENT * (level + 1)}{_prop_line(k, v)}" for k, v in (node.get("props") or {}).items())
        stack.extend((c, level + 1) for c in reversed(node["children"]))
    return "\n".join(lines) + "\n"


def _indent(line: str) -> tuple[int, str]:
    width = 0
    for i, ch in enumerate(line):
        if ch == " ":
            width += 1
        elif ch == "\t":
            width += 4
        else:
            return width, line[i:]
    return width, ""


def _parse_prop(text: str, number: int) -> tuple[str, Scalar] | None:
    match = _PROP.fullmatch(text)
    if match is None:
        return None
    key_text = match.group("key")
    try:
        key = orjson.loads(key_text) if key_text.startswith('"') else key_text
        value = orjson.loads(match.group("value"))
    except orjson.JSONDecodeError:
        raise OutlineError('a property value must be JSON: a "string", a number, true or false', line=number) from None
    if isinstance(value, (dict, list)) or value is None:
        raise OutlineError("a property value must be a string, a number, true or false", line=number)
    return str(key), value


class _Parser:
    def __init__(self, limits: TreeLimits) -> None:
        self.budget = Budget(limits)
        self.root = Item("Root")
        # Open bullets, outermost first: (indentation of the marker, item, its depth).
        self.open: list[tuple[int, Item, int]] = []
        self.seen_content = False

    def line(self, number: int, raw: str) -> None:
        width, text = _indent(raw.removesuffix("\r"))
        if not text:
            return
        if text.startswith("#") and (text == "#" or text.startswith("# ")):
            self.heading(number, text)
        elif (bullet := _BULLET.fullmatch(text)) is not None:
            self.bullet(number, width, unescape(bullet.group("text") or ""))
        elif (prop := _parse_prop(text, number)) is not None:
            self.prop(number, width, *prop)
        else:
            raise OutlineError("expected a bullet ('- text') or a property ('key:: value')", line=number)
        self.seen_content = True

    def heading(self, number: int, text: str) -> None:
        if self.seen_content:
            raise OutlineError("a heading (the root's value) may only be the first line", line=number)
        self.root.value = unescape(text[2:])
        self.budget.check(self.root, line=number)

    def bullet(self, number: int, width: int, value: str) -> None:
        while self.open and self.open[-1][0] >= width:
            self.open.pop()
        parent, depth = (self.open[-1][1], self.open[-1][2]) if self.open else (self.root, 1)
        item = Item(value)
        self.budget.add(item, depth + 1, line=number)
        parent.children.append(item)
        self.open.append((width, item, depth + 1))

    def prop(self, number: int, width: int, key: str, value: Scalar) -> None:
        while self.open and self.open[-1][0] >= width:
            self.open.pop()
        item = self.open[-1][1] if self.open else self.root
        if item.children:
            raise OutlineError("a property must come before the node's children", line=number)
        if key in item.props:
            raise OutlineError(f"property {key!r} is given twice", line=number)
        item.props[key] = value
        self.budget.check(item, line=number)


def parse(content: str, limits: TreeLimits) -> Document:
    parser = _Parser(limits)
    for number, raw in enumerate(content.removeprefix("\ufeff").split("\n"), start=1):
        parser.line(number, raw)
    return Document(None, parser.root)
