"""Review mode for changes from outside the tabs, over the real app (real SQLite): an outside agent's
writes (`AgentTools`, what the MCP tools call) and an import into a review-mode session become
proposals, and an accepted one is attributed to the agent or the import; review mode and title
changes reach every open tab at once (`session_updated`); the offline assistant's review-mode answer
says it proposed. (The MCP SDK client with a WebSocket tab, through nginx: tests/stack/test_mcp.py.)"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from canopy.agents.tools import AgentError, AgentTools
from canopy.main import create_app
from canopy.realtime.changes import Actor
from tests.api.realtime_fakes import FakePeer
from tests.api.test_agent_tools import caller
from tests.api.test_collab_review import decide, propose, review_session, snapshot, values
from tests.api.test_collab_sharing import auth, shared_session
from tests.conftest import make_settings, register_and_login
from tests.support.ws import Frame, init, recv

pytestmark = pytest.mark.timeout(120)


async def test_an_agents_writes_in_review_mode_are_proposals(client: httpx.AsyncClient, app: FastAPI) -> None:
    access = await register_and_login(client)
    headers = {"Authorization": f"Bearer {access}"}
    session_id = (await client.post("/api/sessions", json={}, headers=headers)).json()["session_id"]
    manager = app.state.services.sessions
    tools = AgentTools(manager)
    bot = await caller(client, app, access)
    kept = await tools.add_nodes(bot, session_id, "root", ["Keep", "Other"])  # review mode off: applied
    assert kept["status"] == "applied"
    keep, other = kept["ids"]
    r = await client.patch(f"/api/sessions/{session_id}", json={"review_mode": True}, headers=headers)
    assert r.status_code == 200
    live = await manager.get(session_id, bot.user_id)
    tab = FakePeer()
    await live.attach(tab, None, None)
    rev = live.tree.rev

    proposed = await tools.add_nodes(bot, session_id, "root", ["A", "B"])
    assert proposed["status"] == "proposed" and proposed["rev"] == rev
    assert "nothing was applied" in proposed["message"] and proposed["proposal_id"] in proposed["message"]
    frame = tab.of("proposal")[-1]["data"]["proposal"]
    assert frame["id"] == proposed["proposal_id"] and "seq" in tab.of("proposal")[-1]
    assert frame["author"] == {"username": "alice", "via": "agent", "name": "bot"}
    assert [d["node"]["id"] for d in frame["deltas"]] == proposed["ids"]
    for result in (
        await tools.update_node(bot, session_id, keep, value="Kept"),
        await tools.move_node(bot, session_id, keep, other, 0),
        await tools.delete_node(bot, session_id, keep),
    ):
        assert result["status"] == "proposed", result
    assert live.tree.rev == rev and [live.tree.value(c) for c in live.tree.children("root")] == ["Keep", "Other"]
    assert not tab.of("tree_update")
    # A write that does not fit the tree is an error, and proposes nothing.
    with pytest.raises(AgentError, match="longer than 500"):
        await tools.add_nodes(bot, session_id, "root", ["ok", "x" * 501])
    assert len(live.proposals) == len(tab.of("proposal")) == 4
    # Undo would change the tree unreviewed.
    with pytest.raises(AgentError, match=r"Review mode is on.*\(409\)"):
        await tools.undo(bot, session_id)

    # Accepted by the owner: the owner's change set, come via the agent and named by its token.
    await live.decide(Actor(bot.user_id, "user"), proposed["proposal_id"], "all", "d1")
    updates = tab.of("tree_update")
    assert [u["data"]["origin"] for u in updates] == ["proposal", "proposal"]
    assert updates[0]["data"]["actor"] == {"username": "alice", "via": "agent", "name": "bot"}
    assert live.undo_stack[-1].actor == Actor(bot.user_id, "agent", "bot")
    history = (await client.get(f"/api/sessions/{session_id}/history", headers=headers)).json()["items"]
    assert history[0]["actor"] == {"username": "alice", "via": "agent"} and history[0]["summary"] == "Add 'A', add 'B'"
    live.detach(tab)


def updated(ws: object) -> Frame:
    """The next session_updated frame (others are skipped)."""
    while True:
        frame = recv(ws)
        if frame["type"] == "session_updated":
            assert "seq" not in frame  # not numbered: session_ready carries the values after a reconnect
            return frame


def test_review_mode_and_title_changes_reach_every_tab(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as bob, tc.websocket_connect("/ws/session") as carol:
        init(bob, t["bob"], session_id=sid)
        init(carol, t["carol"], session_id=sid)
        assert tc.patch(f"/api/sessions/{sid}", json={"review_mode": True}, headers=auth(t["alice"])).status_code == 200
        for ws in (bob, carol):
            assert updated(ws)["data"] == {"title": "Team", "review_mode": True}
        r = tc.patch(f"/api/sessions/{sid}", json={"title": "Renamed"}, headers=auth(t["bob"]))
        assert r.status_code == 200
        for ws in (bob, carol):
            assert updated(ws)["data"] == {"title": "Renamed", "review_mode": True}
        # refused: nothing changes, nothing is sent (the next frame is the answer to a ping)
        assert tc.patch(f"/api/sessions/{sid}", json={"review_mode": False}, headers=auth(t["bob"])).status_code == 403
        carol.send_json({"type": "ping", "data": {}, "id": "p"})
        assert recv(carol)["type"] == "pong"
        assert (
            tc.patch(f"/api/sessions/{sid}", json={"review_mode": False}, headers=auth(t["alice"])).status_code == 200
        )
        assert updated(carol)["data"] == {"title": "Renamed", "review_mode": False}
    with tc.websocket_connect("/ws/session") as carol:
        ready = init(carol, t["carol"], session_id=sid)["data"]
        assert (ready["title"], ready["review_mode"]) == ("Renamed", False)


def test_an_import_into_a_review_mode_session_is_a_proposal(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, offline_chunk_delay_ms=0)
    markdown = "- Design\n  - Wireframes\n- Build\n"
    with TestClient(create_app(settings), base_url="https://testserver") as tc:
        sid, t = review_session(tc)
        with tc.websocket_connect("/ws/session") as carol:
            init(carol, t["carol"], session_id=sid)
            r = tc.post(
                f"/api/sessions/{sid}/import",
                json={"format": "markdown", "content": markdown},
                headers=auth(t["bob"]),
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["status"], body["rev"], body["added"]) == ("proposed", 0, 3)
            frame = recv(carol)
            assert frame["type"] == "proposal"
            proposal = frame["data"]["proposal"]
            assert proposal["id"] == body["proposal_id"]
            assert proposal["author"] == {"username": "bob", "via": "import", "name": "markdown"}
            assert [d["node"]["id"] for d in proposal["deltas"]] == body["ids"]
            assert snapshot(carol)["children"] == []
    # The proposal, its author included, survives a restart; accepting it is attributed to the import.
    with (
        TestClient(create_app(settings), base_url="https://testserver") as tc,
        tc.websocket_connect("/ws/session") as alice,
    ):
        ready = init(alice, t["alice"], session_id=sid)
        assert ready["data"]["proposals"] == [proposal]
        frames = decide(alice, proposal["id"], "all", "d1")
        assert [f["data"]["actor"] for f in frames if f["type"] == "tree_update"] == [
            {"username": "alice", "via": "import", "name": "markdown"}
        ] * 2
        tree = snapshot(alice)
        assert values(tree) == ["Design", "Build"] and values(tree["children"][0]) == ["Wireframes"]
        # Review mode off again: an import applies, as before.
        assert (
            tc.patch(f"/api/sessions/{sid}", json={"review_mode": False}, headers=auth(t["alice"])).status_code == 200
        )
        r = tc.post(
            f"/api/sessions/{sid}/import", json={"format": "markdown", "content": "- Ship\n"}, headers=auth(t["alice"])
        )
        assert (r.json()["status"], r.json()["proposal_id"], r.json()["rev"]) == ("applied", None, 3)


def test_the_offline_assistant_says_it_proposed(tc: TestClient) -> None:
    sid, t = review_session(tc)
    with tc.websocket_connect("/ws/session") as bob:
        init(bob, t["bob"], session_id=sid)
        propose(bob, "add 'A' and 'B' under root", "q1")
        history = tc.get(f"/api/sessions/{sid}", headers=auth(t["bob"])).json()["history"]
        answer = history[-1]["content"]
        assert answer.startswith("Proposed: add 'A' and 'B' under the root."), answer
        assert "Added" not in answer and answer.endswith("until an editor accepts the proposal.")
