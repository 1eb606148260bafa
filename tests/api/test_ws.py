"""The /ws/session contract, end to end over the real app (TestClient), real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from canopy.main import create_app
from tests.conftest import make_settings
from tests.helpers import wait_until
from tests.support.ws import (
    close_code,
    collect_turn,
    init,
    login,
    node_values,
    recv,
    recv_until,
    session_socket,
)

pytestmark = pytest.mark.timeout(60)
BOTH = pytest.mark.backends("sqlite", "postgres")  # the store and session tests run on both backends


def add_delta(node_id: str, value: str, parent: str = "/root") -> dict[str, object]:
    return {"action": "add", "path": f"{parent}/children", "node": {"id": node_id, "value": value, "children": []}}


def test_init_with_token_in_first_message(tc: TestClient) -> None:
    token = login(tc)
    with tc.websocket_connect("/ws/session") as ws:
        ready = init(ws, token)
        data = ready["data"]
        assert data["initial_tree"] == {"id": "root", "value": "Root", "children": []}
        assert data["rev"] == 0 and isinstance(data["seq"], int) and data["session_id"]
        assert ready["id"] == "init"


def test_init_with_query_token_and_same_session_again(tc: TestClient) -> None:
    token = login(tc)
    with tc.websocket_connect(f"/ws/session?token={token}") as ws:
        first = init(ws)
    with tc.websocket_connect(f"/ws/session?token={token}") as ws:
        again = init(ws)
    assert first["data"]["session_id"] == again["data"]["session_id"]  # no id: the most recent session


@pytest.mark.parametrize("token", ["garbage", "", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_bad_token_closes_1008_before_any_session_data(tc: TestClient, token: str) -> None:
    with tc.websocket_connect("/ws/session") as ws:
        ws.send_json({"type": "init_session", "data": {"token": token}})
        assert close_code(ws) == 1008


def test_bad_query_token_closes_1008(tc: TestClient) -> None:
    with tc.websocket_connect("/ws/session?token=nope") as ws:
        assert close_code(ws) == 1008


def test_init_without_any_token_closes_1008(tc: TestClient) -> None:
    with tc.websocket_connect("/ws/session") as ws:
        ws.send_json({"type": "init_session", "data": {}})
        assert close_code(ws) == 1008


def test_no_init_in_time_closes_1008(tmp_path: Path) -> None:
    with (
        TestClient(create_app(make_settings(tmp_path, ws_auth_timeout_seconds=0.3))) as tc,
        tc.websocket_connect("/ws/session") as ws,
    ):
        ws.send_json({"type": "ping", "data": {}})
        assert recv(ws)["type"] == "pong"
        assert close_code(ws) == 1008


def test_silent_connection_closes_1001(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, ws_idle_timeout_seconds=0.3))) as tc:
        token = login(tc)
        with session_socket(tc, token) as (ws, _):
            assert close_code(ws) == 1001


def test_ping_pong_echoes_id(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        ws.send_json({"type": "ping", "data": {}, "id": "p1", "extra": "ignored"})
        pong = recv(ws)
        assert pong["type"] == "pong" and pong["id"] == "p1" and "seq" not in pong


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{not json", "Invalid JSON"),
        ("[1, 2]", "JSON object"),
        ('"text"', "JSON object"),
        ('{"type": "launch_rockets", "data": {}}', "Unknown type"),
        ('{"type": 5, "data": {}}', "'type' must be a string"),
        ('{"type": "user_prompt", "data": {}}', "prompt"),
        ('{"type": "user_prompt", "data": {"prompt": ""}}', "prompt"),
        ('{"type": "ping"}', "data"),
        ('{"type": "tree_op", "data": {"delta": {"action": "zap", "path": "/root"}, "base_rev": 0}}', "tree_op"),
        ('{"type": "tree_op", "data": {"delta": {"action": "remove", "path": "/root/x"}, "base_rev": -1}}', "base_rev"),
    ],
)
def test_bad_frames_get_400_and_the_connection_stays(tc: TestClient, raw: str, fragment: str) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        ws.send_text(raw)
        err = recv(ws)
        assert err["type"] == "error" and err["error"]["code"] == 400
        assert fragment in err["error"]["message"]
        ws.send_json({"type": "ping", "data": {}})
        assert recv(ws)["type"] == "pong"


def test_binary_frame_is_400(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        ws.send_bytes(b'{"type": "ping", "data": {}}')
        assert recv(ws)["error"]["code"] == 400
        ws.send_json({"type": "ping", "data": {}})
        assert recv(ws)["type"] == "pong"


def test_prompt_over_4000_chars_is_400(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        ws.send_json({"type": "user_prompt", "data": {"prompt": "x" * 4001}})
        assert recv(ws)["error"]["code"] == 400


def test_frame_over_64_kib_is_413_and_the_connection_stays(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        ws.send_json({"type": "ping", "data": {"pad": "é" * 33_000}})  # 66,000 UTF-8 bytes, 33,000 chars
        err = recv(ws)
        assert err["error"]["code"] == 413
        ws.send_json({"type": "ping", "data": {"pad": "x" * 60_000}})
        assert recv(ws)["type"] == "pong"


def test_frames_before_init_need_a_session(tc: TestClient) -> None:
    token = login(tc)
    with tc.websocket_connect(f"/ws/session?token={token}") as ws:
        ws.send_json({"type": "resync", "data": {}})
        assert recv(ws)["error"]["code"] == 400
        init(ws)


@BOTH
def test_prompt_turn_streams_and_changes_the_tree(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, ready):
        ws.send_json({"type": "user_prompt", "data": {"prompt": "Add 'A', 'B' and 'C' under root"}, "id": "q1"})
        frames = collect_turn(ws)
    types = [f["type"] for f in frames]
    assert types[0] == "chat_message" and frames[0]["data"]["content"] == "Add 'A', 'B' and 'C' under root"
    assert "reasoning" in types
    updates = [f for f in frames if f["type"] == "tree_update"]
    assert [u["data"]["delta"]["node"]["value"] for u in updates] == ["A", "B", "C"]
    assert [u["data"]["rev"] for u in updates] == [1, 2, 3]
    assert all(u["data"]["origin"] == "assistant" for u in updates)
    chunks = [f for f in frames if f["type"] == "assistant_response" and f["data"]["chunk"]]
    final = frames[-1]
    assert len(chunks) >= 2 and final["data"]["text"] == "".join(c["data"]["text"] for c in chunks)
    assert types.index("debug") < len(types) - 1 and types.index("tree_update") < types.index("assistant_response")
    assert all(f["id"] == "q1" for f in frames)
    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(ready["data"]["seq"] + 1, ready["data"]["seq"] + 1 + len(frames)))


def test_second_prompt_during_a_turn_is_409(tmp_path: Path) -> None:
    with (
        TestClient(create_app(make_settings(tmp_path, offline_chunk_delay_ms=200))) as tc,
        session_socket(tc, login(tc)) as (ws, _),
    ):
        ws.send_json({"type": "user_prompt", "data": {"prompt": "add X to root"}})
        recv_until(ws, "tree_update")
        ws.send_json({"type": "user_prompt", "data": {"prompt": "add Y to root"}, "id": "second"})
        busy = recv_until(ws, "error")[-1]
        assert busy["error"]["code"] == 409 and busy["id"] == "second" and "seq" not in busy
        ws.send_json({"type": "undo", "data": {}})
        assert recv_until(ws, "error")[-1]["error"]["code"] == 409  # undo during a turn


@BOTH
def test_cancel_stops_the_turn_and_keeps_its_changes(tmp_path: Path, database_url: str) -> None:
    with (
        TestClient(create_app(make_settings(tmp_path, database_url=database_url, offline_chunk_delay_ms=300))) as tc,
        session_socket(tc, login(tc)) as (ws, _),
    ):
        ws.send_json({"type": "user_prompt", "data": {"prompt": "add X to root"}})
        recv_until(ws, "tree_update")
        ws.send_json({"type": "cancel", "data": {}})
        rest = collect_turn(ws)
        assert rest[-1]["data"]["cancelled"] is True and rest[-1]["data"]["chunk"] is False
        assert "debug" in [f["type"] for f in rest]
        ws.send_json({"type": "resync", "data": {}})
        snap = recv(ws)
        assert snap["type"] == "tree_snapshot" and node_values(snap["data"]["tree"]) == ["X"]
        ws.send_json({"type": "cancel", "data": {}})
        assert recv(ws)["error"]["code"] == 409  # nothing to cancel


@BOTH
def test_tree_op_applies_merges_and_conflicts(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        ws.send_json({"type": "tree_op", "data": {"delta": add_delta("a", "A"), "base_rev": 0}, "id": "op1"})
        update = recv(ws)
        assert update["type"] == "tree_update" and update["id"] == "op1"
        assert update["data"]["rev"] == 1 and update["data"]["origin"] == "user"
        assert update["data"]["delta"]["index"] == 0
        # Stale base_rev, still applies: merged.
        ws.send_json({"type": "tree_op", "data": {"delta": add_delta("b", "B"), "base_rev": 0}})
        assert recv(ws)["data"]["rev"] == 2
        # Out-of-range index is clamped.
        ws.send_json({"type": "tree_op", "data": {"delta": {**add_delta("c", "C"), "index": 99}, "base_rev": 2}})
        assert recv(ws)["data"]["delta"]["index"] == 2
        ws.send_json({"type": "tree_op", "data": {"delta": {"action": "remove", "path": "/root/zzz"}, "base_rev": 3}})
        assert recv(ws)["error"]["code"] == 404
        ws.send_json({"type": "tree_op", "data": {"delta": add_delta("a", "dup"), "base_rev": 3}})
        assert recv(ws)["error"]["code"] == 409
        ws.send_json({"type": "tree_op", "data": {"delta": {"action": "remove", "path": "/root/b"}, "base_rev": 9}})
        assert recv(ws)["error"]["code"] == 409  # base_rev from the future
        ws.send_json(
            {
                "type": "tree_op",
                "data": {
                    "delta": {"action": "update", "path": "/root/a", "fields": {"props": {"p": 1, "q": "x"}}},
                    "base_rev": 3,
                },
            }
        )
        recv(ws)
        ws.send_json(
            {
                "type": "tree_op",
                "data": {
                    "delta": {"action": "update", "path": "/root/a", "fields": {"props": {"p": None}}},
                    "base_rev": 4,
                },
            }
        )
        recv(ws)
        ws.send_json({"type": "resync", "data": {}})
        tree = recv(ws)["data"]["tree"]
        assert node_values(tree) == ["A", "B", "C"] and tree["children"][0]["props"] == {"q": "x"}


@BOTH
def test_undo_redo_walk_change_sets(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        ws.send_json({"type": "undo", "data": {}})
        assert recv(ws)["error"]["code"] == 409
        ws.send_json({"type": "user_prompt", "data": {"prompt": "Add 'A', 'B' and 'C' under root"}})
        collect_turn(ws)
        ws.send_json({"type": "tree_op", "data": {"delta": add_delta("d", "D"), "base_rev": 3}})
        recv(ws)
        ws.send_json({"type": "undo", "data": {}, "id": "u1"})
        (one,) = [recv(ws)]
        assert one["data"]["origin"] == "undo" and one["data"]["delta"]["action"] == "remove" and one["id"] == "u1"
        ws.send_json({"type": "undo", "data": {}})
        undone = [recv(ws) for _ in range(3)]  # the whole assistant turn
        assert [u["data"]["delta"]["action"] for u in undone] == ["remove"] * 3
        assert undone[-1]["data"]["rev"] == 8
        ws.send_json({"type": "redo", "data": {}})
        redone = [recv(ws) for _ in range(3)]
        assert [u["data"]["delta"]["node"]["value"] for u in redone] == ["A", "B", "C"]
        ws.send_json({"type": "redo", "data": {}})
        assert recv(ws)["data"]["delta"]["node"]["value"] == "D"
        ws.send_json({"type": "redo", "data": {}})
        assert recv(ws)["error"]["code"] == 409


@BOTH
def test_undo_reaches_back_100_change_sets_in_memory_and_after_a_restart(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url=database_url, rate_limit_frames_per_second=1e6, rate_limit_frame_burst=10**6
    )
    edits = 105

    def undo_all(ws: object) -> int:
        undone = 0
        while True:
            ws.send_json({"type": "undo", "data": {}})  # type: ignore[attr-defined]
            frame = recv(ws)
            if frame["type"] == "error":
                assert frame["error"]["code"] == 409
                return undone
            undone += 1

    with TestClient(create_app(settings)) as tc:
        token = login(tc)
        with session_socket(tc, token) as (ws, _):
            for i in range(edits):
                ws.send_json({"type": "tree_op", "data": {"delta": add_delta(f"n{i}", f"N{i}"), "base_rev": i}})
                assert recv(ws)["data"]["rev"] == i + 1
            assert undo_all(ws) == 100  # the in-memory stack is as deep as storage keeps: no more, no less
            ws.send_json({"type": "resync", "data": {}})
            assert node_values(recv(ws)["data"]["tree"]) == [f"N{i}" for i in range(edits - 100)]
            for _ in range(100):
                ws.send_json({"type": "redo", "data": {}})
                recv(ws)
    with TestClient(create_app(settings)) as tc, session_socket(tc, token) as (ws, ready):
        assert len(ready["data"]["initial_tree"]["children"]) == edits
        assert undo_all(ws) == 100


@BOTH
def test_two_tabs_stay_in_step_with_gapless_seq(tc: TestClient) -> None:
    token = login(tc)
    with (
        session_socket(tc, token) as (tab1, ready1),
        session_socket(tc, token, session_id=ready1["data"]["session_id"]) as (tab2, ready2),
    ):
        assert ready2["data"]["seq"] == ready1["data"]["seq"]
        tab1.send_json({"type": "user_prompt", "data": {"prompt": "add Milk to root"}, "id": "from-tab1"})
        seen1, seen2 = collect_turn(tab1), collect_turn(tab2)
        assert [f["seq"] for f in seen1] == [f["seq"] for f in seen2]
        assert seen2[0]["type"] == "chat_message" and seen2[0]["data"]["content"] == "add Milk to root"
        assert seen2[0]["id"] == "from-tab1"
        tab2.send_json({"type": "tree_op", "data": {"delta": add_delta("e", "Eggs"), "base_rev": 1}})
        assert recv(tab1)["data"]["delta"]["node"]["value"] == "Eggs"
        assert recv(tab2)["seq"] == seen2[-1]["seq"] + 1


@BOTH
def test_resume_replays_missed_frames(tc: TestClient) -> None:
    token = login(tc)
    with session_socket(tc, token) as (ws, ready):
        sid, last_seq = ready["data"]["session_id"], ready["data"]["seq"]
    with session_socket(tc, token, session_id=sid) as (other, _):
        other.send_json({"type": "tree_op", "data": {"delta": add_delta("a", "A"), "base_rev": 0}})
        missed = recv(other)
    with tc.websocket_connect("/ws/session") as ws:
        ready = init(ws, token, session_id=sid, last_seq=last_seq)
        assert ready["data"]["replay"] is True and ready["data"]["rev"] == 1
        replayed = recv(ws)
        assert replayed == missed


@BOTH
def test_resume_too_old_gets_the_snapshot(tmp_path: Path, database_url: str) -> None:
    with TestClient(create_app(make_settings(tmp_path, database_url=database_url, replay_buffer_frames=2))) as tc:
        token = login(tc)
        with session_socket(tc, token) as (ws, ready):
            sid, last_seq = ready["data"]["session_id"], ready["data"]["seq"]
            for i in range(4):
                ws.send_json({"type": "tree_op", "data": {"delta": add_delta(f"n{i}", f"N{i}"), "base_rev": i}})
                recv(ws)
        with tc.websocket_connect("/ws/session") as ws:
            ws.send_json({"type": "init_session", "data": {"token": token, "session_id": sid, "last_seq": last_seq}})
            ready = recv(ws)
            assert ready["data"]["replay"] is False and node_values(ready["data"]["initial_tree"]) == [
                "N0",
                "N1",
                "N2",
                "N3",
            ]
            assert recv(ws)["type"] == "chat_history"
        with tc.websocket_connect("/ws/session") as ws:  # a last_seq from the future cannot be vouched for
            assert init(ws, token, session_id=sid, last_seq=10**9)["data"]["replay"] is False


@BOTH
def test_another_users_session_is_404_on_ws_and_rest(tc: TestClient) -> None:
    alice, bob = login(tc, "alice"), login(tc, "bobby")
    with session_socket(tc, alice) as (_, ready):
        sid = ready["data"]["session_id"]
    with tc.websocket_connect("/ws/session") as ws:
        ws.send_json({"type": "init_session", "data": {"token": bob, "session_id": sid}, "id": "x"})
        err = recv(ws)
        assert err["type"] == "error" and err["error"]["code"] == 404 and err["id"] == "x"
        ws.send_json({"type": "init_session", "data": {"token": bob, "session_id": "no-such-session"}})
        assert recv(ws)["error"]["code"] == 404
        ws.send_json({"type": "tree_op", "data": {"delta": add_delta("a", "A"), "base_rev": 0}})
        assert recv(ws)["error"]["code"] == 400  # not attached to anything
    headers = {"Authorization": f"Bearer {bob}"}
    assert tc.get(f"/api/sessions/{sid}", headers=headers).status_code == 404
    assert tc.patch(f"/api/sessions/{sid}", json={"title": "mine"}, headers=headers).status_code == 404
    assert tc.delete(f"/api/sessions/{sid}", headers=headers).status_code == 404
    assert all(s["session_id"] != sid for s in tc.get("/api/sessions", headers=headers).json())
    assert tc.get(f"/api/sessions/{sid}", headers={"Authorization": f"Bearer {alice}"}).status_code == 200


def test_close_session_closes_1000(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        ws.send_json({"type": "close_session", "data": {}})
        assert close_code(ws) == 1000


def test_frame_rate_limit_then_close_1008(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, rate_limit_frames_per_second=0.001, rate_limit_frame_burst=3, rate_limit_strikes_before_close=3
    )
    with TestClient(create_app(settings)) as tc, session_socket(tc, login(tc)) as (ws, _):
        ws.send_json({"type": "ping", "data": {}})
        ws.send_json({"type": "ping", "data": {}})
        assert [recv(ws)["type"] for _ in range(2)] == ["pong", "pong"]
        ws.send_json({"type": "ping", "data": {}})
        ws.send_json({"type": "ping", "data": {}})
        assert recv(ws)["error"]["code"] == 429
        assert recv(ws)["error"]["code"] == 429
        ws.send_json({"type": "ping", "data": {}})
        assert close_code(ws) == 1008


def test_prompt_rate_limit_per_user(tmp_path: Path) -> None:
    with (
        TestClient(
            create_app(make_settings(tmp_path, rate_limit_prompts_per_minute=2, offline_chunk_delay_ms=0))
        ) as tc,
        session_socket(tc, login(tc)) as (ws, _),
    ):
        for value in ("A", "B"):
            ws.send_json({"type": "user_prompt", "data": {"prompt": f"add {value} to root"}})
            collect_turn(ws)
        ws.send_json({"type": "user_prompt", "data": {"prompt": "add C to root"}})
        err = recv(ws)
        assert err["error"]["code"] == 429


@BOTH
def test_sessions_rest_crud_and_delete_closes_sockets(tc: TestClient) -> None:
    token = login(tc)
    auth = {"Authorization": f"Bearer {token}"}
    assert tc.get("/api/sessions").status_code == 401
    created = tc.post("/api/sessions", json={"title": "Plans"}, headers=auth)
    assert created.status_code == 201
    state = created.json()
    assert state["title"] == "Plans" and state["rev"] == 0 and state["history"] == []
    sid = state["session_id"]
    assert tc.post("/api/sessions", headers=auth).json()["title"] == "Untitled session"
    assert tc.post("/api/sessions", json={"title": ""}, headers=auth).status_code == 422
    assert tc.post("/api/sessions", json={"title": "x" * 201}, headers=auth).status_code == 422
    with session_socket(tc, token, session_id=sid) as (ws, _):
        ws.send_json({"type": "user_prompt", "data": {"prompt": "add Apples to root"}})
        collect_turn(ws)
        listing = tc.get("/api/sessions", headers=auth).json()
        assert listing[0]["session_id"] == sid and listing[0]["node_count"] == 2
        assert set(listing[0]) == {"session_id", "title", "updated_at", "node_count", "role", "owner"}
        full = tc.get(f"/api/sessions/{sid}", headers=auth).json()
        assert node_values(full["tree"]) == ["Apples"] and full["rev"] == 1
        assert [m["role"] for m in full["history"]] == ["user", "assistant"]
        renamed = tc.patch(f"/api/sessions/{sid}", json={"title": "Groceries"}, headers=auth)
        assert renamed.status_code == 200 and renamed.json()["title"] == "Groceries"
        assert tc.delete(f"/api/sessions/{sid}", headers=auth).status_code == 204
        assert close_code(ws) == 1000
    assert tc.get(f"/api/sessions/{sid}", headers=auth).status_code == 404


@BOTH
def test_state_survives_a_restart_and_seq_never_decreases(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, offline_chunk_delay_ms=0)
    with TestClient(create_app(settings)) as tc:
        token = login(tc)
        with session_socket(tc, token) as (ws, ready):
            sid = ready["data"]["session_id"]
            ws.send_json({"type": "user_prompt", "data": {"prompt": "Add 'A' and 'B' under root"}})
            last_seq = collect_turn(ws)[-1]["seq"]
    with TestClient(create_app(settings)) as tc, session_socket(tc, token, session_id=sid) as (ws, ready):
        assert node_values(ready["data"]["initial_tree"]) == ["A", "B"]
        assert ready["data"]["rev"] == 2 and ready["data"]["seq"] >= last_seq
        ws.send_json({"type": "undo", "data": {}})  # the undo stack survives too
        assert [recv(ws)["data"]["delta"]["action"] for _ in range(2)] == ["remove", "remove"]


@BOTH
def test_idle_sessions_are_evicted_and_reload(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, session_idle_seconds=1)
    app = create_app(settings)
    with TestClient(app) as tc:
        token = login(tc)
        with session_socket(tc, token) as (ws, ready):
            ws.send_json({"type": "tree_op", "data": {"delta": add_delta("a", "A"), "base_rev": 0}})
            recv(ws)
        manager = app.state.services.sessions
        wait_until(lambda: len(manager) == 0, timeout=10)
        metrics = tc.get("/metrics").text
        assert "canopy_session_evictions_total 1.0" in metrics
        with session_socket(tc, token, session_id=ready["data"]["session_id"]) as (_, again):
            assert node_values(again["data"]["initial_tree"]) == ["A"]


def test_metrics_count_frames_and_connections(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        ws.send_json({"type": "ping", "data": {}})
        recv(ws)
        text = tc.get("/metrics").text
        assert "canopy_ws_connections 1.0" in text
        assert 'canopy_ws_frames_in_total{type="ping"} 1.0' in text
        assert 'canopy_ws_frames_out_total{type="pong"} 1.0' in text


@BOTH
def test_disconnect_mid_turn_still_stores_the_turn(tmp_path: Path, database_url: str) -> None:
    with TestClient(create_app(make_settings(tmp_path, database_url=database_url, offline_chunk_delay_ms=50))) as tc:
        token = login(tc)
        with session_socket(tc, token) as (ws, ready):
            ws.send_json({"type": "user_prompt", "data": {"prompt": "add Late to root"}})
            recv_until(ws, "tree_update")
        sid = ready["data"]["session_id"]
        auth = {"Authorization": f"Bearer {token}"}
        wait_until(lambda: len(tc.get(f"/api/sessions/{sid}", headers=auth).json()["history"]) == 2)
        history = tc.get(f"/api/sessions/{sid}", headers=auth).json()["history"]
        assert history[1]["role"] == "assistant" and "Late" in history[1]["content"]


def test_websocket_disconnect_exception_is_clean(tc: TestClient) -> None:
    token = login(tc)
    with pytest.raises(WebSocketDisconnect), tc.websocket_connect(f"/ws/session?token={token}x") as ws:
        ws.receive_json()


def test_session_in_the_url_must_match_init_session(tc: TestClient) -> None:
    token = login(tc)
    with session_socket(tc, token) as (_, ready):
        sid = ready["data"]["session_id"]
    other = tc.post("/api/sessions", json={"title": "other"}, headers={"Authorization": f"Bearer {token}"})
    other_id = other.json()["session_id"]
    with tc.websocket_connect(f"/ws/session?session={sid}") as ws:
        ws.send_json({"type": "init_session", "data": {"token": token, "session_id": other_id}, "id": "i"})
        err = recv(ws)
        assert err["type"] == "error" and err["error"]["code"] == 421 and "?session=" in err["error"]["message"]
        ws.send_json({"type": "init_session", "data": {"token": token}, "id": "i2"})  # no id: the URL's
        assert recv(ws)["data"]["session_id"] == sid
    with tc.websocket_connect(f"/ws/session?session={'x' * 65}") as ws:
        ws.send_json({"type": "init_session", "data": {"token": token}})
        assert recv(ws)["error"]["code"] == 400
    with tc.websocket_connect("/ws/session?session=unknown") as ws:
        ws.send_json({"type": "init_session", "data": {"token": token}})
        assert recv(ws)["error"]["code"] == 404
