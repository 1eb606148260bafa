"""Shared sessions over the real app (TestClient, real SQLite): members and roles over REST, every
frame type per role, revoking closes the member's sockets, presence, attribution and history paging."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.support.ws import Frame, init, login, recv, recv_until

pytestmark = pytest.mark.timeout(90)


def add(node_id: str, value: str | None = None, parent: str = "/root") -> dict[str, Any]:
    return {"action": "add", "path": f"{parent}/children", "node": {"id": node_id, "value": value or node_id}}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def shared_session(tc: TestClient) -> tuple[str, dict[str, str]]:
    """alice's session shared with bob (editor) and carol (viewer); dave is a stranger. Returns the
    session id and each user's token."""
    tokens = {name: login(tc, name) for name in ("alice", "bob", "carol", "dave")}
    sid = tc.post("/api/sessions", json={"title": "Team"}, headers=auth(tokens["alice"])).json()["session_id"]
    for name, role in (("bob", "editor"), ("carol", "viewer")):
        r = tc.post(
            f"/api/sessions/{sid}/members", json={"username": name, "role": role}, headers=auth(tokens["alice"])
        )
        assert (r.status_code, r.json()) == (201, {"username": name, "role": role})
    return sid, tokens


def op(ws: Any, delta: dict[str, Any], frame_id: str, base_rev: int = 0) -> None:
    ws.send_json({"type": "tree_op", "id": frame_id, "data": {"delta": delta, "base_rev": base_rev}})


def answer(ws: Any, frame_id: str) -> Frame:
    """The first frame answering `frame_id` (a broadcast or an error)."""
    while True:
        frame = recv(ws)
        if frame.get("id") == frame_id:
            return frame


def presence_until(ws: Any, check: Any) -> list[dict[str, Any]]:
    """Reads until a presence frame whose users satisfy `check` (frames are coalesced)."""
    while True:
        frame = recv(ws, presence=True)
        if frame["type"] == "presence" and check(frame["data"]["users"]):
            return list(frame["data"]["users"])


# --- REST ------------------------------------------------------------------------------


def test_members_routes_and_roles(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    alice, bob, carol, dave = (auth(t[n]) for n in ("alice", "bob", "carol", "dave"))
    base = f"/api/sessions/{sid}"
    assert tc.get(f"{base}/members", headers=carol).json() == [
        {"username": "alice", "role": "owner"},
        {"username": "bob", "role": "editor"},
        {"username": "carol", "role": "viewer"},
    ]
    # the owner's own rules
    assert tc.post(f"{base}/members", json={"username": "bob", "role": "viewer"}, headers=alice).status_code == 409
    assert tc.post(f"{base}/members", json={"username": "nobody", "role": "viewer"}, headers=alice).status_code == 404
    assert tc.post(f"{base}/members", json={"username": "alice", "role": "viewer"}, headers=alice).status_code == 400
    assert tc.post(f"{base}/members", json={"username": "dave", "role": "owner"}, headers=alice).status_code == 422
    assert tc.patch(f"{base}/members/nobody", json={"role": "viewer"}, headers=alice).status_code == 404
    # members: 403 for owner-only actions, and nothing changes
    for who in (bob, carol):
        assert tc.post(f"{base}/members", json={"username": "dave", "role": "viewer"}, headers=who).status_code == 403
        assert tc.patch(f"{base}/members/bob", json={"role": "viewer"}, headers=who).status_code == 403
        assert tc.patch(base, json={"review_mode": True}, headers=who).status_code == 403
        assert tc.delete(base, headers=who).status_code == 403
    assert tc.delete(f"{base}/members/carol", headers=bob).status_code == 403
    assert tc.patch(base, json={"title": "Viewer's"}, headers=carol).status_code == 403
    # an editor renames; a review_mode in the same body is refused whole
    assert tc.patch(base, json={"title": "X", "review_mode": True}, headers=bob).status_code == 403
    r = tc.patch(base, json={"title": "Renamed"}, headers=bob)
    assert r.status_code == 200 and r.json()["title"] == "Renamed" and r.json()["role"] == "editor"
    state = tc.get(base, headers=carol).json()
    assert (state["title"], state["role"], state["owner"], state["review_mode"]) == (
        "Renamed",
        "viewer",
        "alice",
        False,
    )
    # a stranger gets 404 from every route
    for method, path, body in (
        ("GET", base, None),
        ("PATCH", base, {"title": "x"}),
        ("DELETE", base, None),
        ("GET", f"{base}/members", None),
        ("POST", f"{base}/members", {"username": "dave", "role": "viewer"}),
        ("PATCH", f"{base}/members/bob", {"role": "viewer"}),
        ("DELETE", f"{base}/members/bob", None),
        ("GET", f"{base}/history", None),
    ):
        r = tc.request(method, path, json=body, headers=dave)
        assert (r.status_code, r.json()) == (404, {"detail": "Session not found"}), (method, path)
    # the list shows shared sessions with role and owner
    listed = {s["session_id"]: s for s in tc.get("/api/sessions", headers=bob).json()}
    assert (listed[sid]["role"], listed[sid]["owner"]) == ("editor", "alice")
    assert tc.get("/api/sessions", headers=dave).json() == []
    # role change, leaving, removal
    r = tc.patch(f"{base}/members/bob", json={"role": "viewer"}, headers=alice)
    assert r.json() == {"username": "bob", "role": "viewer"}
    assert tc.delete(f"{base}/members/carol", headers=carol).status_code == 204
    assert tc.get(base, headers=carol).status_code == 404
    assert tc.delete(f"{base}/members/bob", headers=alice).status_code == 204
    assert tc.get(f"{base}/members", headers=alice).json() == [{"username": "alice", "role": "owner"}]
    assert tc.delete(f"{base}/members/alice", headers=alice).status_code == 400
    r = tc.patch(base, json={"review_mode": True}, headers=alice)
    assert r.status_code == 200 and r.json()["review_mode"] is True
    r = tc.patch(base, json={}, headers=alice)  # changes nothing
    assert r.status_code == 200 and r.json()["review_mode"] is True and r.json()["title"] == "Renamed"


# --- roles over the WebSocket --------------------------------------------------------------


def test_viewer_gets_403_for_every_changing_frame_and_nothing_changes(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as viewer, tc.websocket_connect("/ws/session") as editor:
        ready = init(viewer, t["carol"], session_id=sid)
        assert ready["data"]["role"] == "viewer" and ready["data"]["owner"] == "alice"
        assert init(editor, t["bob"], session_id=sid)["data"]["role"] == "editor"
        refused = [
            {"type": "user_prompt", "data": {"prompt": "add X to root"}},
            {"type": "tree_op", "data": {"delta": add("v"), "base_rev": 0}},
            {"type": "undo", "data": {}},
            {"type": "redo", "data": {}},
            {"type": "cancel", "data": {}},
            {"type": "proposal_decision", "data": {"proposal_id": "p-00000000", "accept": "all"}},
        ]
        for i, frame in enumerate(refused):
            viewer.send_json({**frame, "id": f"v{i}"})
            got = answer(viewer, f"v{i}")
            assert (got["type"], got["error"]["code"]) == ("error", 403), frame
        for i, frame in enumerate(
            [
                {"type": "resync", "data": {}},
                {"type": "ping", "data": {}},
                {"type": "presence_update", "data": {"selected": "root"}},
            ]
        ):
            viewer.send_json({**frame, "id": f"ok{i}"})
        assert answer(viewer, "ok0")["data"]["rev"] == 0  # nothing changed the tree
        assert answer(viewer, "ok1")["type"] == "pong"
        # the editor may change it, and the viewer sees it live
        op(editor, add("e"), "e1")
        assert answer(editor, "e1")["type"] == "tree_update"
        update = answer(viewer, "e1")
        assert update["data"]["actor"] == {"username": "bob", "via": "user"} and update["data"]["rev"] == 1


def test_editor_frames_are_allowed(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as ws:
        init(ws, t["bob"], session_id=sid)
        op(ws, add("b"), "b1")
        assert answer(ws, "b1")["type"] == "tree_update"
        for i, kind in enumerate(("undo", "redo")):
            ws.send_json({"type": kind, "data": {}, "id": f"u{i}"})
            assert answer(ws, f"u{i}")["data"]["origin"] == "undo"
        ws.send_json({"type": "cancel", "data": {}, "id": "c"})
        assert answer(ws, "c")["error"]["code"] == 409  # allowed, but no turn is running
        ws.send_json({"type": "proposal_decision", "data": {"proposal_id": "p-00000000", "accept": []}, "id": "d"})
        assert answer(ws, "d")["error"]["code"] == 404


def test_a_stranger_cannot_attach(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as ws:
        ws.send_json({"type": "init_session", "data": {"token": t["dave"], "session_id": sid}, "id": "i"})
        got = recv(ws)
        assert (got["type"], got["error"]["code"]) == ("error", 404)


def test_removing_a_member_closes_their_sockets(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as carol, tc.websocket_connect("/ws/session") as alice:
        init(carol, t["carol"], session_id=sid)
        init(alice, t["alice"], session_id=sid)
        assert tc.delete(f"/api/sessions/{sid}/members/carol", headers=auth(t["alice"])).status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                recv(carol, presence=True)
        assert (closed.value.code, closed.value.reason) == (1008, "access revoked")
        # the owner's socket stays, and sees carol gone
        users = presence_until(alice, lambda users: [u["username"] for u in users] == ["alice"])
        assert users[0]["role"] == "owner"
    with tc.websocket_connect("/ws/session") as carol:
        carol.send_json({"type": "init_session", "data": {"token": t["carol"], "session_id": sid}, "id": "i"})
        assert recv(carol)["error"]["code"] == 404


def test_a_role_change_applies_to_open_sockets(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as bob:
        init(bob, t["bob"], session_id=sid)
        r = tc.patch(f"/api/sessions/{sid}/members/bob", json={"role": "viewer"}, headers=auth(t["alice"]))
        assert r.status_code == 200
        presence_until(bob, lambda users: users and users[0]["role"] == "viewer")
        op(bob, add("b"), "b1")
        assert answer(bob, "b1")["error"]["code"] == 403


# --- presence --------------------------------------------------------------------------


def test_presence_join_select_type_and_leave(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as alice:
        init(alice, t["alice"], session_id=sid)
        users = presence_until(alice, lambda users: len(users) == 1)
        assert users == [{"username": "alice", "role": "owner", "tabs": 1, "selected": None, "typing": False}]
        with tc.websocket_connect("/ws/session") as bob, tc.websocket_connect("/ws/session") as bob2:
            init(bob, t["bob"], session_id=sid)
            init(bob2, t["bob"], session_id=sid)
            presence_until(
                alice, lambda users: [(u["username"], u["tabs"]) for u in users] == [("alice", 1), ("bob", 2)]
            )
            bob.send_json({"type": "presence_update", "data": {"selected": "root", "typing": True}})
            users = presence_until(alice, lambda users: users[1]["typing"])
            assert users[1] == {"username": "bob", "role": "editor", "tabs": 2, "selected": "root", "typing": True}
            bob2.send_json({"type": "presence_update", "data": {"selected": None}})
            users = presence_until(alice, lambda users: users[1]["selected"] is None)
            assert users[1]["typing"] is True  # left out of the update: kept
            bob.send_json({"type": "presence_update", "id": "bad", "data": {"selected": "bad id!"}})
            assert answer(bob, "bad")["error"]["code"] == 400
        users = presence_until(alice, lambda users: len(users) == 1)
        assert users[0]["username"] == "alice"


# --- attribution and history ---------------------------------------------------------------


def test_tree_updates_carry_actors_and_history_pages(tc: TestClient) -> None:
    sid, t = shared_session(tc)
    with tc.websocket_connect("/ws/session") as alice, tc.websocket_connect("/ws/session") as bob:
        init(alice, t["alice"], session_id=sid)
        init(bob, t["bob"], session_id=sid)
        op(alice, add("a", "Alpha"), "a1")
        assert answer(alice, "a1")["data"]["actor"] == {"username": "alice", "via": "user"}
        op(bob, add("b", "Beta"), "b1")
        answer(bob, "b1")
        bob.send_json({"type": "user_prompt", "data": {"prompt": "add 'Gamma' under Alpha"}, "id": "q"})
        frames = recv_until(bob, "assistant_response")
        updates = [f for f in frames if f["type"] == "tree_update"]
        assert updates and updates[0]["data"]["actor"] == {"username": "bob", "via": "assistant"}
        while not (frames[-1]["type"] == "assistant_response" and not frames[-1]["data"]["chunk"]):
            frames.append(recv(bob))
        bob.send_json({"type": "undo", "data": {}, "id": "u"})
        undo = answer(bob, "u")
        assert (undo["data"]["origin"], undo["data"]["actor"]) == ("undo", {"username": "bob", "via": "user"})
    h = auth(t["carol"])
    page = tc.get(f"/api/sessions/{sid}/history?limit=2", headers=h).json()
    assert [i["number"] for i in page["items"]] == [3, 2] and page["next_before"] == 2
    newest = page["items"][0]
    assert newest["actor"] == {"username": "bob", "via": "assistant"} and newest["undone"] is True
    assert newest["summary"] == "Add 'Gamma'" and newest["rev"] == 3 and newest["created_at"].endswith("Z")
    page2 = tc.get(f"/api/sessions/{sid}/history?limit=2&before=2", headers=h).json()
    assert page2["next_before"] is None
    assert page2["items"] == [
        {
            "number": 1,
            "actor": {"username": "alice", "via": "user"},
            "created_at": page2["items"][0]["created_at"],
            "summary": "Add 'Alpha'",
            "rev": 1,
            "undone": False,
            "nodes": ["a"],
        }
    ]
    assert page["items"][1]["nodes"] == ["b"]
    for bad in ("limit=0", "limit=201", "before=0", "limit=x"):
        assert tc.get(f"/api/sessions/{sid}/history?{bad}", headers=h).status_code in (400, 422), bad
