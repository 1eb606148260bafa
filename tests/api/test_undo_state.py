"""`undo_state` over the real app (TestClient, real SQLite, the offline assistant): each user's tabs
learn whether their own undo and redo would find anything, on attach and whenever that changes for
them, and only then (docs/protocol.md `undo_state`)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.test_collab_sharing import add, answer, auth, op, shared_session
from tests.support.ws import Frame, init, recv

pytestmark = pytest.mark.timeout(90)

NOTHING = {"can_undo": False, "can_redo": False}
UNDO = {"can_undo": True, "can_redo": False}
REDO = {"can_undo": False, "can_redo": True}
BOTH = {"can_undo": True, "can_redo": True}


def attach(ws: Any, token: str, sid: str) -> dict[str, Any]:
    """Attaches and returns the undo_state that follows session_ready and chat_history."""
    init(ws, token, session_id=sid)
    frame = recv(ws, undo_state=True)
    assert frame["type"] == "undo_state" and "seq" not in frame and "id" not in frame, frame
    assert frame["session_id"] == sid
    data: dict[str, Any] = frame["data"]
    return data


def next_state(ws: Any) -> dict[str, Any]:
    while True:
        frame = recv(ws, undo_state=True)
        if frame["type"] == "undo_state":
            data: dict[str, Any] = frame["data"]
            return data


def told(ws: Any, fence: str) -> list[dict[str, Any]]:
    """The undo_state frames this tab got up to now (a ping's pong comes after everything queued before it)."""
    ws.send_json({"type": "ping", "data": {}, "id": fence})
    out: list[dict[str, Any]] = []
    while True:
        frame: Frame = recv(ws, undo_state=True)
        if frame["type"] == "undo_state":
            out.append(frame["data"])
        elif frame["type"] == "pong" and frame.get("id") == fence:
            return out


def request(ws: Any, kind: str, frame_id: str) -> Frame:
    ws.send_json({"type": kind, "data": {}, "id": frame_id})
    return answer(ws, frame_id)


def test_each_user_is_told_their_own_undo_state_and_only_when_it_changes(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with (
        tc.websocket_connect("/ws/session") as alice,
        tc.websocket_connect("/ws/session") as alice2,
        tc.websocket_connect("/ws/session") as bob,
        tc.websocket_connect("/ws/session") as carol,
    ):
        assert attach(alice, t["alice"], sid) == NOTHING  # a fresh session
        assert attach(alice2, t["alice"], sid) == NOTHING  # her second tab
        assert attach(bob, t["bob"], sid) == NOTHING
        assert attach(carol, t["carol"], sid) == NOTHING  # the viewer

        op(alice, add("a1"), "o1")
        answer(alice, "o1")
        assert next_state(alice) == UNDO
        assert next_state(alice2) == UNDO  # both of her tabs
        assert told(bob, "f1") == [] and told(carol, "f1") == []  # theirs did not change

        op(bob, add("b1"), "o2")
        answer(bob, "o2")
        assert next_state(bob) == UNDO
        op(alice, add("a2"), "o3")  # alice can still undo: nothing new to tell her
        answer(alice, "o3")
        assert told(alice, "f2") == [] and told(alice2, "f2") == []

        # interleaved undo and redo: each user's own stacks
        assert request(bob, "undo", "u1")["data"]["delta"] == {"action": "remove", "path": "/root/b1"}
        assert next_state(bob) == REDO
        assert request(alice, "undo", "u2")["data"]["delta"] == {"action": "remove", "path": "/root/a2"}
        assert next_state(alice) == BOTH and next_state(alice2) == BOTH
        assert request(alice, "undo", "u3")["data"]["delta"] == {"action": "remove", "path": "/root/a1"}
        assert next_state(alice) == REDO and next_state(alice2) == REDO
        assert told(bob, "f3") == []
        assert request(alice, "undo", "u4")["error"] == {"code": 409, "message": "Nothing to undo"}
        assert request(alice2, "redo", "r1")["data"]["delta"]["node"]["id"] == "a1"
        assert next_state(alice) == BOTH and next_state(alice2) == BOTH
        op(bob, add("b2"), "o4")  # a new change of bob's empties his redo stack
        answer(bob, "o4")
        assert next_state(bob) == UNDO
        assert told(alice, "f4") == []

        # the viewer is never told she could undo, and her undo is refused
        assert told(carol, "f5") == []
        assert request(carol, "undo", "cu")["error"]["code"] == 403

        # a tab attaching later learns the current state at once
        with tc.websocket_connect("/ws/session") as alice3:
            assert attach(alice3, t["alice"], sid) == BOTH


def until_final(ws: Any, frame_id: str) -> None:
    while True:
        frame = recv(ws, undo_state=True)
        if frame["type"] == "assistant_response" and frame.get("id") == frame_id and not frame["data"]["chunk"]:
            return


def test_a_turn_is_not_told_only_its_change_set_is(tc: TestClient) -> None:
    """undo_state leaves turns out (clients see a turn from its frames; undo during one is 409): a turn's
    start and end send nothing, its change set tells the prompting user once."""
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as alice, tc.websocket_connect("/ws/session") as bob:
        attach(alice, t["alice"], sid)
        attach(bob, t["bob"], sid)
        op(bob, add("b1"), "o1")
        answer(bob, "o1")
        assert next_state(bob) == UNDO

        alice.send_json({"type": "user_prompt", "data": {"prompt": "add 'Gamma' to root"}, "id": "q"})
        assert next_state(alice) == UNDO  # her turn's change set, on its first change
        until_final(alice, "q")
        until_final(bob, "q")
        assert told(alice, "f1") == [] and told(bob, "f1") == []  # nothing at the turn's start or end
        assert request(alice, "undo", "u1")["data"]["origin"] == "undo"
        assert next_state(alice) == REDO
        assert request(bob, "undo", "u2")["data"]["origin"] == "undo"
        assert next_state(bob) == REDO


def test_a_role_change_tells_the_member(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as bob:
        attach(bob, t["bob"], sid)
        op(bob, add("b1"), "o1")
        answer(bob, "o1")
        assert next_state(bob) == UNDO
        r = tc.patch(f"/api/sessions/{sid}/members/bob", json={"role": "viewer"}, headers=auth(t["alice"]))
        assert r.status_code == 200
        assert next_state(bob) == NOTHING
        r = tc.patch(f"/api/sessions/{sid}/members/bob", json={"role": "editor"}, headers=auth(t["alice"]))
        assert r.status_code == 200
        assert next_state(bob) == UNDO


def test_a_resumed_tab_is_told_after_the_replayed_frames(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as alice:
        ready = init(alice, t["alice"], session_id=sid)
        op(alice, add("a1"), "o1")
        answer(alice, "o1")
    with tc.websocket_connect("/ws/session") as again:
        again.send_json(
            {
                "type": "init_session",
                "id": "i",
                "data": {"token": t["alice"], "session_id": sid, "last_seq": ready["data"]["seq"]},
            }
        )
        frames = [recv(again, undo_state=True) for _ in range(3)]
        assert [f["type"] for f in frames] == ["session_ready", "tree_update", "undo_state"]
        assert frames[0]["data"]["replay"] is True and frames[2]["data"] == UNDO
