"""The tree tools a chat model may call, and their translation into tree deltas.

The schemas use OpenAI's strict subset (``strict: true``): every object has
``additionalProperties: false`` and lists all its properties as required; optional
fields are nullable instead, and there are no length or range keywords. Arbitrary
prop maps cannot be expressed in that subset, so props travel as a list of
``{key, value}`` pairs (a plain object is accepted too, from servers that ignore
``strict``). Arguments are validated here again, whatever the server promised.

The model addresses nodes by id; paths are built from the live tree
(``tree.path``). Every outcome, success or failure, becomes a JSON text for a
``role: "tool"`` message, so the model can correct itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from canopy.assistant.base import TurnContext
from canopy.tree import DeltaError, Tree

MAX_VALUES_PER_CALL: Final = 200

_NULLABLE_INT: Final[dict[str, Any]] = {"type": ["integer", "null"]}
_PROPS_SCHEMA: Final[dict[str, Any]] = {
    "type": ["array", "null"],
    "description": "Properties as key/value pairs; a null value deletes that key. Null for none.",
    "items": {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "value": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]},
        },
        "required": ["key", "value"],
        "additionalProperties": False,
    },
}


def _function(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            },
        },
    }


TOOLS: Final[list[dict[str, Any]]] = [
    _function(
        "add_nodes",
        "Add one or several new nodes, in the given order, as children of an existing node.",
        {
            "parent_id": {"type": "string", "description": "Id of the parent node ('root' for the top level)."},
            "values": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The text of each new node, one node per entry.",
            },
            "index": {
                **_NULLABLE_INT,
                "description": "Position among the parent's children (0 = first); null to append at the end.",
            },
            "props": {**_PROPS_SCHEMA, "description": "Properties given to every new node; null for none."},
        },
    ),
    _function(
        "update_node",
        "Rename a node and/or change its properties (props merge into the existing ones).",
        {
            "node_id": {"type": "string", "description": "Id of the node to change."},
            "value": {"type": ["string", "null"], "description": "The new text; null to keep it."},
            "props": _PROPS_SCHEMA,
        },
    ),
    _function(
        "remove_node",
        "Delete a node together with all of its descendants.",
        {"node_id": {"type": "string", "description": "Id of the node to delete (never 'root')."}},
    ),
    _function(
        "move_node",
        "Move a node (with its descendants) under another parent, or to another position.",
        {
            "node_id": {"type": "string", "description": "Id of the node to move."},
            "new_parent_id": {"type": "string", "description": "Id of the new parent."},
            "index": {
                **_NULLABLE_INT,
                "description": "Position among the new parent's children (0 = first); null to append.",
            },
        },
    ),
]

TOOL_NAMES: Final = tuple(t["function"]["name"] for t in TOOLS)


class ToolArgumentError(ValueError):
    """The model's arguments do not fit the tool's schema; the text is told to the model."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    ok: bool
    content: str  # the JSON text sent back as the tool message
    applied: int  # deltas applied by this call


# ---------------------------------------------------------------- argument checking


def parse_arguments(name: str, arguments: str | dict[str, Any]) -> dict[str, Any]:
    """Decode and validate a tool call's arguments into plain Python values."""
    if name not in TOOL_NAMES:
        raise ToolArgumentError(f"unknown tool {name!r}; the tools are {', '.join(TOOL_NAMES)}")
    if isinstance(arguments, str):
        text = arguments.strip() or "{}"
        try:
            raw = json.loads(text)
        except ValueError as exc:
            # the raw text is told to the model here only: the request echoes such a call as `{}`
            raise ToolArgumentError(f"the arguments are not valid JSON ({exc}); they were: {_excerpt(text)}") from None
    else:
        raw = arguments
    if not isinstance(raw, dict):
        raise ToolArgumentError("the arguments must be a JSON object")
    return _CHECKS[name](raw)


def _excerpt(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _only(raw: dict[str, Any], allowed: tuple[str, ...]) -> None:
    extra = sorted(set(raw) - set(allowed))
    if extra:
        raise ToolArgumentError(f"unexpected argument(s) {', '.join(extra)}; allowed: {', '.join(allowed)}")


def _string(raw: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    v = raw.get(key)
    if v is None:
        if required:
            raise ToolArgumentError(f"'{key}' is required")
        return None
    if not isinstance(v, str):
        raise ToolArgumentError(f"'{key}' must be a string")
    v = v.strip()
    if not v:
        raise ToolArgumentError(f"'{key}' must not be empty")
    return v


def _index(raw: dict[str, Any], key: str = "index") -> int | None:
    v = raw.get(key)
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if type(v) is not int:
        raise ToolArgumentError(f"'{key}' must be an integer or null")
    return v


def _props(raw: dict[str, Any]) -> dict[str, Any] | None:
    v = raw.get("props")
    if v is None:
        return None
    out: dict[str, Any] = {}
    if isinstance(v, dict):
        pairs = list(v.items())
    elif isinstance(v, list):
        pairs = []
        for item in v:
            if not isinstance(item, dict) or set(item) not in ({"key", "value"}, {"key"}):
                raise ToolArgumentError('each entry of \'props\' must be an object {"key": ..., "value": ...}')
            pairs.append((item.get("key"), item.get("value")))
    else:
        raise ToolArgumentError("'props' must be a list of {key, value} pairs or null")
    for key, value in pairs:
        if not isinstance(key, str) or not key.strip():
            raise ToolArgumentError("every prop key must be a non-empty string")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ToolArgumentError(f"prop {key!r} must be a string, number, boolean or null")
        if isinstance(value, float) and not math.isfinite(value):
            raise ToolArgumentError(f"prop {key!r} must be a finite number")
        out[key.strip()] = value
    return out


def _check_add(raw: dict[str, Any]) -> dict[str, Any]:
    _only(raw, ("parent_id", "values", "index", "props"))
    values = raw.get("values")
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values:
        raise ToolArgumentError("'values' must be a non-empty list of strings")
    if len(values) > MAX_VALUES_PER_CALL:
        raise ToolArgumentError(f"at most {MAX_VALUES_PER_CALL} values per call")
    clean: list[str] = []
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise ToolArgumentError("every entry of 'values' must be a non-empty string")
        clean.append(v.strip())
    return {"parent_id": _string(raw, "parent_id"), "values": clean, "index": _index(raw), "props": _props(raw)}


def _check_update(raw: dict[str, Any]) -> dict[str, Any]:
    _only(raw, ("node_id", "value", "props"))
    out = {"node_id": _string(raw, "node_id"), "value": _string(raw, "value", required=False), "props": _props(raw)}
    if out["value"] is None and not out["props"]:
        raise ToolArgumentError("give a new 'value' and/or some 'props' to change")
    return out


def _check_remove(raw: dict[str, Any]) -> dict[str, Any]:
    _only(raw, ("node_id",))
    return {"node_id": _string(raw, "node_id")}


def _check_move(raw: dict[str, Any]) -> dict[str, Any]:
    _only(raw, ("node_id", "new_parent_id", "index"))
    return {"node_id": _string(raw, "node_id"), "new_parent_id": _string(raw, "new_parent_id"), "index": _index(raw)}


_CHECKS: Final[dict[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "add_nodes": _check_add,
    "update_node": _check_update,
    "remove_node": _check_remove,
    "move_node": _check_move,
}


# ---------------------------------------------------------------- arguments -> deltas


def _children_path(tree: Tree, node_id: str) -> str:
    return tree.path(node_id) + "/children"  # NodeNotFoundError (a DeltaError, 404) when unknown


def update_delta(tree: Tree, args: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if args["value"] is not None:
        fields["value"] = args["value"]
    if args["props"]:
        fields["props"] = args["props"]
    return {"action": "update", "path": tree.path(args["node_id"]), "fields": fields}


def remove_delta(tree: Tree, args: dict[str, Any]) -> dict[str, Any]:
    return {"action": "remove", "path": tree.path(args["node_id"])}


def move_delta(tree: Tree, args: dict[str, Any]) -> dict[str, Any]:
    delta: dict[str, Any] = {
        "action": "move",
        "path": tree.path(args["node_id"]),
        "to": _children_path(tree, args["new_parent_id"]),
    }
    if args["index"] is not None:
        delta["index"] = args["index"]
    return delta


def add_delta(
    tree: Tree, parent_id: str, value: str, props: dict[str, Any] | None, index: int | None
) -> dict[str, Any]:
    node: dict[str, Any] = {"id": tree.new_id(), "value": value, "children": []}
    if props:
        clean = {k: v for k, v in props.items() if v is not None}
        if clean:
            node["props"] = clean
    delta: dict[str, Any] = {"action": "add", "path": _children_path(tree, parent_id), "node": node}
    if index is not None:
        delta["index"] = index
    return delta


def _dump(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _error(message: str, code: int | None = None, **extra: Any) -> ToolResult:
    payload: dict[str, Any] = {"ok": False, "error": message}
    if code is not None:
        payload["code"] = code
    payload.update(extra)
    return ToolResult(False, _dump(payload), sum(1 for _ in extra.get("added", ())))


async def run_tool(name: str, arguments: str | dict[str, Any], ctx: TurnContext) -> ToolResult:
    """Validate one call, apply its delta(s) through ``ctx.apply`` and describe the outcome."""
    try:
        args = parse_arguments(name, arguments)
    except ToolArgumentError as exc:
        return _error(f"invalid arguments for {name}: {exc}")
    tree = ctx.tree
    if name == "add_nodes":
        return await _run_add(args, ctx)
    try:
        if name == "update_node":
            await ctx.apply(update_delta(tree, args))
            node_id = args["node_id"]
            return ToolResult(
                True,
                _dump(
                    {"ok": True, "updated": {"id": node_id, "value": tree.value(node_id), "props": tree.props(node_id)}}
                ),
                1,
            )
        if name == "remove_node":
            node_id = args["node_id"]
            value = tree.value(node_id)
            descendants = sum(1 for _ in tree.iter_ids(node_id)) - 1
            await ctx.apply(remove_delta(tree, args))
            return ToolResult(
                True,
                _dump({"ok": True, "removed": {"id": node_id, "value": value, "descendants_removed": descendants}}),
                1,
            )
        applied = await ctx.apply(move_delta(tree, args))
        return ToolResult(
            True,
            _dump(
                {
                    "ok": True,
                    "moved": {
                        "id": args["node_id"],
                        "new_parent_id": args["new_parent_id"],
                        "index": applied.get("index", args["index"]),
                    },
                }
            ),
            1,
        )
    except DeltaError as exc:
        return _error(exc.message, exc.code)


async def _run_add(args: dict[str, Any], ctx: TurnContext) -> ToolResult:
    tree = ctx.tree
    parent_id: str = args["parent_id"]
    index: int | None = args["index"]
    added: list[dict[str, str]] = []
    for value in args["values"]:
        try:
            applied = await ctx.apply(add_delta(tree, parent_id, value, args["props"], index))
        except DeltaError as exc:
            message = exc.message
            if added:
                message += f" (the first {len(added)} value(s) were added, the rest were not)"
            return _error(message, exc.code, parent_id=parent_id, added=added)
        node = applied.get("node") or {}
        added.append({"id": str(node.get("id", "")), "value": str(node.get("value", value))})
        if index is not None:
            used = applied.get("index", index)
            index = (used if isinstance(used, int) else index) + 1
    return ToolResult(True, _dump({"ok": True, "parent_id": parent_id, "added": added}), len(added))
