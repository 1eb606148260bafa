"""Canopy's MCP server at `/mcp`: the official `mcp` SDK (`MCPServer`) over streamable HTTP.

Authentication is a personal access token as a bearer token (`PatVerifier`, an SDK
`TokenVerifier`), checked on every HTTP request, so a revoked token's next call fails; a request
still open when its token ends (a GET or listen stream) is cut then (`CanopyMcp.serve`,
`AgentStreams`). The tools are `canopy.agents.tools.AgentTools`; the resource
`canopy://sessions/{id}/tree` is the whole tree. Subscriptions serve both protocol eras:
`subscriptions/listen` (2026-07-28) through the SDK's bus, and `resources/subscribe` (2025) per
client connection (`canopy.agents.subscriptions`). Either way a watch (`canopy.agents.watch`)
turns every change of the tree, from any source, into notifications. `McpMount` routes `/mcp` to
the SDK's Starlette app ahead of FastAPI.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourceUpdated
from mcp_types import INVALID_PARAMS, EmptyResult, SubscribeRequestParams, ToolAnnotations, UnsubscribeRequestParams
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from canopy import tokens
from canopy.agents.forwarding import Forwarding
from canopy.agents.streams import AgentStream, AgentStreams
from canopy.agents.subscriptions import LegacySubscriptions
from canopy.agents.tools import AgentError, AgentTools, Caller
from canopy.agents.watch import TreeWatches
from canopy.config import Settings
from canopy.errors import CanopyError
from canopy.metrics import Metrics
from canopy.realtime.manager import SessionManager

log = logging.getLogger("canopy.agents")
PATH = "/mcp"
TREE_URI = "canopy://sessions/{session_id}/tree"
_URI_PREFIX, _URI_SUFFIX = "canopy://sessions/", "/tree"

SessionIdArg = Annotated[str, Field(min_length=1, max_length=64, description="A session id from list_sessions")]
NodeIdArg = Annotated[str, Field(min_length=1, max_length=64, description="A node id (the root is 'root')")]
IndexArg = Annotated[int | None, Field(ge=0, description="Position among the siblings; the end when omitted")]


def tree_uri(session_id: str) -> str:
    return f"{_URI_PREFIX}{session_id}{_URI_SUFFIX}"


def session_of(uri: str) -> str | None:
    if uri.startswith(_URI_PREFIX) and uri.endswith(_URI_SUFFIX):
        inner = uri[len(_URI_PREFIX) : -len(_URI_SUFFIX)]
        return inner if inner and "/" not in inner else None
    return None


class _Request:
    """One HTTP request to /mcp, cancelled if the token that authenticated it ends while it is open."""

    def __init__(self, cancel: anyio.CancelScope) -> None:
        self.cancel = cancel
        self.stream: AgentStream | None = None


# The /mcp request being served in this task: the SDK's auth middleware (PatVerifier) runs in it.
_current_request: ContextVar[_Request | None] = ContextVar("canopy_mcp_request", default=None)


class PatVerifier(TokenVerifier):
    """Bearer tokens on /mcp are personal access tokens, looked up (hashed) on every request."""

    def __init__(self, engine: Callable[[], AsyncEngine], verified: Callable[[tokens.PersonalToken], None]) -> None:
        self._engine = engine
        self._verified = verified

    async def verify_token(self, token: str) -> AccessToken | None:
        pat = await tokens.verify_token(self._engine(), token)
        if pat is None:
            return None
        self._verified(pat)
        expires = int(pat.expires_at.timestamp()) if pat.expires_at else None
        return AccessToken(
            token=token,
            client_id=pat.id,
            scopes=[pat.scope],
            subject=pat.user_id,
            expires_at=expires,
            claims={"canopy_token": pat},
        )


def current_caller() -> Caller:
    access = get_access_token()
    pat = (access.claims or {}).get("canopy_token") if access else None
    if not isinstance(pat, tokens.PersonalToken):  # cannot happen behind the SDK's auth middleware
        raise ToolError("Not authenticated")
    return Caller(pat)


class CanopyMcp:
    """The MCP server and what it needs at run time (filled in by the app's lifespan)."""

    def __init__(self, settings: Settings, metrics: Metrics, streams: AgentStreams) -> None:
        self.sessions: SessionManager | None = None
        self.engine: AsyncEngine | None = None
        self.metrics = metrics
        self.streams = streams
        self._secret = settings.secret_key.get_secret_value()
        self.forwarding: Forwarding | None = None  # session tools: here, or on the replica holding the session
        self.bus = InMemorySubscriptionBus()
        self.watches: TreeWatches | None = None
        self.legacy: LegacySubscriptions | None = None  # 2025-era subscribers, per client connection
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = asyncio.Event()
        public = f"https://localhost:{settings.https_port}"
        self.server: MCPServer[Any] = MCPServer(
            "canopy",
            title="Canopy",
            version="0.1.0",
            instructions="Canopy's live object trees: list sessions, read a tree, and add, update, move or "
            "delete nodes. Every change appears at once in the user's open tabs and can be undone.",
            token_verifier=PatVerifier(self._engine, self._track),
            # Canopy is no OAuth server: clients send a personal access token as a static bearer header.
            auth=AuthSettings(issuer_url=public, resource_server_url=None),
            subscriptions=self.bus,
            middleware=[self._authorise_listen],
        )
        hosts = [h.strip() for h in settings.mcp_allowed_hosts.split(",") if h.strip()]
        # Behind nginx the Host is the public name: only the configured names are served (421 otherwise).
        self._security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[v for h in hosts for v in (h, f"{h}:*")],
            allowed_origins=[v for h in hosts for s in ("https", "http") for v in (f"{s}://{h}", f"{s}://{h}:*")],
        )
        self.app: Starlette = self._build_app()
        self._register_tools()
        self._register_resources()

    def _build_app(self) -> Starlette:
        """The SDK's app with a new session manager (one can run only once; an app's lifespan may run again)."""
        return self.server.streamable_http_app(streamable_http_path=PATH, transport_security=self._security)

    def _engine(self) -> AsyncEngine:
        assert self.engine is not None
        return self.engine

    async def start(self, sessions: SessionManager, engine: AsyncEngine) -> None:
        """Runs the SDK's session manager in a task of its own: its anyio task group must be entered and
        left by one task, which a lifespan driven by a test harness (or ASGI server) does not promise."""
        self.sessions, self.engine = sessions, engine
        if self._started:
            self.app = self._build_app()
        self._started = True
        self._tools = AgentTools(sessions)
        self.forwarding = Forwarding(self._tools, sessions.cluster, self._secret)
        self.watches = TreeWatches(sessions, self._notify, self.metrics.mcp_subscriptions)
        self.legacy = LegacySubscriptions(self.watches, self.streams)
        ready, self._stopping = asyncio.Event(), asyncio.Event()

        async def run_sessions() -> None:
            async with self.server.session_manager.run():
                ready.set()
                await self._stopping.wait()

        self._task = asyncio.create_task(run_sessions(), name="mcp-sessions")
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({self._task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._task.done():
            self._task.result()  # it failed to start: raise why

    async def stop(self) -> None:
        if self.legacy is not None:
            self.legacy.close()
        if self.watches is not None:
            await self.watches.close()
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None
        if self.forwarding is not None:
            await self.forwarding.close()

    # --- requests, each ended with its token -------------------------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serves one /mcp request; if its token ends meanwhile (`AgentStreams`), the request is cut and
        its response ended properly: a 401 if nothing was sent yet, else the end of the open stream."""
        started = finished = False

        async def tracked(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        with anyio.CancelScope() as cancel:
            request = _Request(cancel)
            reset = _current_request.set(request)
            try:
                await self.app(scope, receive, tracked)
            finally:
                _current_request.reset(reset)
                if request.stream is not None:
                    self.streams.discard(request.stream)
        if cancel.cancelled_caught:
            if not started:
                await send({"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
            elif not finished:
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _track(self, pat: tokens.PersonalToken) -> None:
        """The request being served was authenticated by `pat`: it ends if `pat` does."""
        request = _current_request.get()
        if request is None or request.stream is not None:
            return
        cancel = request.cancel
        request.stream = AgentStream("mcp", pat.user_id, pat.id, lambda _why: cancel.cancel())
        self.streams.add(request.stream)

    # --- tools -----------------------------------------------------------------------

    def _register_tools(self) -> None:
        server = self.server

        async def call(work: Callable[[AgentTools, Caller], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
            try:
                return await work(self._tools, current_caller())
            except AgentError as exc:
                raise ToolError(str(exc)) from None

        on_session = self._on_session

        read_only = ToolAnnotations(read_only_hint=True)

        @server.tool(annotations=read_only)
        async def list_sessions() -> dict[str, Any]:
            """The sessions (trees) this token may see: id, title, node count, last update."""
            return await call(lambda t, c: _wrap(t.list_sessions(c)))

        @server.tool(annotations=read_only)
        async def get_tree(
            session_id: SessionIdArg,
            node_id: NodeIdArg | None = None,
            depth: Annotated[int | None, Field(ge=1, le=200)] = None,
        ) -> dict[str, Any]:
            """A session's tree, or the subtree of node_id, down to depth levels (1: the node alone).
            Nodes are {id, value, props?, children}; a node whose children were left out has children_count."""
            return await on_session("get_tree", session_id, node_id=node_id, depth=depth)

        @server.tool(annotations=read_only)
        async def find_nodes(
            session_id: SessionIdArg, query: Annotated[str, Field(min_length=1, max_length=500)]
        ) -> dict[str, Any]:
            """Nodes whose value contains query (ignoring case), or whose id is query, with their id paths."""
            return await on_session("find_nodes", session_id, query=query)

        @server.tool(annotations=ToolAnnotations(destructive_hint=False))
        async def add_nodes(
            session_id: SessionIdArg,
            parent_id: NodeIdArg,
            values: Annotated[list[str], Field(min_length=1, max_length=100)],
            index: IndexArg = None,
        ) -> dict[str, Any]:
            """Adds one child of parent_id per value, in order (at index, else at the end). One undoable change;
            in a review-mode session a proposal instead (status "proposed", nothing applied)."""
            return await on_session("add_nodes", session_id, parent_id=parent_id, values=values, index=index)

        @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True))
        async def update_node(
            session_id: SessionIdArg,
            node_id: NodeIdArg,
            value: Annotated[str | None, Field(max_length=500)] = None,
            props: Annotated[
                dict[str, str | int | float | bool | None] | None,
                Field(description="Merged into the node's props; null deletes a key"),
            ] = None,
        ) -> dict[str, Any]:
            """Renames a node (value) and/or merges props into it. One undoable change (a proposal in review mode)."""
            return await on_session("update_node", session_id, node_id=node_id, value=value, props=props)

        @server.tool(annotations=ToolAnnotations(destructive_hint=False))
        async def move_node(
            session_id: SessionIdArg, node_id: NodeIdArg, parent_id: NodeIdArg, index: IndexArg = None
        ) -> dict[str, Any]:
            """Moves a node (with its subtree) under parent_id, at index or at the end. One undoable change (a proposal
            in review mode)."""
            return await on_session("move_node", session_id, node_id=node_id, parent_id=parent_id, index=index)

        @server.tool(annotations=ToolAnnotations(destructive_hint=True))
        async def delete_node(session_id: SessionIdArg, node_id: NodeIdArg) -> dict[str, Any]:
            """Deletes a node and everything under it. One undoable change (a proposal in review mode)."""
            return await on_session("delete_node", session_id, node_id=node_id)

        @server.tool(annotations=ToolAnnotations(destructive_hint=True))
        async def undo(session_id: SessionIdArg) -> dict[str, Any]:
            """Undoes this user's last change in the session (refused while the assistant runs, and in review mode)."""
            return await on_session("undo", session_id)

    async def _on_session(self, tool: str, session_id: str, **args: Any) -> dict[str, Any]:
        """A tool on one session, run here or forwarded to the replica that holds it (`Forwarding`)."""
        assert self.forwarding is not None
        try:
            return await self.forwarding.run(tool, current_caller(), {"session_id": session_id, **args})
        except AgentError as exc:
            raise ToolError(str(exc)) from None

    # --- the tree resource and its subscriptions ----------------------------------------

    def _register_resources(self) -> None:
        @self.server.resource(
            TREE_URI,
            name="tree",
            mime_type="application/json",
            description="A session's whole tree: {session_id, title, rev, tree}",
        )
        async def tree(session_id: str) -> dict[str, Any]:
            return await self._on_session("tree_json", session_id)

        lowlevel = self.server._lowlevel_server  # MCPServer has no public hook for resources/subscribe
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, self._subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, self._unsubscribe)

    async def _authorised_session(self, uri: str) -> str:
        """The session behind a tree URI the caller may read (and now watches); MCPError otherwise."""
        session_id = session_of(uri)
        if session_id is None:
            raise MCPError(INVALID_PARAMS, f"Not a Canopy tree resource: {uri}")
        caller = current_caller()
        assert self.sessions is not None
        try:
            # Checked in the database, not by loading it: with replicas, the session stays where it is held.
            self._tools.authorise(caller, session_id, write=False)
            await self.sessions.access(session_id, caller.user_id)
            assert self.watches is not None
            await self.watches.watch(session_id, caller.user_id)
        except AgentError as exc:
            raise MCPError(INVALID_PARAMS, str(exc)) from None
        except CanopyError as exc:
            raise MCPError(INVALID_PARAMS, f"{exc.message} ({exc.code})") from None
        return session_id

    async def _subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        session_id = await self._authorised_session(str(params.uri))
        assert self.legacy is not None
        self.legacy.subscribe(ctx, session_id, current_caller())
        return EmptyResult()

    async def _unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        session_id = session_of(str(params.uri))
        if session_id is not None:
            assert self.legacy is not None
            self.legacy.unsubscribe(ctx, session_id)
        return EmptyResult()

    async def _authorise_listen(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """A `subscriptions/listen` stream may name only trees its token may read; each is watched while the
        stream lasts (the SDK's ListenHandler forwards the bus's events)."""
        if ctx.method != "subscriptions/listen":
            return await call_next(ctx)
        notifications = (ctx.params or {}).get("notifications") or {}
        uris = notifications.get("resourceSubscriptions") or [] if isinstance(notifications, dict) else []
        watched: list[str] = []
        try:
            for uri in uris:
                watched.append(await self._authorised_session(str(uri)))
            return await call_next(ctx)
        finally:
            assert self.watches is not None
            for session_id in watched:
                self.watches.unwatch(session_id)

    async def _notify(self, session_id: str) -> None:
        uri = tree_uri(session_id)
        await self.bus.publish(ResourceUpdated(uri=uri))
        if self.legacy is not None:
            await self.legacy.notify(session_id, uri)


async def _wrap(work: Awaitable[list[dict[str, Any]]]) -> dict[str, Any]:
    return {"sessions": await work}


class McpMount:
    """Routes `/mcp` to the MCP app, everything else to FastAPI (so unknown paths keep FastAPI's JSON 404)."""

    def __init__(self, app: ASGIApp, mcp: CanopyMcp) -> None:
        self.app = app
        self.mcp = mcp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in (PATH, PATH + "/"):
            await self.mcp.serve(scope, receive, send)
            return
        await self.app(scope, receive, send)
