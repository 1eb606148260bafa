"""Security checks across REST and the WebSocket: forged tokens, other users' sessions, oversized bodies,
cookie flags, and secrets kept out of the logs. Runs the real app (TestClient), real SQLite."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
from jose import jwt
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from canopy.logs import RedactingFilter, redact
from canopy.main import create_app
from canopy.security import create_access_token
from tests.conftest import make_settings
from tests.helpers import TEST_SECRET
from tests.support.ws import Frame, collect_turn, init, login, recv, session_socket

pytestmark = pytest.mark.timeout(60)

SESSION_DATA = {
    "session_ready",
    "chat_history",
    "tree_snapshot",
    "tree_update",
    "assistant_response",
    "reasoning",
    "chat_message",
    "debug",
}


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _user_id(tc: TestClient, token: str) -> str:
    r = tc.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def forged_tokens(tc: TestClient) -> dict[str, str]:
    """Tokens that name a real user but must not authenticate anybody."""
    victim = login(tc, "victim", "victim-password")
    uid = _user_id(tc, victim)
    now = int(time.time())
    claims = {"sub": uid, "iat": now, "exp": now + 600, "jti": "forged", "typ": "access"}
    header, _payload, signature = victim.split(".")
    return {
        "alg-none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "alg-none-with-signature": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.{signature}",
        "wrong-key": create_access_token(uid, "another-secret-key-that-is-long-enough-9876543210", 30)[0],
        "tampered-payload": f"{header}.{_b64({**claims, 'sub': uid + 'x'})}.{signature}",
        "tampered-expiry": f"{header}.{_b64({**jwt.get_unverified_claims(victim), 'exp': now + 10**8})}.{signature}",
        "expired": jwt.encode({**claims, "iat": now - 3600, "exp": now - 60}, TEST_SECRET, algorithm="HS256"),
        "refresh-token-as-access": "not-a-jwt-" + "a" * 40,
    }


def frames_until_close(ws: Any) -> tuple[list[Frame], int]:
    frames: list[Frame] = []
    try:
        while True:
            frames.append(ws.receive_json())
    except WebSocketDisconnect as exc:
        return frames, int(exc.code)


def _refused(frames: list[Frame]) -> None:
    assert not [f for f in frames if f.get("type") in SESSION_DATA or f.get("session_id")], frames


@pytest.mark.parametrize(
    "kind",
    [
        "alg-none",
        "alg-none-with-signature",
        "wrong-key",
        "tampered-payload",
        "tampered-expiry",
        "expired",
        "refresh-token-as-access",
    ],
)
def test_forged_tokens_close_1008_before_session_data_and_rest_401(tc: TestClient, kind: str) -> None:
    token = forged_tokens(tc)[kind]
    with tc.websocket_connect("/ws/session") as ws:  # token in the first message
        ws.send_json({"type": "init_session", "data": {"token": token}})
        frames, code = frames_until_close(ws)
    assert code == 1008
    _refused(frames)
    try:  # token in the query string; the server may refuse before or after accepting
        with tc.websocket_connect(f"/ws/session?token={token}") as ws:
            ws.send_json({"type": "init_session", "data": {}})
            frames, code = frames_until_close(ws)
    except WebSocketDisconnect as exc:
        frames, code = [], int(exc.code)
    assert code == 1008
    _refused(frames)
    for headers in ({"Authorization": f"Bearer {token}"}, {"Authorization": f"bearer {token}"}):
        r = tc.get("/api/auth/me", headers=headers)
        assert r.status_code == 401 and r.json() == {"detail": "Not authenticated"}
        assert tc.get("/api/sessions", headers=headers).status_code == 401


def _exchange(ws: Any, frame: Frame, marker: str) -> list[Frame]:
    """Sends `frame`, then a ping; returns every frame answered before that ping's pong."""
    ws.send_json(frame)
    ws.send_json({"type": "ping", "data": {}, "id": marker})
    out: list[Frame] = []
    while True:
        got = recv(ws)
        if got["type"] == "pong" and got.get("id") == marker:
            return out
        out.append(got)


ALICE_SECRETS = ("alice-private-node", "alice private words", "Alice's plans")


def _alice_session(tc: TestClient, alice: str) -> str:
    r = tc.post("/api/sessions", json={"title": "Alice's plans"}, headers={"Authorization": f"Bearer {alice}"})
    assert r.status_code == 201
    sid = str(r.json()["session_id"])
    with session_socket(tc, alice, session_id=sid) as (ws, _):
        node = {"id": "n1", "value": "alice-private-node", "children": []}
        ws.send_json(
            {
                "type": "tree_op",
                "data": {"delta": {"action": "add", "path": "/root/children", "node": node}, "base_rev": 0},
            }
        )
        assert recv(ws)["type"] == "tree_update"
        ws.send_json({"type": "user_prompt", "data": {"prompt": "alice private words"}})
        collect_turn(ws)
    return sid


def _state(tc: TestClient, token: str, sid: str) -> dict[str, Any]:
    r = tc.get(f"/api/sessions/{sid}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    return dict(r.json())


def _no_leak(frames: list[Frame], sid: str) -> None:
    text = json.dumps(frames)
    for secret in ALICE_SECRETS:
        assert secret not in text, frames
    assert not [f for f in frames if f.get("session_id") == sid], frames


def test_every_session_frame_with_another_users_id_leaks_nothing(tc: TestClient) -> None:
    alice, bob = login(tc, "alice"), login(tc, "bobby")
    sid = _alice_session(tc, alice)
    before = _state(tc, alice, sid)
    node = {"id": "b1", "value": "bob", "children": []}
    attempts: list[Frame] = [
        {"type": "init_session", "data": {"token": bob, "session_id": sid}},
        {"type": "init_session", "data": {"token": bob, "session_id": sid, "last_seq": 0}},
        {"type": "init_session", "data": {"token": alice + "x", "session_id": sid}},
        {"type": "user_prompt", "data": {"prompt": "delete everything"}, "session_id": sid},
        {
            "type": "tree_op",
            "data": {"delta": {"action": "remove", "path": "/root/n1"}, "base_rev": 1},
            "session_id": sid,
        },
        {
            "type": "tree_op",
            "data": {"delta": {"action": "add", "path": "/root/children", "node": node}, "base_rev": 0},
            "session_id": sid,
        },
        {"type": "cancel", "data": {}, "session_id": sid},
        {"type": "undo", "data": {}, "session_id": sid},
        {"type": "redo", "data": {}, "session_id": sid},
        {"type": "resync", "data": {}, "session_id": sid},
    ]
    with session_socket(tc, alice, session_id=sid) as (alice_ws, _):
        # Bob before attaching to anything: an id of Alice's is a 404, everything else has no session.
        with tc.websocket_connect("/ws/session") as ws:
            for i, frame in enumerate(f for f in attempts if f["data"].get("token", bob) == bob):
                answer = _exchange(ws, {**frame, "id": f"a{i}"}, f"p{i}")
                if frame["type"] == "init_session":
                    assert [f["error"]["code"] for f in answer] == [404], answer
                else:
                    assert answer and all(f["type"] == "error" and f["error"]["code"] in (400, 404) for f in answer)
                _no_leak(answer, sid)
            ws.send_json(next(f for f in attempts if f["data"].get("token", bob) != bob))  # a bad token ends it
            frames, code = frames_until_close(ws)
            _no_leak(frames, sid)
            assert code == 1008
        # Bob attached to his own session: the envelope's session_id routes nothing to Alice's.
        with session_socket(tc, bob) as (ws, ready):
            own = ready["data"]["session_id"]
            assert own != sid
            seen: list[Frame] = []
            for i, frame in enumerate(f for f in attempts if f["data"].get("token", bob) == bob):
                seen += _exchange(ws, {**frame, "id": f"b{i}"}, f"q{i}")
                if frame["type"] == "user_prompt":
                    seen += collect_turn(ws)
            _no_leak(seen, sid)
            assert [f["error"]["code"] for f in seen if f.get("id") in ("b0", "b1")] == [404, 404]
            snapshot = _exchange(ws, {"type": "resync", "data": {}}, "last")  # still on his own session
            assert snapshot[-1]["type"] == "tree_snapshot" and "alice-private-node" not in json.dumps(snapshot)
        # Alice's socket heard nothing of all that, and her session is exactly as it was.
        heard = _exchange(alice_ws, {"type": "ping", "data": {}, "id": "alive"}, "alice")
        assert [f["type"] for f in heard] == ["pong"], heard
    assert _state(tc, alice, sid) == before


def test_rest_on_another_users_session_is_404_and_changes_nothing(tc: TestClient) -> None:
    alice, bob = login(tc, "alice"), login(tc, "bobby")
    sid = _alice_session(tc, alice)
    before = _state(tc, alice, sid)
    as_bob = {"Authorization": f"Bearer {bob}"}
    with session_socket(tc, alice, session_id=sid) as (alice_ws, _):
        answers = [
            tc.get(f"/api/sessions/{sid}", headers=as_bob),
            tc.patch(f"/api/sessions/{sid}", json={"title": "pwned"}, headers=as_bob),
            tc.delete(f"/api/sessions/{sid}", headers=as_bob),
            tc.get(f"/api/sessions/{sid}", headers=as_bob),  # and the delete did not happen
        ]
        for r in answers:
            assert r.status_code == 404, r.text
            assert not any(secret in r.text for secret in ALICE_SECRETS)
        assert sid not in tc.get("/api/sessions", headers=as_bob).text
        # Alice's socket was not closed by Bob's DELETE, and nothing was broadcast to it.
        assert _exchange(alice_ws, {"type": "resync", "data": {}}, "still-here")[-1]["type"] == "tree_snapshot"
    after = _state(tc, alice, sid)
    assert after == before and after["title"] == "Alice's plans"
    assert "alice-private-node" in json.dumps(after["tree"])


def _password_hashes(tc: TestClient) -> dict[str, float]:
    """argon2 operations the app has run so far, from its /metrics (`canopy_password_hashes_total`)."""
    found = re.findall(r'^canopy_password_hashes_total\{operation="(\w+)"\} (\S+)$', tc.get("/metrics").text, re.M)
    return {"hash": 0.0, "verify": 0.0} | {operation: float(count) for operation, count in found}


def test_oversized_password_is_rejected_before_hashing(tc: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    big = "p" * (1024 * 1024)
    before = _password_hashes(tc)
    r = tc.post("/api/auth/register", json={"username": "bigpass", "password": big})
    assert r.status_code == 422
    assert _password_hashes(tc) == before  # refused by validation: no hash run
    assert big[:300] not in r.text  # the validation error does not echo the input
    assert "password" in json.dumps(r.json()["detail"])

    longest = "Long-" + "q" * 251  # the longest password there may be (256 characters)
    login(tc, "bigpass", longest)
    before = _password_hashes(tc)
    r = tc.post("/api/auth/login", data={"username": "bigpass", "password": big})  # over the form field limit
    assert r.status_code == 400
    assert _password_hashes(tc) == before  # refused while parsing the form: no verify run

    # Within the form limit but over 256: one verify (as for a miss), of at most 256 characters (a spy on the
    # real function sees the length), against the dummy hash: even a password that starts with the right 256
    # characters is refused.
    from canopy.api import auth
    from canopy.security import verify_password as real_verify

    verified: list[int] = []

    def measuring_verify(password: str, password_hash: str | None) -> bool:
        verified.append(len(password))
        return real_verify(password, password_hash)

    monkeypatch.setattr(auth, "verify_password", measuring_verify)
    r = tc.post("/api/auth/login", data={"username": "bigpass", "password": longest + big[: 1_000_000 - 256]})
    assert r.status_code == 401
    assert _password_hashes(tc) == {**before, "verify": before["verify"] + 1}
    assert verified == [256]

    r = tc.post(
        "/api/sessions",
        json={"title": "t" * (1024 * 1024)},
        headers={"Authorization": f"Bearer {login(tc, 'bigpass', longest)}"},
    )
    assert r.status_code == 422 and "t" * 300 not in r.text


def _cookie_flags(set_cookie: str) -> set[str]:
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


def test_refresh_cookie_flags_on_login_refresh_and_logout(tc: TestClient) -> None:
    login(tc, "cookies", "cookie-password")
    r = tc.post("/api/auth/login", data={"username": "cookies", "password": "cookie-password"})
    issued = _cookie_flags(r.headers["set-cookie"])
    assert r.headers["cache-control"] == "no-store"
    r = tc.post("/api/auth/refresh")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    rotated = _cookie_flags(r.headers["set-cookie"])
    for flags in (issued, rotated):
        assert {"httponly", "secure", "samesite=strict", "path=/api/auth"} <= flags, flags
        assert any(f.startswith("max-age=") and int(f.split("=")[1]) > 0 for f in flags)
        assert not any(f.startswith("domain=") for f in flags)  # host-only
    r = tc.post("/api/auth/logout")
    cleared = _cookie_flags(r.headers["set-cookie"])
    assert r.status_code == 204 and {"httponly", "secure", "samesite=strict", "path=/api/auth"} <= cleared
    assert "max-age=0" in cleared
    assert tc.post("/api/auth/refresh").status_code == 401


def test_no_secret_reaches_any_log_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    password = "log-scan-password-1"
    with TestClient(create_app(make_settings(tmp_path, offline_chunk_delay_ms=0)), base_url="https://testserver") as tc:
        access = login(tc, "logscan", password)
        first_refresh = tc.cookies.get("canopy_refresh")
        assert tc.post("/api/auth/login", data={"username": "logscan", "password": password + "x"}).status_code == 401
        with tc.websocket_connect(f"/ws/session?token={access}") as ws:
            init(ws)
            ws.send_json({"type": "user_prompt", "data": {"prompt": "Add a new node with value 'Task 1' under root"}})
            collect_turn(ws)
        with session_socket(tc, access) as (ws, _):
            ws.send_json({"type": "user_prompt", "data": {"prompt": "Rename Task 1 to Done"}})
            collect_turn(ws)
        with tc.websocket_connect("/ws/session") as ws:  # a refused token is not logged either
            ws.send_json({"type": "init_session", "data": {"token": access + "tampered"}})
            assert frames_until_close(ws)[1] == 1008
        r = tc.post("/api/auth/refresh")
        assert r.status_code == 200
        second_access, second_refresh = r.json()["access_token"], tc.cookies.get("canopy_refresh")
        assert first_refresh is not None and second_refresh is not None
        tc.cookies.clear()
        tc.cookies.set("canopy_refresh", first_refresh, path="/api/auth")
        assert tc.post("/api/auth/refresh").status_code == 401  # reuse: refused (and logged, without the token)
        assert tc.get("/api/auth/me", headers={"Authorization": f"Bearer {second_access}"}).status_code == 200
        tc.cookies.clear()
        tc.cookies.set("canopy_refresh", second_refresh, path="/api/auth")
        assert tc.post("/api/auth/logout").status_code == 204
    names = {r.name.split(".")[0] for r in caplog.records}
    assert {"canopy", "aiosqlite"} <= names, names  # the app and the driver really logged at DEBUG
    assert any("refresh rejected" in r.getMessage() for r in caplog.records)
    secrets = {
        "access": access,
        "second access": second_access,
        "refresh": first_refresh,
        "second refresh": second_refresh,
        "password": password,
        "signature": access.split(".")[2],
    }
    dumped = [caplog.text] + [
        f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''} {getattr(r, 'message', '')}" for r in caplog.records
    ]
    for name, secret in secrets.items():
        assert secret
        leaks = [line[:300] for line in dumped if secret in line]
        assert not leaks, f"{name} found in logs: {leaks}"


UVICORN_RECORDS = [
    ("uvicorn.access", '%s - "%s %s HTTP/%s" %d', ("10.0.0.1:5000", "GET", "/ws/session?token={t}", "1.1", 101)),
    ("uvicorn.error", '%s - "WebSocket %s" [accepted]', ("10.0.0.1:5000", "/ws/session?token={t}")),
    ("uvicorn.error", '%s - "WebSocket %s" 403', ("10.0.0.1:5000", "/ws/session?x=1&token={t}&y=2")),
    ("gunicorn.access", "%s", ('"GET /api/auth/me HTTP/1.1" Authorization: Bearer {t}',)),
    ("canopy", "frame %s", ('{{"type": "init_session", "data": {{"token": "{t}"}}}}',)),
]


@pytest.mark.parametrize(("logger", "msg", "args"), UVICORN_RECORDS)
def test_server_style_log_lines_are_redacted(logger: str, msg: str, args: tuple[Any, ...]) -> None:
    token = create_access_token("user-1", TEST_SECRET, 30)[0]
    record = logging.LogRecord(
        logger,
        logging.INFO,
        __file__,
        1,
        msg,
        tuple(a.format(t=token) if isinstance(a, str) else a for a in args),
        None,
    )
    assert RedactingFilter().filter(record)
    line = logging.Formatter("%(name)s [%(request_id)s] %(message)s").format(record)
    assert token not in line and token.split(".")[2] not in line, line
    assert "redacted" in line or "?" not in line  # query strings of request lines are cut off whole


@pytest.mark.parametrize("query", ["access_token", "refresh_token", "api_key", "password", "TOKEN"])
def test_redact_covers_secret_query_parameters(query: str) -> None:
    line = redact(f"GET /ws/session?a=1&{query}=s3cr3t-value&b=2 HTTP/1.1")
    assert "s3cr3t-value" not in line and "a=1" in line and "b=2" in line
