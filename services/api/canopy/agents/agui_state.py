"""The tree as AG-UI shared state, and each tree delta as an RFC 6902 JSON Patch on it.

State: `{"rev", "root", "nodes": {id: {"value", "props", "parent", "children": [ids]}}}`: a map
keyed by node id, so a patch path names a node, not a position that moves when siblings do.
`props` is always present (`{}` when empty), `parent` is null for the root. Pointers escape keys
per RFC 6901 (`~` as `~0`, `/` as `~1`): ids never need it, prop keys may.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Patch = list[dict[str, Any]]


def pointer(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _last(path: str) -> str:
    return path.rstrip("/").split("/")[-1]


def _parent_of(children_path: str) -> str:
    return _last(children_path.removesuffix("/children"))


class TreeState:
    def __init__(self, tree: Mapping[str, Any], rev: int) -> None:
        self.rev = rev
        self.root = str(tree["id"])
        self.nodes: dict[str, dict[str, Any]] = {}
        self._take(tree, None)

    def snapshot(self) -> dict[str, Any]:
        return {"rev": self.rev, "root": self.root, "nodes": {nid: self._copy(nid) for nid in self.nodes}}

    def _take(self, top: Mapping[str, Any], parent: str | None) -> list[str]:
        """Adds a wire-format subtree to the map; returns its ids, pre-order."""
        added: list[str] = []
        stack: list[tuple[Mapping[str, Any], str | None]] = [(top, parent)]
        while stack:
            node, above = stack.pop()
            nid = str(node["id"])
            kids = node.get("children") or []
            self.nodes[nid] = {
                "value": node["value"],
                "props": dict(node.get("props") or {}),
                "parent": above,
                "children": [str(k["id"]) for k in kids],
            }
            added.append(nid)
            stack.extend((k, nid) for k in reversed(kids))
        return added

    def _subtree(self, nid: str) -> list[str]:
        out, stack = [], [nid]
        while stack:
            current = stack.pop()
            out.append(current)
            stack.extend(self.nodes[current]["children"])
        return out

    def apply(self, delta: Mapping[str, Any], rev: int) -> Patch:
        """Applies one normalized delta (as a `tree_update` carries it) and returns the patch that does the same."""
        action = delta["action"]
        if action == "add":
            patch = self._add(delta)
        elif action == "remove":
            patch = self._remove(_last(delta["path"]))
        elif action == "update":
            patch = self._update(_last(delta["path"]), delta["fields"])
        else:
            patch = self._move(_last(delta["path"]), _parent_of(delta["to"]), int(delta["index"]))
        self.rev = rev
        patch.append({"op": "replace", "path": "/rev", "value": rev})
        return patch

    def _add(self, delta: Mapping[str, Any]) -> Patch:
        parent = _parent_of(delta["path"])
        ids = self._take(delta["node"], parent)
        index = int(delta["index"])
        self.nodes[parent]["children"].insert(index, ids[0])
        patch = [{"op": "add", "path": pointer("nodes", nid), "value": self._copy(nid)} for nid in ids]
        patch.append({"op": "add", "path": pointer("nodes", parent, "children", index), "value": ids[0]})
        return patch

    def _copy(self, nid: str) -> dict[str, Any]:
        node = self.nodes[nid]
        return {**node, "props": dict(node["props"]), "children": list(node["children"])}

    def _detach(self, nid: str) -> dict[str, Any]:
        parent = self.nodes[nid]["parent"]
        siblings: list[str] = self.nodes[parent]["children"]
        index = siblings.index(nid)
        del siblings[index]
        return {"op": "remove", "path": pointer("nodes", parent, "children", index)}

    def _remove(self, nid: str) -> Patch:
        patch = [self._detach(nid)]
        for gone in self._subtree(nid):
            del self.nodes[gone]
            patch.append({"op": "remove", "path": pointer("nodes", gone)})
        return patch

    def _update(self, nid: str, fields: Mapping[str, Any]) -> Patch:
        node = self.nodes[nid]
        patch: Patch = []
        if "value" in fields:
            node["value"] = fields["value"]
            patch.append({"op": "replace", "path": pointer("nodes", nid, "value"), "value": fields["value"]})
        for key, value in (fields.get("props") or {}).items():
            if value is None:
                if key in node["props"]:
                    del node["props"][key]
                    patch.append({"op": "remove", "path": pointer("nodes", nid, "props", key)})
            else:
                node["props"][key] = value
                patch.append({"op": "add", "path": pointer("nodes", nid, "props", key), "value": value})
        return patch

    def _move(self, nid: str, new_parent: str, index: int) -> Patch:
        patch = [self._detach(nid)]
        self.nodes[new_parent]["children"].insert(index, nid)
        self.nodes[nid]["parent"] = new_parent
        patch.append({"op": "add", "path": pointer("nodes", new_parent, "children", index), "value": nid})
        patch.append({"op": "replace", "path": pointer("nodes", nid, "parent"), "value": new_parent})
        return patch
