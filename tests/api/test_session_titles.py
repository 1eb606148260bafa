"""Sessions people recognise (issue #14 §3): titled from the first prompt, a rename that does not
reorder the list, and reasoning stored with the answer (shown again after a reload)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from canopy.realtime.session import DEFAULT_TITLE, TITLE_FROM_PROMPT_CHARS, title_from_prompt
from canopy.realtime.turns import REASONING_MAX_CHARS, REASONING_MAX_STEPS, ReasoningLog
from tests.support.ws import collect_turn, init, login, recv, session_socket

pytestmark = pytest.mark.timeout(60)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def prompt(ws: Any, text: str) -> list[dict[str, Any]]:
    ws.send_json({"type": "user_prompt", "data": {"prompt": text}})
    return collect_turn(ws)


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("add Apples to root", "add Apples to root"),
        ("  add   Apples\n\tunder  root ", "add Apples under root"),
        ("word " * 30, ("word " * 11).strip() + "…"),
        ("x" * 100, "x" * (TITLE_FROM_PROMPT_CHARS - 1) + "…"),
        ("   ", DEFAULT_TITLE),
    ],
)
def test_title_from_prompt(text: str, title: str) -> None:
    assert title_from_prompt(text) == title
    assert len(title_from_prompt(text)) <= TITLE_FROM_PROMPT_CHARS


def test_a_new_session_takes_its_title_from_the_first_prompt_only(tc: TestClient) -> None:
    token = login(tc)
    sid = tc.post("/api/sessions", headers=bearer(token)).json()["session_id"]
    with session_socket(tc, token, session_id=sid) as (ws, _):
        prompt(ws, "Add 'Design', 'Build' and 'Launch' under Project")
        prompt(ws, "add Apples to root")
    titles = {s["session_id"]: s["title"] for s in tc.get("/api/sessions", headers=bearer(token)).json()}
    assert titles[sid] == "Add 'Design', 'Build' and 'Launch' under Project"
    with tc.websocket_connect("/ws/session") as ws:
        assert init(ws, token, session_id=sid)["data"]["title"] == titles[sid]


def test_a_titled_or_renamed_session_keeps_its_title(tc: TestClient) -> None:
    token = login(tc)
    named = tc.post("/api/sessions", json={"title": "Plans"}, headers=bearer(token)).json()["session_id"]
    renamed = tc.post("/api/sessions", headers=bearer(token)).json()["session_id"]
    assert tc.patch(f"/api/sessions/{renamed}", json={"title": "Mine"}, headers=bearer(token)).status_code == 200
    for sid in (named, renamed):
        with session_socket(tc, token, session_id=sid) as (ws, _):
            prompt(ws, "add Apples to root")
    titles = {s["session_id"]: s["title"] for s in tc.get("/api/sessions", headers=bearer(token)).json()}
    assert titles[named] == "Plans" and titles[renamed] == "Mine"


def test_renaming_keeps_the_order_of_the_list(tc: TestClient) -> None:
    token = login(tc)
    older = tc.post("/api/sessions", headers=bearer(token)).json()["session_id"]
    newer = tc.post("/api/sessions", headers=bearer(token)).json()["session_id"]
    with session_socket(tc, token, session_id=newer) as (ws, _):
        prompt(ws, "add Apples to root")  # newer is the most recently active
    before = [s["session_id"] for s in tc.get("/api/sessions", headers=bearer(token)).json()]
    assert before[:2] == [newer, older]
    stamp = {s["session_id"]: s["updated_at"] for s in tc.get("/api/sessions", headers=bearer(token)).json()}
    renamed = tc.patch(f"/api/sessions/{older}", json={"title": "Renamed"}, headers=bearer(token)).json()
    assert renamed["title"] == "Renamed" and renamed["updated_at"] == stamp[older]
    after = tc.get("/api/sessions", headers=bearer(token)).json()
    assert [s["session_id"] for s in after] == before and after[1]["title"] == "Renamed"


def test_reasoning_is_stored_with_the_answer_and_sent_in_chat_history(tc: TestClient) -> None:
    token = login(tc)
    with session_socket(tc, token) as (ws, ready):
        sid = ready["data"]["session_id"]
        frames = prompt(ws, "add Apples to root")
    steps = [f["data"]["text"] for f in frames if f["type"] == "reasoning"]
    assert steps, "the offline assistant reasons in steps"
    with tc.websocket_connect("/ws/session") as ws:
        ws.send_json({"type": "init_session", "data": {"token": token, "session_id": sid}})
        assert recv(ws)["type"] == "session_ready"
        history = recv(ws)
    assert history["type"] == "chat_history"
    user, answer = history["data"]["messages"][-2:]
    assert "reasoning" not in user and answer["reasoning"] == steps
    rest = tc.get(f"/api/sessions/{sid}", headers=bearer(token)).json()["history"]
    assert rest[-1]["reasoning"] == steps


def test_reasoning_log_keeps_within_its_limits() -> None:
    log = ReasoningLog()
    for i in range(REASONING_MAX_STEPS + 5):
        log.add(f"s{i}")
    assert len(log.steps) == REASONING_MAX_STEPS
    assert log.steps[-1].endswith("s204") and log.steps[-1].startswith(f"s{REASONING_MAX_STEPS - 1}")
    big = ReasoningLog()
    big.add("a" * (REASONING_MAX_CHARS - 10))
    big.add("b" * 100)
    big.add("c")
    assert sum(map(len, big.steps)) == REASONING_MAX_CHARS and big.steps[-1].endswith("…")
    assert len(big.steps) == 2
