"""Per-user undo and review mode over the real app (TestClient, real SQLite; the offline assistant,
and the OpenAI provider against the fake LLM process for a turn whose deltas depend on each other)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from canopy.config import Settings
from canopy.main import create_app
from tests.api.test_collab_sharing import add, answer, auth, op, shared_session
from tests.conftest import make_settings
from tests.fake_llm.fixture import API_KEY, FakeLLM
from tests.support.ws import Frame, collect_turn, init, recv

pytestmark = pytest.mark.timeout(120)


def values(tree: dict[str, Any]) -> list[str]:
    return [c["value"] for c in tree["children"]]


def snapshot(ws: Any, frame_id: str = "snap") -> dict[str, Any]:
    ws.send_json({"type": "resync", "data": {}, "id": frame_id})
    tree: dict[str, Any] = answer(ws, frame_id)["data"]["tree"]
    return tree


def decide(ws: Any, proposal_id: str, accept: Any, frame_id: str) -> list[Frame]:
    """The frames answering a decision: its tree_updates and proposal_resolved, or one error."""
    ws.send_json({"type": "proposal_decision", "id": frame_id, "data": {"proposal_id": proposal_id, "accept": accept}})
    out = []
    while True:
        frame = answer(ws, frame_id)
        out.append(frame)
        if frame["type"] in ("proposal_resolved", "error"):
            return out


def propose(ws: Any, prompt: str, frame_id: str) -> dict[str, Any]:
    """Runs a review-mode turn; checks that it changed nothing and returns its proposal."""
    ws.send_json({"type": "user_prompt", "data": {"prompt": prompt}, "id": frame_id})
    assert answer(ws, frame_id)["type"] == "chat_message"  # earlier broadcasts are skipped
    frames = collect_turn(ws)
    assert not [f for f in frames if f["type"] == "tree_update"], "review mode applied a change"
    proposals = [f for f in frames if f["type"] == "proposal"]
    assert len(proposals) == 1, [f["type"] for f in frames]
    proposal: dict[str, Any] = proposals[0]["data"]["proposal"]
    assert proposal["status"] == "open" and proposals[0]["id"] == frame_id
    return proposal


# --- per-user undo ----------------------------------------------------------------------


def test_two_editors_undo_their_own_interleaved_changes(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as alice, tc.websocket_connect("/ws/session") as bob:
        init(alice, t["alice"], session_id=sid)
        init(bob, t["bob"], session_id=sid)
        for i, (ws, node) in enumerate(((alice, "a1"), (bob, "b1"), (alice, "a2"), (bob, "b2"))):
            op(ws, add(node), f"o{i}")
            answer(ws, f"o{i}")
        bob.send_json({"type": "undo", "data": {}, "id": "bu"})
        undo = answer(bob, "bu")
        assert undo["data"]["delta"] == {"action": "remove", "path": "/root/b2"}
        alice.send_json({"type": "undo", "data": {}, "id": "au"})
        assert answer(alice, "au")["data"]["delta"] == {"action": "remove", "path": "/root/a2"}
        alice.send_json({"type": "undo", "data": {}, "id": "au2"})
        assert answer(alice, "au2")["data"]["delta"] == {"action": "remove", "path": "/root/a1"}
        alice.send_json({"type": "undo", "data": {}, "id": "au3"})
        assert answer(alice, "au3")["error"] == {"code": 409, "message": "Nothing to undo"}
        bob.send_json({"type": "redo", "data": {}, "id": "br"})
        assert answer(bob, "br")["data"]["delta"]["node"]["id"] == "b2"
        alice.send_json({"type": "redo", "data": {}, "id": "ar"})
        assert answer(alice, "ar")["data"]["delta"]["node"]["id"] == "a1"  # her most recently undone
        assert values(snapshot(bob)) == ["a1", "b1", "b2"]  # back at its old place
        # a new edit of bob's empties his redo stack, not alice's
        op(bob, add("b3"), "o9")
        answer(bob, "o9")
        alice.send_json({"type": "redo", "data": {}, "id": "ar2"})
        assert answer(alice, "ar2")["data"]["delta"]["node"]["id"] == "a2"


def test_undo_is_refused_naming_who_changed_the_same_nodes(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as alice, tc.websocket_connect("/ws/session") as bob:
        init(alice, t["alice"], session_id=sid)
        init(bob, t["bob"], session_id=sid)
        op(alice, add("x", "X"), "a1")
        answer(alice, "a1")
        op(bob, add("y", "Y", parent="/root/x"), "b1")  # under alice's node
        answer(bob, "b1")
        op(bob, add("z", "Z"), "b2")  # elsewhere: does not block
        answer(bob, "b2")
        before = snapshot(alice)
        alice.send_json({"type": "undo", "data": {}, "id": "au"})
        assert answer(alice, "au")["error"] == {
            "code": 409,
            "message": "bob changed the same nodes since; undo is not possible",
        }
        assert snapshot(alice, "s2") == before
        bob.send_json({"type": "undo", "data": {}, "id": "bu"})  # bob's z
        answer(bob, "bu")
        bob.send_json({"type": "undo", "data": {}, "id": "bu2"})  # bob's y
        answer(bob, "bu2")
        alice.send_json({"type": "undo", "data": {}, "id": "au2"})
        assert answer(alice, "au2")["data"]["delta"] == {"action": "remove", "path": "/root/x"}


# --- review mode -----------------------------------------------------------------------


def review_session(tc: TestClient) -> tuple[str, dict[str, str]]:
    sid, t = shared_session(tc)
    r = tc.patch(f"/api/sessions/{sid}", json={"review_mode": True}, headers=auth(t["alice"]))
    assert r.status_code == 200 and r.json()["review_mode"] is True
    return sid, t


def test_review_accept_all_and_a_subset(tc: TestClient) -> None:
    sid, t = review_session(tc)
    with (
        tc.websocket_connect("/ws/session") as alice,
        tc.websocket_connect("/ws/session") as bob,
        tc.websocket_connect("/ws/session") as carol,
    ):
        assert init(alice, t["alice"], session_id=sid)["data"]["review_mode"] is True
        init(bob, t["bob"], session_id=sid)
        init(carol, t["carol"], session_id=sid)
        proposal = propose(bob, "add 'A', 'B' and 'C' under root", "q1")
        assert proposal["author"] == {"username": "bob", "via": "assistant"} and proposal["base_rev"] == 0
        assert [d["node"]["value"] for d in proposal["deltas"]] == ["A", "B", "C"]
        assert proposal["summary"] == "Add 'A', add 'B', add 'C'"
        assert snapshot(alice)["children"] == []
        # the viewer sees it and cannot decide
        seen = recv(carol)
        while seen["type"] != "proposal":
            seen = recv(carol)
        assert seen["data"]["proposal"] == proposal
        assert decide(carol, proposal["id"], "all", "cv")[0]["error"]["code"] == 403
        # the owner accepts a subset
        frames = decide(alice, proposal["id"], [0, 2], "d1")
        updates, resolved = frames[:-1], frames[-1]
        assert [u["data"]["origin"] for u in updates] == ["proposal", "proposal"]
        assert updates[0]["data"]["actor"] == {"username": "alice", "via": "assistant"}
        assert resolved["data"] == {
            "proposal_id": proposal["id"],
            "accepted": [0, 2],
            "rejected": [1],
            "conflicts": [],
            "decided_by": "alice",
        }
        assert values(snapshot(carol)) == ["A", "C"]
        assert decide(bob, proposal["id"], "all", "d2")[0]["error"] == {
            "code": 409,
            "message": "Proposal already decided",
        }
        # the accepted deltas are one change set, undone by the decider
        alice.send_json({"type": "undo", "data": {}, "id": "u"})
        answer(alice, "u")
        assert values(snapshot(alice, "s3")) == []
        # accept all
        second = propose(bob, "add 'D' and 'E' under root", "q2")
        frames = decide(bob, second["id"], "all", "d3")
        assert frames[-1]["data"]["accepted"] == [0, 1] and len(frames) == 3
        assert values(snapshot(bob)) == ["D", "E"]
    history = tc.get(f"/api/sessions/{sid}/history", headers=auth(t["carol"])).json()["items"]
    assert history[0]["actor"] == {"username": "bob", "via": "assistant"}
    assert history[1]["actor"] == {"username": "alice", "via": "assistant"} and history[1]["undone"] is True


def test_conflicting_deltas_are_skipped_and_reported(tc: TestClient) -> None:
    sid, t = review_session(tc)
    with tc.websocket_connect("/ws/session") as alice, tc.websocket_connect("/ws/session") as bob:
        init(alice, t["alice"], session_id=sid)
        init(bob, t["bob"], session_id=sid)
        op(alice, add("a", "Alpha"), "a1")
        answer(alice, "a1")
        op(alice, add("b", "Beta"), "a2")
        answer(alice, "a2")
        proposal = propose(bob, "add 'P' and 'Q' under Alpha", "q1")
        taken = proposal["deltas"][0]["node"]["id"]
        op(alice, add(taken, "Taken"), "a3")  # someone else now has the first new node's id
        answer(alice, "a3")
        frames = decide(bob, proposal["id"], "all", "d1")
        assert len(frames) == 2 and frames[0]["data"]["delta"]["node"]["value"] == "Q"
        resolved = frames[-1]["data"]
        assert (resolved["accepted"], resolved["rejected"]) == ([1], [])
        assert [(c["index"], c["code"]) for c in resolved["conflicts"]] == [(0, 409)]
        # a node deleted under a proposal: nothing applies, and the outcome says why
        rename = propose(bob, "rename Beta to Bravo", "q2")
        op(alice, {"action": "remove", "path": "/root/b"}, "a4")
        answer(alice, "a4")
        frames = decide(bob, rename["id"], "all", "d2")
        assert [f["type"] for f in frames] == ["proposal_resolved"]
        assert [(c["index"], c["code"]) for c in frames[0]["data"]["conflicts"]] == [(0, 404)]
        assert sorted(values(snapshot(bob))) == ["Alpha", "Taken"]


def test_open_proposals_survive_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, offline_chunk_delay_ms=0)
    with TestClient(create_app(settings), base_url="https://testserver") as tc:
        sid, t = review_session(tc)
        with tc.websocket_connect("/ws/session") as bob:
            init(bob, t["bob"], session_id=sid)
            proposal = propose(bob, "add 'A' and 'B' under root", "q1")
    with (
        TestClient(create_app(settings), base_url="https://testserver") as tc,
        tc.websocket_connect("/ws/session") as alice,
    ):
        ready = init(alice, t["alice"], session_id=sid)
        assert ready["data"]["proposals"] == [proposal] and ready["data"]["review_mode"] is True
        assert decide(alice, proposal["id"], [1], "d1")[-1]["data"]["accepted"] == [1]
    with (
        TestClient(create_app(settings), base_url="https://testserver") as tc,
        tc.websocket_connect("/ws/session") as alice,
    ):
        assert init(alice, t["alice"], session_id=sid)["data"]["proposals"] == []
        assert decide(alice, proposal["id"], "all", "d2")[0]["error"]["code"] == 409
        assert values(snapshot(alice)) == ["B"]


def _openai_settings(tmp_path: Path, fake_llm: FakeLLM, scenario: str) -> Settings:
    return make_settings(
        tmp_path, llm_provider="openai", llm_base_url=fake_llm, llm_api_key=API_KEY, llm_model=fake_llm.model(scenario)
    )


def test_a_missing_dependency_is_refused_naming_it(tmp_path: Path, fake_llm: FakeLLM) -> None:
    settings = _openai_settings(tmp_path, fake_llm, "multi_round")
    with TestClient(create_app(settings), base_url="https://testserver") as tc:
        sid, t = review_session(tc)
        with tc.websocket_connect("/ws/session") as bob:
            init(bob, t["bob"], session_id=sid)
            # the assistant adds Groceries, then (seeing its own proposed node) Milk and Eggs under it
            proposal = propose(bob, "groceries", "q1")
            assert [d["node"]["value"] for d in proposal["deltas"]] == ["Groceries", "Milk", "Eggs"]
            got = decide(bob, proposal["id"], [1], "d1")
            assert got[0]["error"] == {"code": 400, "message": "Delta 1 needs delta 0 (accept 0 too)"}
            assert decide(bob, proposal["id"], [5], "d2")[0]["error"]["code"] == 400
            assert snapshot(bob)["children"] == []
            resolved = decide(bob, proposal["id"], [0, 1], "d3")[-1]["data"]
            assert (resolved["accepted"], resolved["rejected"]) == ([0, 1], [2])
            tree = snapshot(bob, "s2")
            assert values(tree) == ["Groceries"] and values(tree["children"][0]) == ["Milk"]
