"""The whole stack through nginx with TLS: headers, caching, compression, the SPA, the
auth flow, the auth rate limit, the WebSocket over wss://, and logs without secrets."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import uuid
import warnings
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from tests.helpers import wait_until
from tests.support.stack import Stack, insecure_ssl_context

PASSWORD = "stack-password-1"


def client(stack: Stack, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=stack.base_url, verify=False, timeout=10, trust_env=False, **kwargs)


def marker() -> str:
    """A unique User-Agent: nginx logs it, so a test can wait for its own log lines."""
    return f"stack-test-{uuid.uuid4().hex}"


def wait_logged(stack: Stack, user_agent: str, count: int = 1) -> None:
    wait_until(lambda: stack.nginx.logs().count(user_agent) >= count, 10, f"nginx logged {count} x {user_agent}")


def new_user(c: httpx.Client) -> tuple[str, str]:
    """Registers and logs in a fresh user; returns (username, access token)."""
    username = f"u{uuid.uuid4().hex[:12]}"
    r = c.post("/api/auth/register", json={"username": username, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = c.post("/api/auth/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return username, r.json()["access_token"]


def asset_paths(stack: Stack, suffix: str) -> list[str]:
    html = client(stack).get("/").text
    return re.findall(rf'(?:src|href)="(/assets/[^"]+\.{suffix})"', html)


# ---- TLS, redirect, headers ------------------------------------------------------------------


def test_http_redirects_to_https_with_301(stack: Stack) -> None:
    r = httpx.get(stack.http_url + "/sessions/abc?x=1", follow_redirects=False, trust_env=False)
    assert r.status_code == 301
    assert r.headers["location"] == f"https://127.0.0.1:{stack.https_port}/sessions/abc?x=1"


def test_security_headers(stack: Stack) -> None:
    for path in ("/", "/sessions/abc", "/api/healthz", "/no/such/asset.png"):
        h = client(stack).get(path).headers
        assert h["strict-transport-security"].startswith("max-age=31536000"), path
        csp = h["content-security-policy"]
        assert "script-src 'self';" in csp and "default-src 'self'" in csp, path
        assert f"connect-src 'self' wss://127.0.0.1:{stack.https_port};" in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert h["x-content-type-options"] == "nosniff", path
        assert h["referrer-policy"] == "same-origin", path
        assert h["x-frame-options"] == "DENY", path
        assert h["server"] == "nginx", path  # no version
        # One copy of each: the API's own headers (if any) are replaced, not duplicated.
        assert h.get_list("x-content-type-options") == ["nosniff"], path


def test_tls_12_and_13_only(stack: Stack) -> None:
    for version, accepted in ((ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_3, True)):
        context = insecure_ssl_context()
        context.minimum_version = context.maximum_version = version
        r = httpx.get(stack.base_url + "/api/healthz", verify=context, trust_env=False)
        assert r.status_code == 200, (version, accepted)
    # A client that offers only TLS 1.1 (its own security level lowered so that it really
    # does) is refused by the server with a protocol_version alert.
    context = insecure_ssl_context()
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(httpx.ConnectError) as refused:
        httpx.get(stack.base_url + "/api/healthz", verify=context, trust_env=False)
    assert "PROTOCOL_VERSION" in str(refused.value).upper() or "protocol version" in str(refused.value)


# ---- the SPA -------------------------------------------------------------------------------


def test_deep_links_get_index_html_revalidated(stack: Stack) -> None:
    with client(stack) as c:
        index = c.get("/")
        deep = c.get("/sessions/abc")
    assert index.status_code == deep.status_code == 200
    assert deep.text == index.text and '<div id="root">' in deep.text
    assert deep.headers["content-type"].startswith("text/html")
    assert deep.headers["cache-control"] == "no-cache"
    assert index.headers["cache-control"] == "no-cache"


def test_hashed_assets_are_immutable_and_gzipped(stack: Stack) -> None:
    scripts = asset_paths(stack, "js")
    styles = asset_paths(stack, "css")
    assert scripts and styles
    with client(stack) as c:
        for path in scripts + styles:
            r = c.get(path, headers={"Accept-Encoding": "gzip"})
            assert r.status_code == 200, path
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable", path
            assert r.headers["content-encoding"] == "gzip", path
            assert "accept-encoding" in r.headers["vary"].lower(), path
        js = c.get(scripts[0], headers={"Accept-Encoding": "gzip"})
        assert js.headers["content-type"].split(";")[0] in {"application/javascript", "text/javascript"}
        missing = c.get("/assets/no-such-file-1234.js")
    assert missing.status_code == 404
    assert "immutable" not in missing.headers.get("cache-control", "")


def test_api_json_is_gzipped_too(stack: Stack) -> None:
    r = client(stack).get("/api/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.json()["info"]["title"]


# ---- metrics -------------------------------------------------------------------------------


def test_metrics_hidden_from_the_public_side_but_on_the_api_port(stack: Stack) -> None:
    with client(stack) as c:
        for path in ("/metrics", "/metrics/", "/api/metrics"):
            r = c.get(path)
            assert r.status_code in (403, 404), path
            assert "# TYPE" not in r.text, path
    direct = httpx.get(stack.api_url + "/metrics", trust_env=False)
    assert direct.status_code == 200 and "# TYPE" in direct.text


# ---- REST auth through nginx --------------------------------------------------------------


def test_auth_flow_through_nginx(stack: Stack) -> None:
    with client(stack) as c:
        username, token = new_user(c)
        login = c.post("/api/auth/login", data={"username": username, "password": PASSWORD})
        assert login.status_code == 200
        cookie = login.headers["set-cookie"]
        attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
        assert "secure" in attributes and "httponly" in attributes
        assert attributes["samesite"].lower() == "samesite=strict"
        assert attributes["path"].lower() == "path=/api/auth"

        me = c.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["username"] == username
        assert c.get("/api/auth/me").status_code == 401

        refreshed = c.post("/api/auth/refresh")  # the client sends the Secure cookie over https
        assert refreshed.status_code == 200, refreshed.text
        new_token = refreshed.json()["access_token"]
        assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200

        bad = c.post("/api/auth/login", data={"username": username, "password": "wrong-password"})
        assert bad.status_code == 401 and bad.json()["detail"]


def test_api_sees_the_forwarded_client_and_scheme(stack: Stack) -> None:
    """The refresh cookie is Secure: the API must know the request came over https."""
    with client(stack) as c:
        username, _ = new_user(c)
        r = c.post("/api/auth/login", data={"username": username, "password": PASSWORD})
    assert "secure" in r.headers["set-cookie"].lower()


def test_sessions_rest_through_nginx(stack: Stack) -> None:
    with client(stack) as c:
        _, token = new_user(c)
        auth = {"Authorization": f"Bearer {token}"}
        created = c.post("/api/sessions", json={"title": "Through nginx"}, headers=auth)
        assert created.status_code == 201, created.text
        listed = c.get("/api/sessions", headers=auth)
        assert listed.status_code == 200
        assert created.json()["session_id"] in [s["session_id"] for s in listed.json()]


def test_large_request_bodies_are_refused_by_nginx(stack: Stack) -> None:
    r = client(stack).post(
        "/api/auth/register", content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


# ---- WebSocket over wss:// ---------------------------------------------------------------


async def recv_json(ws: Any, timeout: float = 10) -> dict[str, Any]:
    while True:  # presence and undo_state frames (unnumbered, on their own schedule) are not what these tests read
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame.get("type") not in ("presence", "undo_state"):
            return frame


async def recv_until(ws: Any, predicate: Any, timeout: float = 20) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = await recv_json(ws, timeout)
        frames.append(frame)
        if predicate(frame):
            return frames


async def connect(stack: Stack, query: str, user_agent: str) -> Any:
    return await websockets.connect(
        f"{stack.ws_url}?{query}",
        ssl=insecure_ssl_context(),
        proxy=None,
        open_timeout=10,
        origin=Origin(f"https://127.0.0.1:{stack.https_port}"),
        user_agent_header=user_agent,
    )


async def open_session(stack: Stack, token: str, user_agent: str) -> tuple[Any, dict[str, Any]]:
    ws = await connect(stack, f"token={token}", user_agent)
    await ws.send(json.dumps({"type": "init_session", "data": {}, "id": "init"}))
    ready = await recv_json(ws)
    assert ready["type"] == "session_ready", ready
    assert ready.get("id") == "init"
    history = await recv_json(ws)
    assert history["type"] == "chat_history"
    return ws, ready


async def test_websocket_over_wss_with_query_token(stack: Stack) -> None:
    with client(stack) as c:
        _, token = new_user(c)
    agent = marker()
    ws, ready = await open_session(stack, token, agent)
    try:
        assert ready["data"]["initial_tree"]["id"] == "root"
        await ws.send(json.dumps({"type": "ping", "data": {}, "id": "p1"}))
        pong = await recv_json(ws)
        assert pong["type"] == "pong" and pong.get("id") == "p1"

        # A streamed turn of the offline assistant passes through nginx unbuffered.
        await ws.send(
            json.dumps(
                {
                    "type": "user_prompt",
                    "id": "t1",
                    "data": {"prompt": "Add a new node with value 'Via nginx' under root"},
                }
            )
        )
        frames = await recv_until(
            ws,
            lambda f: (
                (f["type"] == "assistant_response" and not f["data"].get("chunk"))
                or (f["type"] == "error" and f.get("seq") is not None)
            ),
        )
        assert frames[-1]["type"] == "assistant_response", frames[-1]
        updates = [f for f in frames if f["type"] == "tree_update"]
        assert updates and updates[0]["data"]["delta"]["node"]["value"] == "Via nginx"

        await ws.send(json.dumps({"type": "close_session", "data": {}}))
        with pytest.raises(ConnectionClosed) as closed:
            await recv_until(ws, lambda f: False)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    finally:
        await ws.close()
    await asyncio.to_thread(wait_logged, stack, agent)
    await asyncio.to_thread(assert_not_logged, stack, token)


async def test_websocket_with_a_bad_token_is_closed_1008(stack: Stack) -> None:
    bad = "not-a-valid-token-" + uuid.uuid4().hex
    agent = marker()
    ws = await connect(stack, f"token={bad}", agent)
    try:
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    finally:
        await ws.close()
    await asyncio.to_thread(wait_logged, stack, agent)
    await asyncio.to_thread(assert_not_logged, stack, bad)


def assert_not_logged(stack: Stack, *secrets: str) -> None:
    """No line of nginx's or gunicorn's captured output holds a secret (call it after
    wait_logged: nginx writes a WebSocket's line when the socket closes)."""
    for path in stack.log_paths:
        text = path.read_text(errors="replace") if path.exists() else ""
        for secret in secrets:
            leaked = [line for line in text.splitlines() if secret in line]
            assert not leaked, f"{path.name} logged a secret: {leaked[:2]}"


def test_logs_hold_no_token_password_or_query_string(stack: Stack) -> None:
    agent = marker()
    with client(stack, headers={"User-Agent": agent}) as c:
        _, token = new_user(c)
        c.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        c.get(f"/sessions/abc?token={token}")
        c.get(f"/api/healthz?token={token}&password={PASSWORD}")
    wait_logged(stack, agent, count=5)
    assert_not_logged(stack, token, PASSWORD)
    access_lines = [line for line in stack.nginx.stdout_path.read_text().splitlines() if '"GET ' in line]
    assert access_lines and not any("?" in line.split('"')[1] for line in access_lines)


async def test_a_percent_encoded_query_token_is_not_logged(stack: Stack) -> None:
    """`?%74oken=%65%79...` authenticates like `?token=`: neither gunicorn's nor nginx's log may hold it."""
    with client(stack) as c:
        _, token = new_user(c)
    encoded = "".join(f"%{byte:02X}" for byte in token.encode())
    agent = marker()
    ws = await connect(stack, f"%74oken={encoded}", agent)
    try:
        await ws.send(json.dumps({"type": "init_session", "data": {}, "id": "init"}))
        assert (await recv_json(ws))["type"] == "session_ready"  # the encoded token did authenticate
    finally:
        await ws.close()
    await asyncio.to_thread(wait_logged, stack, agent)
    wait_until(lambda: "/ws/session" in stack.api.logs(), 10, "gunicorn logged the socket")
    await asyncio.to_thread(assert_not_logged, stack, token, encoded, encoded[:60], token.split(".")[2])
    assert "%74oken" not in stack.all_logs()


async def test_a_foreign_origin_socket_is_refused_through_nginx(stack: Stack) -> None:
    with client(stack) as c:
        _, token = new_user(c)
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        await websockets.connect(
            f"{stack.ws_url}?token={token}",
            ssl=insecure_ssl_context(),
            proxy=None,
            open_timeout=10,
            origin=Origin("https://evil.example"),
        )
    assert refused.value.response.status_code == 403


def test_a_cross_site_login_is_refused_through_nginx(stack: Stack) -> None:
    with client(stack) as c:
        username, _ = new_user(c)
        r = c.post(
            "/api/auth/login",
            data={"username": username, "password": PASSWORD},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert r.status_code == 403 and "set-cookie" not in r.headers
        r = c.post(
            "/api/auth/login",
            data={"username": username, "password": PASSWORD},
            headers={"Origin": stack.base_url, "Sec-Fetch-Site": "same-origin"},
        )
        assert r.status_code == 200 and "canopy_refresh=" in r.headers["set-cookie"]


# ---- the API behind nginx goes away and comes back -----------------------------------------


def test_api_down_is_a_json_502_and_recovers(stack: Stack) -> None:
    secret = "token-while-down-" + uuid.uuid4().hex
    agent = marker()

    async def websocket_while_down() -> None:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(stack, f"token={secret}", agent)
        assert refused.value.response.status_code == 502

    stack.stop_api()
    try:
        r = client(stack).get("/api/healthz")
        assert r.status_code == 502
        assert r.json() == {"detail": "The API is not reachable"}
        assert client(stack).get("/sessions/abc").status_code == 200  # the SPA is still served
        # nginx's error line for a failed upstream repeats the request line: not for /ws/.
        asyncio.run(websocket_while_down())
        wait_logged(stack, agent)
        assert_not_logged(stack, secret)
    finally:
        stack.start_api()
    stack.wait_ready()
    # With several replicas nginx marked each one failed while it was down and tries it again only after its
    # fail_timeout (5 s): recovery is nginx's, not immediate. One replica is never marked failed.
    wait_until(lambda: client(stack).get("/api/healthz").status_code == 200, timeout=30, what="nginx reaches the API")


# ---- rate limit (last: it leaves the auth bucket empty for a moment) -------------------------


def test_auth_routes_are_rate_limited_by_nginx(stack: Stack) -> None:
    statuses = []
    with client(stack) as c:
        for _ in range(60):
            r = c.get("/api/auth/me")
            statuses.append(r.status_code)
            if r.status_code == 429:
                limited = r
                break
        assert 429 in statuses, statuses
        assert statuses[0] == 401  # the API answered until the burst was used up
        assert limited.json() == {"detail": "Too many requests"}
        assert limited.headers["strict-transport-security"]
        # Other routes are not limited, and the bucket refills (10 r/s).
        assert c.get("/api/healthz").status_code == 200
        wait_until(lambda: c.get("/api/auth/me").status_code == 401, 10, "auth rate limit refilled", 0.2)


async def test_streamed_chunks_are_not_buffered_by_nginx(stack: Stack) -> None:
    """The offline assistant sleeps OFFLINE_CHUNK_DELAY_MS (15 ms) between chunks; if nginx buffered
    the stream, every chunk would arrive in one burst. A lower bound only: load can only widen it."""
    with client(stack) as c:
        _, token = new_user(c)
    ws, _ = await open_session(stack, token, marker())
    try:
        await ws.send(json.dumps({"type": "user_prompt", "data": {"prompt": "Add 'A', 'B', 'C' and 'D' under root"}}))
        arrivals: list[float] = []
        while True:
            frame = await recv_json(ws)
            if frame["type"] == "assistant_response":
                arrivals.append(asyncio.get_running_loop().time())
                if not frame["data"]["chunk"]:
                    break
        chunks = len(arrivals) - 1
        assert chunks >= 3
        spread = arrivals[chunks - 1] - arrivals[0]
        assert spread >= (chunks - 1) * 0.015 * 0.8, (chunks, spread)
    finally:
        await ws.close()


# ---- collaboration through nginx -----------------------------------------------------------


async def join(stack: Stack, token: str, session_id: str) -> Any:
    ws = await connect(stack, "", marker())
    await ws.send(
        json.dumps({"type": "init_session", "id": "init", "data": {"token": token, "session_id": session_id}})
    )
    await recv_until(ws, lambda f: f["type"] == "chat_history")
    return ws


async def test_shared_session_review_and_revoke_through_nginx(stack: Stack) -> None:
    with client(stack) as c:
        (_, owner), (editor_name, editor), (viewer_name, viewer) = new_user(c), new_user(c), new_user(c)
        auth = {"Authorization": f"Bearer {owner}"}
        sid = c.post("/api/sessions", json={"title": "Shared"}, headers=auth).json()["session_id"]
        for name, role in ((editor_name, "editor"), (viewer_name, "viewer")):
            assert (
                c.post(f"/api/sessions/{sid}/members", json={"username": name, "role": role}, headers=auth).status_code
                == 201
            )
        assert c.patch(f"/api/sessions/{sid}", json={"review_mode": True}, headers=auth).status_code == 200
    ed, vw = await join(stack, editor, sid), await join(stack, viewer, sid)
    try:
        await vw.send(
            json.dumps(
                {
                    "type": "tree_op",
                    "id": "v1",
                    "data": {
                        "base_rev": 0,
                        "delta": {"action": "add", "path": "/root/children", "node": {"id": "v", "value": "V"}},
                    },
                }
            )
        )
        refused = await recv_until(vw, lambda f: f.get("id") == "v1")
        assert refused[-1]["error"]["code"] == 403
        await ed.send(json.dumps({"type": "user_prompt", "id": "q", "data": {"prompt": "add 'A' and 'B' under root"}}))
        proposal = (await recv_until(vw, lambda f: f["type"] == "proposal"))[-1]["data"]["proposal"]
        await ed.send(
            json.dumps({"type": "proposal_decision", "id": "d", "data": {"proposal_id": proposal["id"], "accept": [1]}})
        )
        seen = await recv_until(vw, lambda f: f["type"] == "proposal_resolved")
        updates = [f["data"] for f in seen if f["type"] == "tree_update"]
        assert [(u["origin"], u["delta"]["node"]["value"]) for u in updates] == [("proposal", "B")]
        with client(stack) as c:
            r = c.delete(f"/api/sessions/{sid}/members/{viewer_name}", headers={"Authorization": f"Bearer {owner}"})
            assert r.status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            await recv_until(vw, lambda f: False)
        assert closed.value.rcvd is not None and (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            1008,
            "access revoked",
        )
    finally:
        await asyncio.gather(ed.close(), vw.close())
