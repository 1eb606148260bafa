"""What a personal access token may do, through AgentTools on the real app's session manager: the per-token
rate limit and the refusals that do not need a network client (the MCP stack tests cover the rest)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from canopy import tokens
from canopy.agents.tools import CALLS_PER_WINDOW, AgentError, AgentTools, Caller
from tests.conftest import register_and_login


async def caller(client: httpx.AsyncClient, app: FastAPI, access: str, **body: object) -> Caller:
    r = await client.post(
        "/api/tokens", json={"name": "bot", "scope": "write", **body}, headers={"Authorization": f"Bearer {access}"}
    )
    token = await tokens.verify_token(app.state.services.engine, r.json()["token"])
    assert token is not None
    return Caller(token)


async def test_calls_are_rate_limited_per_token(client: httpx.AsyncClient, app: FastAPI) -> None:
    access = await register_and_login(client)
    tools = AgentTools(app.state.services.sessions)
    first, second = await caller(client, app, access), await caller(client, app, access)
    for _ in range(CALLS_PER_WINDOW):
        await tools.list_sessions(first)
    with pytest.raises(AgentError, match=r"Rate limited.*\(429\)"):
        await tools.list_sessions(first)
    assert await tools.list_sessions(second) == []  # another token has its own budget


async def test_writes_are_one_change_set_attributed_to_the_token(client: httpx.AsyncClient, app: FastAPI) -> None:
    access = await register_and_login(client)
    session_id = (await client.post("/api/sessions", json={}, headers={"Authorization": f"Bearer {access}"})).json()[
        "session_id"
    ]
    tools = AgentTools(app.state.services.sessions)
    bot = await caller(client, app, access)
    added = await tools.add_nodes(bot, session_id, "root", ["a", "b", "c"], index=0)
    live = await app.state.services.sessions.get(session_id, bot.user_id)
    assert [live.tree.value(i) for i in live.tree.children("root")] == ["a", "b", "c"]
    assert live.undo_stack[-1].actor == bot.actor and len(live.undo_stack[-1].changes) == 3
    with pytest.raises(AgentError, match="longer than 500"):
        await tools.add_nodes(bot, session_id, "root", ["ok", "x" * 501])
    assert live.tree.rev == added["rev"] and len(live.tree) == 4  # all or nothing
    await tools.undo(bot, session_id)
    assert live.tree.children("root") == ()
