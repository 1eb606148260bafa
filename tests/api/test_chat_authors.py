"""Who said it: chat messages carry their author (docs/protocol.md `chat_message`, `chat_history`),
over the real app on SQLite and PostgreSQL: live frames, the history a later tab gets, the REST
session, an AG-UI agent's prompt, and messages stored before authors were (schema 9 upgraded)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import insert, text, update
from starlette.testclient import TestClient

from canopy import db
from canopy.config import Settings
from canopy.main import create_app
from canopy.realtime.store import now
from tests.api.test_agui import run, run_input
from tests.support.ws import Frame, collect_turn, login, recv

pytestmark = [pytest.mark.backends("sqlite", "postgres"), pytest.mark.timeout(120)]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def attach(ws: Any, token: str, session_id: str) -> list[Frame]:
    """Attaches a socket to the session; returns the chat_history's messages."""
    ws.send_json({"type": "init_session", "id": "init", "data": {"token": token, "session_id": session_id}})
    assert recv(ws)["type"] == "session_ready"
    history = recv(ws)
    assert history["type"] == "chat_history"
    return list(history["data"]["messages"])


def prompt(ws: Any, text_: str, frame_id: str) -> list[Frame]:
    ws.send_json({"type": "user_prompt", "id": frame_id, "data": {"prompt": text_}})
    return collect_turn(ws)


def authors(messages: list[Frame]) -> list[tuple[str, str, Any]]:
    return [(m["role"], m["content"][:9], m.get("author")) for m in messages]


ALICE = {"username": "alice", "via": "user"}
BOB = {"username": "bob", "via": "user"}
FOR_ALICE = {"username": "alice", "via": "assistant"}
FOR_BOB = {"username": "bob", "via": "assistant"}


def test_two_members_see_who_said_what_live_in_history_and_over_rest(tc: TestClient) -> None:
    tokens = {name: login(tc, name) for name in ("alice", "bob", "carol")}
    sid = tc.post("/api/sessions", json={"title": "Team"}, headers=auth(tokens["alice"])).json()["session_id"]
    for name, role in (("bob", "editor"), ("carol", "viewer")):
        r = tc.post(
            f"/api/sessions/{sid}/members", json={"username": name, "role": role}, headers=auth(tokens["alice"])
        )
        assert r.status_code == 201
    with (
        tc.websocket_connect(f"/ws/session?session={sid}") as a,
        tc.websocket_connect(f"/ws/session?session={sid}") as b,
    ):
        attach(a, tokens["alice"], sid)
        attach(b, tokens["bob"], sid)
        mine = prompt(a, "add 'Alpha' to root", "a1")
        seen_by_bob = collect_turn(b)
        for turn in (mine, seen_by_bob):
            assert turn[0]["type"] == "chat_message" and turn[0]["id"] == "a1"
            assert turn[0]["data"] == {"role": "user", "content": "add 'Alpha' to root", "author": ALICE}
        prompt(b, "add 'Beta' to root", "b1")
        seen_by_alice = collect_turn(a)
        assert seen_by_alice[0]["type"] == "chat_message" and seen_by_alice[0]["data"]["author"] == BOB
    # A later tab (a viewer's) gets every author in the history; REST shows the same.
    with tc.websocket_connect(f"/ws/session?session={sid}") as c:
        history = attach(c, tokens["carol"], sid)
    expected = [
        ("user", "add 'Alph", ALICE),
        ("assistant", history[1]["content"][:9], FOR_ALICE),
        ("user", "add 'Beta", BOB),
        ("assistant", history[3]["content"][:9], FOR_BOB),
    ]
    assert authors(history) == expected
    state = tc.get(f"/api/sessions/{sid}", headers=auth(tokens["carol"])).json()
    assert authors(state["history"]) == expected


def test_an_agents_prompt_names_the_token(tc: TestClient) -> None:
    """An AG-UI run with a personal access token: the prompt is the token user's, via the agent."""
    access = login(tc)
    sid = tc.post("/api/sessions", json={}, headers=auth(access)).json()["session_id"]
    pat = tc.post("/api/tokens", json={"name": "Copilot", "scope": "write"}, headers=auth(access)).json()["token"]
    events = run(tc, pat, sid, run_input("add 'Gamma' to root"))
    assert events[-1]["type"] == "RUN_FINISHED"
    history = tc.get(f"/api/sessions/{sid}", headers=auth(access)).json()["history"]
    assert [m.get("author") for m in history] == [
        {"username": "alice", "via": "agent", "name": "Copilot"},
        FOR_ALICE,
    ]


def _back_to_schema_9(conn: Any, session_id: str) -> None:
    """What schema 9 had: messages without author columns; one message stored then."""
    for column in ("author_user_id", "author_via", "author_name"):
        conn.execute(text(f"ALTER TABLE messages DROP COLUMN {column}"))
    conn.execute(update(db.schema_version).values(version=9))
    old = db.messages.c
    conn.execute(
        insert(db.messages).values(
            {old.session_id: session_id, old.role: "user", old.content: "old words", old.created_at: now()}
        )
    )


def test_messages_stored_before_authors_have_none_and_the_chat_goes_on(ws_settings: Settings) -> None:
    with TestClient(create_app(ws_settings), base_url="https://testserver") as tc:
        token = login(tc)
        sid = tc.post("/api/sessions", json={}, headers=auth(token)).json()["session_id"]
    engine = db.create_engine(ws_settings.sqlalchemy_url)

    async def downgrade() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(_back_to_schema_9, sid)
        await engine.dispose()

    asyncio.run(downgrade())
    with TestClient(create_app(ws_settings), base_url="https://testserver") as tc:  # migration 10 runs
        token = login(tc)
        with tc.websocket_connect(f"/ws/session?session={sid}") as ws:
            history = attach(ws, token, sid)
            assert history == [{"role": "user", "content": "old words", "created_at": history[0]["created_at"]}]
            turn = prompt(ws, "add 'Delta' to root", "p1")
            assert turn[0]["data"]["author"] == ALICE
    with TestClient(create_app(ws_settings), base_url="https://testserver") as tc:  # loaded from storage again
        token = login(tc)
        with tc.websocket_connect(f"/ws/session?session={sid}") as ws:
            assert authors(attach(ws, token, sid)) == [
                ("user", "old words", None),
                ("user", "add 'Delt", ALICE),
                ("assistant", "Added 'De", FOR_ALICE),
            ]
