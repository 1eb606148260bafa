"""What an outside agent may do to a user's sessions, whatever protocol it came by (MCP today).

Each operation checks the caller's personal access token (its scope, its session limit, the
session's owner), then reads or changes the session through its one entry point: every write is
one change set (`LiveSession.submit`, or `undo`) attributed to `Actor(user, "agent", token
name)`, so the tree's limits and conflict checks, storage, broadcast to open tabs and undo apply
as to any other change. In a review-mode session a write is a proposal instead (the result says
`"status": "proposed"` and names it). Failures are `AgentError`s with a message meant for the agent.
"""

from __future__ import annotations

import inspect
from collections import deque
from dataclasses import dataclass
from typing import Any

from canopy.errors import CanopyError
from canopy.ratelimit import SlidingWindow
from canopy.realtime.changes import Actor
from canopy.realtime.manager import SessionManager
from canopy.realtime.session import LiveSession
from canopy.tokens import PersonalToken
from canopy.tree import ROOT_ID, Tree

# The operations on one session (each takes `session_id`): run by the replica that holds it.
WRITE_TOOLS = frozenset({"add_nodes", "update_node", "move_node", "delete_node", "undo"})
SESSION_TOOLS = frozenset({"get_tree", "find_nodes", "tree_json"}) | WRITE_TOOLS
MAX_TREE_NODES = 2000  # nodes in one get_tree answer; deeper levels are summarised by a count
MAX_FOUND = 50
MAX_VALUES = 100  # values in one add_nodes call
# Per token: the burst and mean rate of one WebSocket connection (40 calls, 20 a second).
CALLS_PER_WINDOW, WINDOW_SECONDS = 40, 2.0


class AgentError(Exception):
    """A refusal or failure the agent should read (MCP: a tool error)."""


@dataclass(frozen=True, slots=True)
class Caller:
    token: PersonalToken

    @property
    def user_id(self) -> str:
        return self.token.user_id

    @property
    def actor(self) -> Actor:
        return Actor(self.token.user_id, "agent", self.token.name)


def _canopy(exc: CanopyError) -> AgentError:
    return AgentError(f"{exc.message} ({exc.code})")


def node_summary(tree: Tree, node_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": node_id, "value": tree.value(node_id)}
    props = tree.props(node_id)
    if props:
        out["props"] = props
    return out


def bounded_subtree(tree: Tree, node_id: str, depth: int | None) -> dict[str, Any]:
    """`node_id` and its descendants down to `depth` levels (1: the node alone), breadth first and at most
    MAX_TREE_NODES nodes; a node whose children are left out says how many it has (`children_count`)."""
    top = node_summary(tree, node_id)
    shown = 1
    queue: deque[tuple[dict[str, Any], int]] = deque([(top, 1)])
    while queue:
        node, level = queue.popleft()
        kids = tree.children(node["id"])
        if not kids:
            node["children"] = []
            continue
        if (depth is not None and level >= depth) or shown + len(kids) > MAX_TREE_NODES:
            node["children_count"] = len(kids)
            continue
        node["children"] = [node_summary(tree, k) for k in kids]
        shown += len(kids)
        queue.extend((child, level + 1) for child in node["children"])
    return top


class AgentTools:
    def __init__(self, sessions: SessionManager) -> None:
        self.sessions = sessions
        self.calls = SlidingWindow(CALLS_PER_WINDOW, WINDOW_SECONDS)

    # --- access ----------------------------------------------------------------------

    def _throttle(self, caller: Caller) -> None:
        wait = self.calls.retry_after(caller.token.id)
        if wait == 0:
            self.calls.hit(caller.token.id)
        else:
            raise AgentError(
                f"Rate limited: at most {CALLS_PER_WINDOW} calls per {WINDOW_SECONDS:g} s per token; "
                f"retry in {wait:.1f} s (429)"
            )

    def authorise(self, caller: Caller, session_id: str, *, write: bool) -> None:
        """Counts the call, and refuses it unless the caller's token may read (or write) the session."""
        self._throttle(caller)
        if write and caller.token.scope != "write":
            raise AgentError("This token is read-only; create a write token to change trees (403)")
        if not caller.token.allows(session_id, write=write):
            raise AgentError("This token is limited to another session (403)")

    async def open(self, caller: Caller, session_id: str, *, write: bool) -> LiveSession:
        """The caller's session, if its token may read (or write) it."""
        self.authorise(caller, session_id, write=write)
        try:
            return await self.sessions.get(session_id, caller.user_id)
        except CanopyError as exc:
            raise _canopy(exc) from None

    async def run(self, tool: str, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        """A session tool by name (a call forwarded by another replica, `canopy.agents.forwarding`)."""
        if tool not in SESSION_TOOLS:
            raise AgentError(f"Unknown tool {tool!r} (400)")
        method = getattr(self, tool)
        try:
            inspect.signature(method).bind(caller, **args)
        except TypeError:
            raise AgentError(f"Bad arguments for {tool} (400)") from None
        result: dict[str, Any] = await method(caller, **args)
        return result

    def _node(self, live: LiveSession, node_id: str) -> str:
        if node_id not in live.tree:
            raise AgentError(f"No node {node_id!r} in this session (404)")
        return node_id

    async def _submit(self, live: LiveSession, caller: Caller, deltas: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Applies the deltas as one change set; None then. In a review-mode session they become a
        proposal instead, and this is the whole tool result (saying so, with the proposal's id)."""
        try:
            done = await live.submit(caller.actor, deltas)
        except CanopyError as exc:
            raise _canopy(exc) from None
        if done.proposal is None:
            return None
        return {
            "status": "proposed",
            "proposal_id": done.proposal.id,
            "rev": live.tree.rev,
            "summary": done.proposal.summary,
            "message": f"Review mode is on in this session: nothing was applied. The change was proposed as "
            f"{done.proposal.id}; an editor accepts or rejects it in Canopy.",
        }

    # --- reads -----------------------------------------------------------------------

    async def list_sessions(self, caller: Caller) -> list[dict[str, Any]]:
        self._throttle(caller)
        metas = await self.sessions.store.list_for(caller.user_id)
        return [
            {"session_id": m.id, "title": m.title, "node_count": m.node_count, "updated_at": m.updated_at.isoformat()}
            for m in metas
            if caller.token.allows(m.id, write=False)
        ]

    async def get_tree(
        self, caller: Caller, session_id: str, node_id: str | None = None, depth: int | None = None
    ) -> dict[str, Any]:
        live = await self.open(caller, session_id, write=False)
        start = self._node(live, node_id or ROOT_ID)
        return {
            "session_id": live.id,
            "title": live.title,
            "rev": live.tree.rev,
            "tree": bounded_subtree(live.tree, start, depth),
        }

    async def find_nodes(self, caller: Caller, session_id: str, query: str) -> dict[str, Any]:
        live = await self.open(caller, session_id, write=False)
        tree, needle = live.tree, query.strip().casefold()
        if not needle:
            raise AgentError("The query is empty (400)")
        found = []
        for nid in tree.iter_ids():
            if nid == query or needle in tree.value(nid).casefold():
                found.append({**node_summary(tree, nid), "path": tree.path(nid)})
                if len(found) == MAX_FOUND:
                    break
        return {"rev": tree.rev, "nodes": found, "truncated": len(found) == MAX_FOUND}

    # --- writes: each one change set ---------------------------------------------------

    async def add_nodes(
        self, caller: Caller, session_id: str, parent_id: str, values: list[str], index: int | None = None
    ) -> dict[str, Any]:
        live = await self.open(caller, session_id, write=True)
        if not values or len(values) > MAX_VALUES:
            raise AgentError(f"Give 1 to {MAX_VALUES} values (400)")
        path = live.tree.path(self._node(live, parent_id)) + "/children"
        ids: list[str] = []
        deltas = []
        for i, value in enumerate(values):
            nid = live.tree.new_id()
            while nid in ids:
                nid = live.tree.new_id()
            ids.append(nid)
            delta: dict[str, Any] = {"action": "add", "path": path, "node": {"id": nid, "value": value}}
            if index is not None:
                delta["index"] = index + i
            deltas.append(delta)
        proposed = await self._submit(live, caller, deltas)
        if proposed is not None:
            return {**proposed, "ids": ids}
        return {"status": "applied", "rev": live.tree.rev, "ids": ids}

    async def update_node(
        self,
        caller: Caller,
        session_id: str,
        node_id: str,
        value: str | None = None,
        props: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        live = await self.open(caller, session_id, write=True)
        if value is None and props is None:
            raise AgentError("Give a new value, props, or both (400)")
        fields: dict[str, Any] = {}
        if value is not None:
            fields["value"] = value
        if props is not None:
            fields["props"] = props
        path = live.tree.path(self._node(live, node_id))
        proposed = await self._submit(live, caller, [{"action": "update", "path": path, "fields": fields}])
        return proposed or {"status": "applied", "rev": live.tree.rev, "node": node_summary(live.tree, node_id)}

    async def move_node(
        self, caller: Caller, session_id: str, node_id: str, parent_id: str, index: int | None = None
    ) -> dict[str, Any]:
        live = await self.open(caller, session_id, write=True)
        delta: dict[str, Any] = {
            "action": "move",
            "path": live.tree.path(self._node(live, node_id)),
            "to": live.tree.path(self._node(live, parent_id)) + "/children",
        }
        if index is not None:
            delta["index"] = index
        proposed = await self._submit(live, caller, [delta])
        if proposed is not None:
            return proposed
        index = live.tree.children(parent_id).index(node_id)
        return {"status": "applied", "rev": live.tree.rev, "parent_id": parent_id, "index": index}

    async def delete_node(self, caller: Caller, session_id: str, node_id: str) -> dict[str, Any]:
        live = await self.open(caller, session_id, write=True)
        removed = sum(1 for _ in live.tree.iter_ids(self._node(live, node_id)))
        proposed = await self._submit(live, caller, [{"action": "remove", "path": live.tree.path(node_id)}])
        return proposed or {"status": "applied", "rev": live.tree.rev, "removed": removed}

    async def undo(self, caller: Caller, session_id: str) -> dict[str, Any]:
        live = await self.open(caller, session_id, write=True)
        try:
            await live.undo(caller.actor, None)
        except CanopyError as exc:
            raise _canopy(exc) from None
        return {"rev": live.tree.rev}

    async def tree_json(self, caller: Caller, session_id: str) -> dict[str, Any]:
        """The resource `canopy://sessions/{id}/tree`: the whole tree in the wire format, with its rev."""
        live = await self.open(caller, session_id, write=False)
        state = await live.state()
        return {"session_id": live.id, "title": state["title"], "rev": state["rev"], "tree": state["tree"]}
