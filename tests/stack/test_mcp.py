"""The MCP server through nginx, driven by the official Python SDK's client (`mcp`): tools, the tree
resource and its subscriptions in both protocol eras (and their end when a client goes), scopes,
revocation (which also ends open streams), review mode (a write becomes a proposal an open tab
decides), and a tool call's change arriving live on an open WebSocket tab."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
import websockets
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, ServerNotification
from websockets.typing import Origin

from tests.helpers import wait_until
from tests.support.metrics import scrape
from tests.support.stack import Stack, insecure_ssl_context

PASSWORD = "stack-password-1"
TOOLS = {"list_sessions", "get_tree", "find_nodes", "add_nodes", "update_node", "move_node", "delete_node", "undo"}
pytestmark = pytest.mark.timeout(120)


class Account:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.rest = httpx.Client(base_url=stack.base_url, verify=False, timeout=10, trust_env=False)
        username = self.username = f"m{uuid.uuid4().hex[:12]}"
        assert self.rest.post("/api/auth/register", json={"username": username, "password": PASSWORD}).is_success
        login = self.rest.post("/api/auth/login", data={"username": username, "password": PASSWORD})
        self.rest.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        self.access = login.json()["access_token"]

    def session(self, title: str = "MCP") -> str:
        return str(self.rest.post("/api/sessions", json={"title": title}).json()["session_id"])

    def token(self, **body: Any) -> dict[str, Any]:
        r = self.rest.post("/api/tokens", json={"name": "Test agent", "scope": "write", **body})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def tree(self, session_id: str) -> dict[str, Any]:
        return dict(self.rest.get(f"/api/sessions/{session_id}").json()["tree"])


@asynccontextmanager
async def mcp_client(stack: Stack, token: str, **kwargs: Any) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, verify=False, trust_env=False, timeout=30)
    async with (
        http,
        Client(streamable_http_client(stack.base_url + "/mcp", http_client=http), cache=None, **kwargs) as client,
    ):
        yield client


def payload(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    return dict(result.structured_content or json.loads(result.content[0].text))  # type: ignore[union-attr]


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result
    return str(result.content[0].text)  # type: ignore[union-attr]


async def open_tab(stack: Stack, access: str, session_id: str) -> Any:
    ws = await websockets.connect(
        stack.ws_url,
        ssl=insecure_ssl_context(),
        proxy=None,
        open_timeout=10,
        origin=Origin(f"https://127.0.0.1:{stack.https_port}"),
    )
    await ws.send(json.dumps({"type": "init_session", "data": {"token": access, "session_id": session_id}}))
    while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "chat_history":
        pass
    return ws


async def next_update(ws: Any) -> dict[str, Any]:
    return await next_frame(ws, "tree_update")


async def next_frame(ws: Any, frame_type: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame["type"] == frame_type:
            return dict(frame)


SUBSCRIPTIONS = "canopy_mcp_subscriptions"
MCP_STREAMS = 'canopy_agent_streams{kind="mcp"}'
SUBSCRIBERS = 'canopy_agent_streams{kind="mcp_subscription"}'


def metric(stack: Stack, name: str) -> float:
    return scrape(stack.api_url, name)


async def metrics_until(stack: Stack, what: str, **expected: float) -> None:
    names = {"subscriptions": SUBSCRIPTIONS, "streams": MCP_STREAMS, "subscribers": SUBSCRIBERS}

    def check() -> bool:
        return all(metric(stack, names[key]) == value for key, value in expected.items())

    await asyncio.to_thread(wait_until, check, 20, what)


async def test_tools_are_listed_with_their_hints(stack: Stack) -> None:
    account = Account(stack)
    async with mcp_client(stack, account.token()["token"]) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    assert tools["delete_node"].annotations and tools["delete_node"].annotations.destructive_hint is True
    assert tools["get_tree"].annotations and tools["get_tree"].annotations.read_only_hint is True
    assert "session_id" in tools["add_nodes"].input_schema["required"]


async def test_every_tool_changes_the_tree_live_for_open_tabs(stack: Stack) -> None:
    account = Account(stack)
    session_id = account.session()
    token = account.token()
    ws = await open_tab(stack, account.access, session_id)
    try:
        async with mcp_client(stack, token["token"]) as client:
            listed = payload(await client.call_tool("list_sessions", {}))["sessions"]
            assert [s["session_id"] for s in listed] == [session_id]

            added = payload(
                await client.call_tool(
                    "add_nodes",
                    {"session_id": session_id, "parent_id": "root", "values": ["Design", "Build", "Launch"]},
                )
            )
            updates = [await next_update(ws) for _ in range(3)]  # the tab sees the agent's change live
            assert [u["data"]["delta"]["node"]["value"] for u in updates] == ["Design", "Build", "Launch"]
            assert updates[-1]["data"]["rev"] == added["rev"]
            design, build, launch = added["ids"]

            found = payload(await client.call_tool("find_nodes", {"session_id": session_id, "query": "buil"}))
            assert [n["id"] for n in found["nodes"]] == [build]
            payload(
                await client.call_tool(
                    "update_node",
                    {"session_id": session_id, "node_id": design, "value": "Design v2", "props": {"owner": "ann"}},
                )
            )
            payload(
                await client.call_tool(
                    "move_node", {"session_id": session_id, "node_id": launch, "parent_id": build, "index": 0}
                )
            )
            removed = payload(await client.call_tool("delete_node", {"session_id": session_id, "node_id": design}))
            assert removed["removed"] == 1
            tree = payload(await client.call_tool("get_tree", {"session_id": session_id}))["tree"]
            assert [(c["value"], [g["value"] for g in c["children"]]) for c in tree["children"]] == [
                ("Build", ["Launch"])
            ]
            shallow = payload(await client.call_tool("get_tree", {"session_id": session_id, "depth": 1}))["tree"]
            assert shallow["children_count"] == 1 and "children" not in shallow
            payload(await client.call_tool("undo", {"session_id": session_id}))  # the delete
            for _ in range(3):  # update, move, remove (and its undo) reached the tab too
                await next_update(ws)
            undone = await next_update(ws)
            assert undone["data"]["origin"] == "undo" and undone["data"]["delta"]["node"]["value"] == "Design v2"
    finally:
        await ws.close()
    assert [c["value"] for c in account.tree(session_id)["children"]] == ["Design v2", "Build"]
    with sqlite3.connect(stack.data_dir / "canopy.db") as db:
        actors = db.execute(
            "SELECT DISTINCT actor_via, actor_name FROM change_sets WHERE session_id = ?", (session_id,)
        ).fetchall()
    assert actors == [("agent", "Test agent")]


async def test_bad_calls_are_tool_errors_and_change_nothing(stack: Stack) -> None:
    account = Account(stack)
    session_id = account.session()
    before = account.tree(session_id)
    async with mcp_client(stack, account.token()["token"]) as client:
        assert "No node 'nope'" in error_text(
            await client.call_tool("add_nodes", {"session_id": session_id, "parent_id": "nope", "values": ["x"]})
        )
        assert "longer than 500" in error_text(
            await client.call_tool(
                "add_nodes", {"session_id": session_id, "parent_id": "root", "values": ["ok", "x" * 501]}
            )
        )
        assert "Session not found" in error_text(await client.call_tool("get_tree", {"session_id": str(uuid.uuid4())}))
        assert "root" in error_text(
            await client.call_tool("delete_node", {"session_id": session_id, "node_id": "root"})
        )
        assert "Nothing to undo" in error_text(await client.call_tool("undo", {"session_id": session_id}))
        assert error_text(await client.call_tool("add_nodes", {"session_id": session_id, "parent_id": "root"}))
        # Still connected and working after all of that.
        assert payload(await client.call_tool("get_tree", {"session_id": session_id}))["rev"] == 0
    assert account.tree(session_id) == before


async def test_scopes_session_limits_and_revocation(stack: Stack) -> None:
    account = Account(stack)
    mine, other = account.session("mine"), account.session("other")
    read = account.token(scope="read")
    limited = account.token(session_id=mine)
    async with mcp_client(stack, read["token"]) as client:
        assert payload(await client.call_tool("get_tree", {"session_id": mine}))["tree"]["value"] == "Root"
        assert "read-only" in error_text(
            await client.call_tool("add_nodes", {"session_id": mine, "parent_id": "root", "values": ["x"]})
        )
    async with mcp_client(stack, limited["token"]) as client:
        assert "another session" in error_text(await client.call_tool("get_tree", {"session_id": other}))
        listed = payload(await client.call_tool("list_sessions", {}))["sessions"]
        assert [s["session_id"] for s in listed] == [mine]
        payload(await client.call_tool("add_nodes", {"session_id": mine, "parent_id": "root", "values": ["ok"]}))
        assert account.rest.delete(f"/api/tokens/{limited['id']}").status_code == 204
        with pytest.raises(MCPError) as refused:  # the token's next call fails
            await client.call_tool("get_tree", {"session_id": mine})
        assert "error response" in str(refused.value)  # the SDK does not pass the HTTP status on: 401 below
    assert account.tree(other)["children"] == []
    # No token, a bad one, an access token, the revoked one: refused before any MCP message is read.
    for header in (
        {},
        {"Authorization": "Bearer cnp_nope"},
        {"Authorization": f"Bearer {account.access}"},
        {"Authorization": f"Bearer {limited['token']}"},
    ):
        r = httpx.post(
            stack.base_url + "/mcp",
            headers={**header, "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            verify=False,
            trust_env=False,
        )
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


# The 2025 era's resources/subscribe is deprecated in the SDK, and still what desktop hosts speak.
@pytest.mark.filterwarnings("ignore:resources/subscribe is removed")
async def test_subscriptions_notify_changes_from_any_source(stack: Stack) -> None:
    account = Account(stack)
    session_id = account.session()
    uri = f"canopy://sessions/{session_id}/tree"
    token = account.token(scope="read")["token"]
    ws = await open_tab(stack, account.access, session_id)
    try:
        # 2026-07-28: subscriptions/listen.
        async with mcp_client(stack, token) as client, client.listen(resource_subscriptions=[uri]) as sub:
            assert list(sub.honored.resource_subscriptions or []) == [uri]
            await ws.send(
                json.dumps(
                    {
                        "type": "tree_op",
                        "data": {
                            "base_rev": 0,
                            "delta": {
                                "action": "add",
                                "path": "/root/children",
                                "node": {"id": "t1", "value": "From a tab"},
                            },
                        },
                    }
                )
            )
            event = await asyncio.wait_for(anext(aiter(sub)), 10)
            assert getattr(event, "uri", None) == uri
            contents = (await client.read_resource(uri)).contents
            assert json.loads(contents[0].text)["tree"]["children"][0]["value"] == "From a tab"  # type: ignore[union-attr]
        # 2025: resources/subscribe, then notifications/resources/updated on the session's stream.
        seen: asyncio.Queue[str] = asyncio.Queue()

        async def on_message(message: Any) -> None:
            if isinstance(message, ServerNotification) and message.method == "notifications/resources/updated":
                await seen.put(str(message.params.uri))

        async with mcp_client(stack, token, mode="legacy", message_handler=on_message) as client:
            await client.subscribe_resource(uri)
            r = account.rest.post(
                f"/api/sessions/{session_id}/import", json={"format": "markdown", "content": "- Imported\n"}
            )
            assert r.status_code == 200, r.text
            assert await asyncio.wait_for(seen.get(), 10) == uri
    finally:
        await ws.close()


async def test_a_subscription_needs_read_access_to_that_tree(stack: Stack) -> None:
    owner, stranger = Account(stack), Account(stack)
    session_id = owner.session()
    async with mcp_client(stack, stranger.token()["token"]) as client:
        with pytest.raises(MCPError, match="Session not found"):
            async with client.listen(resource_subscriptions=[f"canopy://sessions/{session_id}/tree"]):
                pass
        result = await client.call_tool("get_tree", {"session_id": session_id})
        assert "Session not found" in error_text(result)


async def test_review_mode_makes_an_agents_writes_proposals_a_tab_decides(stack: Stack) -> None:
    account = Account(stack)
    session_id = account.session()
    token = account.token(name="Reviewer bot")
    agent = {"username": account.username, "via": "agent", "name": "Reviewer bot"}
    ws = await open_tab(stack, account.access, session_id)
    try:
        async with mcp_client(stack, token["token"]) as client:
            kept = payload(
                await client.call_tool("add_nodes", {"session_id": session_id, "parent_id": "root", "values": ["Keep"]})
            )
            assert kept["status"] == "applied" and (await next_update(ws))["data"]["actor"] == agent
            r = account.rest.patch(f"/api/sessions/{session_id}", json={"review_mode": True})
            assert r.status_code == 200
            assert (await next_frame(ws, "session_updated"))["data"] == {"title": "MCP", "review_mode": True}

            proposed = payload(
                await client.call_tool(
                    "add_nodes", {"session_id": session_id, "parent_id": "root", "values": ["Alpha", "Beta"]}
                )
            )
            assert proposed["status"] == "proposed" and "nothing was applied" in proposed["message"]
            proposal = (await next_frame(ws, "proposal"))["data"]["proposal"]
            assert proposal["id"] == proposed["proposal_id"] and proposal["author"] == agent
            assert [d["node"]["id"] for d in proposal["deltas"]] == proposed["ids"]
            removal = payload(
                await client.call_tool("delete_node", {"session_id": session_id, "node_id": kept["ids"][0]})
            )
            assert removal["status"] == "proposed"
            assert (await next_frame(ws, "proposal"))["data"]["proposal"]["summary"] == "Remove 'Keep'"
            assert "Review mode is on" in error_text(await client.call_tool("undo", {"session_id": session_id}))
            assert [c["value"] for c in account.tree(session_id)["children"]] == ["Keep"]  # nothing applied

            decision = {"proposal_id": proposal["id"], "accept": "all"}
            await ws.send(json.dumps({"type": "proposal_decision", "id": "d1", "data": decision}))
            accepted = await next_update(ws)
            assert accepted["data"]["origin"] == "proposal" and accepted["data"]["actor"] == agent
            assert (await next_frame(ws, "proposal_resolved"))["data"]["accepted"] == [0, 1]
    finally:
        await ws.close()
    assert [c["value"] for c in account.tree(session_id)["children"]] == ["Keep", "Alpha", "Beta"]
    with sqlite3.connect(stack.data_dir / "canopy.db") as db:
        rows = db.execute(
            "SELECT author_via, author_name, status FROM proposals WHERE session_id = ?",
            (session_id,),
        ).fetchall()
        actors = db.execute(
            "SELECT actor_via, actor_name FROM change_sets WHERE session_id = ? ORDER BY number", (session_id,)
        ).fetchall()
    assert sorted(rows) == [("agent", "Reviewer bot", "open"), ("agent", "Reviewer bot", "resolved")]
    assert actors == [("agent", "Reviewer bot")] * 2  # the agent's own write, then the accepted proposal


async def listen_until_ended(sub: Any) -> str:
    """Reads a listen stream until it ends: closed by the server, or dropped."""
    try:
        async for _event in sub:
            pass
    except SubscriptionLost:
        return "lost"
    return "closed"


@pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed")
async def test_revoking_a_token_ends_its_open_streams(stack: Stack) -> None:
    account = Account(stack)
    session_id = account.session()
    uri = f"canopy://sessions/{session_id}/tree"
    token = account.token(scope="read")
    await metrics_until(stack, "no subscriptions left by earlier tests", subscriptions=0, streams=0)
    async with mcp_client(stack, token["token"], mode="legacy") as legacy:
        await legacy.subscribe_resource(uri)
        async with mcp_client(stack, token["token"]) as modern, modern.listen(resource_subscriptions=[uri]) as sub:
            # held open: the legacy client's GET stream and the listen stream; one subscription each
            await metrics_until(stack, "both streams open", subscriptions=2, subscribers=1, streams=2)
            assert account.rest.delete(f"/api/tokens/{token['id']}").status_code == 204
            assert await asyncio.wait_for(listen_until_ended(sub), 10) in ("closed", "lost")
            await metrics_until(stack, "every stream of the token ended", subscriptions=0, subscribers=0, streams=0)


@pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed")
async def test_a_clients_subscriptions_go_when_it_disconnects(stack: Stack) -> None:
    account = Account(stack)
    first, second = account.session("first"), account.session("second")
    token = account.token(scope="read")["token"]
    await metrics_until(stack, "no subscriptions left by earlier tests", subscriptions=0, subscribers=0)
    async with mcp_client(stack, token, mode="legacy") as client:
        for session_id in (first, second, first):  # the second subscription to `first` counts once
            await client.subscribe_resource(f"canopy://sessions/{session_id}/tree")
        assert (metric(stack, SUBSCRIPTIONS), metric(stack, SUBSCRIBERS)) == (2, 1)
        await client.unsubscribe_resource(f"canopy://sessions/{second}/tree")
        assert metric(stack, SUBSCRIPTIONS) == 1
    # Leaving ends the client's MCP session (DELETE): what it still held goes with it.
    await metrics_until(stack, "the client's subscriptions dropped", subscriptions=0, subscribers=0)
