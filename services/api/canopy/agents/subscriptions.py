"""2025-era tree subscriptions (`resources/subscribe`), held per MCP client connection.

A client connection's subscriptions each hold a watch (`TreeWatches`, counted once per client and
tree). They go when the client unsubscribes, when its connection ends however it ends (the client's
DELETE, the SDK's idle timeout, shutdown: the connection's exit stack), and when the token behind
it ends (`AgentStreams`): an MCP client that goes away leaves no watch, and so no session pinned in
memory, behind. Notifications go out on the connection's standalone stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession

from canopy.agents.streams import AgentStream, AgentStreams
from canopy.agents.tools import Caller
from canopy.agents.watch import TreeWatches

log = logging.getLogger("canopy.agents")


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection:
    """The client connection a request came on (its exit stack runs when the client is gone)."""
    # Private: mcp 2.3.0's public `Context.connection` is never built for low-level handlers (ServerRunner's TODO L54).
    connection = getattr(ctx.session, "_connection", None)
    if not isinstance(connection, Connection):  # an SDK change: fail loudly rather than leak
        raise RuntimeError("the MCP SDK no longer exposes the request's connection")
    return connection


@dataclass(eq=False)
class _Client:
    sender: ServerSession  # the latest request's session: its notifications use the connection's stream
    trees: set[str] = field(default_factory=set)  # Canopy session ids subscribed to
    stream: AgentStream | None = None


class LegacySubscriptions:
    def __init__(self, watches: TreeWatches, streams: AgentStreams) -> None:
        self.watches = watches
        self.streams = streams
        self._clients: dict[Connection, _Client] = {}

    def subscribe(self, ctx: ServerRequestContext[Any, Any], session_id: str, caller: Caller) -> None:
        """Records a subscription whose watch the caller has just taken (`TreeWatches.watch`)."""
        connection = connection_of(ctx)
        client = self._clients.get(connection)
        if client is None:
            client = self._clients[connection] = _Client(ctx.session)
            connection.exit_stack.callback(self.forget, connection)
            token = caller.token
            client.stream = AgentStream(
                "mcp_subscription", token.user_id, token.id, lambda _why: self.forget(connection)
            )
            self.streams.add(client.stream)
        client.sender = ctx.session
        if session_id in client.trees:
            self.watches.unwatch(session_id)  # already counted once for this client
        client.trees.add(session_id)

    def unsubscribe(self, ctx: ServerRequestContext[Any, Any], session_id: str) -> None:
        client = self._clients.get(connection_of(ctx))
        if client is not None and session_id in client.trees:
            client.trees.discard(session_id)
            self.watches.unwatch(session_id)

    def forget(self, connection: Connection) -> None:
        """The connection is gone (or its token ended): every subscription it held goes."""
        client = self._clients.pop(connection, None)
        if client is None:
            return
        for session_id in client.trees:
            self.watches.unwatch(session_id)
        if client.stream is not None:
            self.streams.discard(client.stream)

    async def notify(self, session_id: str, uri: str) -> None:
        for connection, client in list(self._clients.items()):
            if session_id not in client.trees:
                continue
            try:
                await client.sender.send_resource_updated(uri)
            except Exception:  # the client went away without its connection ending: forget it
                log.info("dropped the subscriptions of an MCP client that could not be notified")
                self.forget(connection)

    def close(self) -> None:
        for connection in list(self._clients):
            self.forget(connection)
