"""A compact tree notation for the offline assistant's phrasing sets.

``Project[Design{priority=high}, Build], Done`` is the root's children: each node is its value, then
optional props in braces (``key=value; key=value``; ints, floats and true/false read as such), then
optional children in brackets. Values may not contain ``,;[]{}=``.
"""

from __future__ import annotations

import re
from typing import Any

from canopy.tree import ROOT_ID, Tree

_TOKEN = re.compile(r"\s*([\[\]{},])\s*|([^\[\]{},]+)")


def _scalar(text: str) -> Any:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    return {"true": True, "false": False}.get(text, text)


def parse(text: str) -> list[dict[str, Any]]:
    """The nodes of a notation string as wire-format dicts without ids."""
    tokens = [m.group(1) or m.group(2).strip() for m in _TOKEN.finditer(text) if (m.group(1) or m.group(2).strip())]
    nodes, rest = _nodes(tokens)
    if rest:
        raise ValueError(f"unexpected {rest[0]!r} in {text!r}")
    return nodes


def _nodes(tokens: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    out: list[dict[str, Any]] = []
    while tokens and tokens[0] not in "]":
        value, tokens = tokens[0], tokens[1:]
        node: dict[str, Any] = {"value": value, "children": []}
        if tokens and tokens[0] == "{":
            body, tokens = tokens[1], tokens[3:]
            node["props"] = {k.strip(): _scalar(v.strip()) for k, v in (p.split("=", 1) for p in body.split(";"))}
        if tokens and tokens[0] == "[":
            node["children"], tokens = _nodes(tokens[1:])
            tokens = tokens[1:]  # the closing bracket
        out.append(node)
        if tokens and tokens[0] == ",":
            tokens = tokens[1:]
    return out, tokens


def build(text: str) -> Tree:
    counter = iter(range(10**6))

    def with_ids(node: dict[str, Any]) -> dict[str, Any]:
        out = {"id": f"t{next(counter)}", "value": node["value"], "children": [with_ids(c) for c in node["children"]]}
        if node.get("props"):
            out["props"] = node["props"]
        return out

    return Tree.from_dict({"id": ROOT_ID, "value": "Root", "children": [with_ids(n) for n in parse(text)]})


def shape(tree: Tree, node_id: str = ROOT_ID) -> list[dict[str, Any]]:
    """The root's children as id-free dicts, comparable with `parse`."""
    out = []
    for kid in tree.children(node_id):
        node: dict[str, Any] = {"value": tree.value(kid), "children": shape(tree, kid)}
        if tree.props(kid):
            node["props"] = tree.props(kid)
        out.append(node)
    return out


def render(nodes: list[dict[str, Any]]) -> str:
    parts = []
    for n in nodes:
        text = n["value"]
        if n.get("props"):
            text += (
                "{"
                + "; ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in n["props"].items())
                + "}"
            )
        if n["children"]:
            text += "[" + render(n["children"]) + "]"
        parts.append(text)
    return ", ".join(parts)


def values(nodes: list[dict[str, Any]]) -> set[str]:
    return {n["value"] for n in nodes} | {v for n in nodes for v in values(n["children"])}
