"""Issue #12, findings 1, 3, 5, 6, 8 and 9: login budgets, bounded hashing, login CSRF and socket origins,
logout everywhere, account deletion, password rules, private files, no-store and the docs switch.
Real app (in process), real SQLite, real argon2."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from canopy import accounts
from canopy.logs import logging_config
from canopy.main import create_app
from canopy.ratelimit import SlidingWindow
from canopy.services import Services
from tests.conftest import make_settings, register_and_login
from tests.support.ws import login, recv, session_socket

pytestmark = pytest.mark.timeout(300)  # 10,000 logins in one test, on a shared 2-core machine


def client_from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    """A client whose socket peer is `ip`: how the app sees a direct client, or nginx's X-Forwarded-For
    once uvicorn has applied it (trusted proxies only)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 4000)), base_url="https://testserver")


# ------------------------------------------------------------------------------- 1. login throttle


async def test_distinct_invalid_usernames_do_not_grow_the_throttle(app: FastAPI, client: httpx.AsyncClient) -> None:
    services: Services = app.state.services
    for i in range(10_000):
        name = f"{i:05d}" + "x" * (40 + i % 50)  # too long to exist: refused before any lookup or hash
        r = await client.post("/api/auth/login", data={"username": name, "password": "whatever-pass"})
        assert r.status_code in (401, 429), r.text
    assert len(services.login_failures) <= 3  # one fixed key per window for every invalid name


async def test_the_throttle_map_is_capped(tmp_path: Path) -> None:
    application = create_app(make_settings(tmp_path, login_throttle_max_keys=10, login_failures_per_ip=10**6))
    async with application.router.lifespan_context(application), client_from(application, "198.51.100.1") as c:
        for i in range(25):  # valid, distinct, unknown names (each verified against the dummy hash)
            r = await c.post("/api/auth/login", data={"username": f"nobody{i}", "password": "whatever-pass"})
            assert r.status_code == 401
        throttle = application.state.services.login_failures
        assert len(throttle.pair) == 10 and len(throttle.account) == 10 and len(throttle.ip) == 1


async def test_the_account_budget_holds_across_addresses(tmp_path: Path) -> None:
    application = create_app(make_settings(tmp_path, login_failures_per_account=20))
    async with application.router.lifespan_context(application):
        async with client_from(application, "192.0.2.1") as owner:
            await register_and_login(owner, "target", "the-right-pass")
        for i in range(20):  # 20 addresses, one wrong guess each: under every per-address limit
            async with client_from(application, f"10.0.{i}.1") as c:
                r = await c.post("/api/auth/login", data={"username": "target", "password": f"guess-{i}-pass"})
                assert r.status_code == 401
        async with client_from(application, "10.9.9.9") as fresh:
            r = await fresh.post("/api/auth/login", data={"username": "target", "password": "the-right-pass"})
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
            # another account is not affected
            await register_and_login(fresh, "bystander", "another-right-pass")


async def test_the_address_budget_holds_across_usernames(tmp_path: Path) -> None:
    application = create_app(make_settings(tmp_path, login_failures_per_ip=10))
    async with application.router.lifespan_context(application), client_from(application, "10.1.1.1") as c:
        await register_and_login(c, "realuser", "the-right-pass")
        for i in range(10):
            r = await c.post("/api/auth/login", data={"username": f"spray{i}", "password": "whatever-pass"})
            assert r.status_code == 401
        r = await c.post("/api/auth/login", data={"username": "realuser", "password": "the-right-pass"})
        assert r.status_code == 429
        async with client_from(application, "10.2.2.2") as other:
            r = await other.post("/api/auth/login", data={"username": "realuser", "password": "the-right-pass"})
            assert r.status_code == 200


def test_expired_keys_are_swept_by_later_failures_without_a_task() -> None:
    now = [0.0]
    window = SlidingWindow(1, 60.0, clock=lambda: now[0], max_keys=1000)
    for i in range(100):
        window.hit(f"old-{i}")
    assert len(window) == 100
    now[0] = 61.0  # every old key has expired; nobody asks about them again
    for i in range(60):
        window.hit(f"new-{i}")  # each new event sweeps two of the least recent keys
    assert len(window) == 60  # 120 sweeps covered the 100 expired keys
    assert all(window.retry_after(f"new-{i}") > 0 for i in range(60))


def test_logging_keeps_httpx_at_warning() -> None:
    config = logging_config("DEBUG")
    assert config["loggers"]["httpx"]["level"] == "WARNING"
    assert config["loggers"]["httpcore"]["level"] == "WARNING"


# ------------------------------------------------------------------------------- 3. bounded hashing


async def test_logins_beyond_the_hashing_bound_get_503_with_retry_after(tmp_path: Path) -> None:
    application = create_app(make_settings(tmp_path, password_hash_concurrency=1, password_hash_queue=1))
    async with application.router.lifespan_context(application), client_from(application, "10.3.3.3") as c:
        await register_and_login(c, "busy", "the-right-pass")
        hashing = application.state.services.hashing
        answers = await asyncio.gather(
            *(c.post("/api/auth/login", data={"username": "busy", "password": "the-right-pass"}) for _ in range(8))
        )
        codes = sorted(r.status_code for r in answers)
        assert set(codes) <= {200, 503}, codes  # never a 500
        busy = [r for r in answers if r.status_code == 503]
        assert busy and 200 in codes, codes
        assert all(r.headers["Retry-After"] == "1" and "try again" in r.json()["detail"] for r in busy)
        assert hashing.admitted == 0  # every slot given back
        r = await c.post("/api/auth/login", data={"username": "busy", "password": "the-right-pass"})
        assert r.status_code == 200  # served again once the burst is over


# ------------------------------------------------------------------------------- 5. origins


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    ],
    ids=["foreign-origin", "null-origin", "cross-site-fetch", "both"],
)
async def test_a_cross_site_login_is_refused_and_sets_no_cookie(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    await register_and_login(client, "csrfvictim", "attacker-pass-1")
    for path, kwargs in (
        ("/api/auth/login", {"data": {"username": "csrfvictim", "password": "attacker-pass-1"}}),
        ("/api/auth/register", {"json": {"username": "csrfnew", "password": "attacker-pass-1"}}),
        ("/api/auth/refresh", {}),
    ):
        r = await client.post(path, headers=headers, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 403, (path, r.text)
        assert "set-cookie" not in r.headers and "Cross-site" in r.json()["detail"]
    r = await client.post("/api/auth/login", data={"username": "csrfnew", "password": "attacker-pass-1"})
    assert r.status_code == 401  # the refused register created nothing


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "https://testserver"},
        {"Origin": "https://testserver", "Sec-Fetch-Site": "same-origin"},
    ],
    ids=["no-origin", "same-origin", "same-origin-fetch"],
)
async def test_same_origin_and_non_browser_logins_work(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    await register_and_login(client, "sameorigin", "a-fine-pass-1")
    r = await client.post(
        "/api/auth/login", data={"username": "sameorigin", "password": "a-fine-pass-1"}, headers=headers
    )
    assert r.status_code == 200 and "canopy_refresh=" in r.headers["set-cookie"]


async def test_an_allowed_origin_setting_admits_that_origin(tmp_path: Path) -> None:
    application = create_app(make_settings(tmp_path, allowed_origins="http://localhost:5173, https://app.example"))
    async with application.router.lifespan_context(application), client_from(application, "10.4.4.4") as c:
        await register_and_login(c, "devuser", "a-fine-pass-1")
        for origin, code in (
            ("http://localhost:5173", 200),
            ("https://app.example", 200),
            ("https://app.example.evil", 403),
        ):
            r = await c.post(
                "/api/auth/login", data={"username": "devuser", "password": "a-fine-pass-1"}, headers={"Origin": origin}
            )
            assert r.status_code == code, origin


def test_a_foreign_origin_socket_is_refused_and_same_origin_works(tc: TestClient) -> None:
    token = login(tc, "wsorigin", "a-fine-pass-1")
    with (
        pytest.raises(WebSocketDisconnect) as info,
        tc.websocket_connect("/ws/session", headers={"Origin": "https://evil.example"}),
    ):
        pass
    assert info.value.code == 1008
    for headers in ({"Origin": "https://testserver"}, {}):
        with tc.websocket_connect("/ws/session", headers=headers) as ws:
            ws.send_json({"type": "init_session", "data": {"token": token}})
            assert ws.receive_json()["type"] == "session_ready"


# ------------------------------------------------------------------------------- 6. logout-all, password, deletion


def _socket_closed(ws: object) -> int:
    """Reads until the server closes; returns the close code."""
    while True:
        try:
            ws.receive_json()  # type: ignore[attr-defined]
        except WebSocketDisconnect as exc:
            return exc.code


@pytest.mark.parametrize("route", ["logout-all", "password"])
def test_logout_all_and_password_change_end_tokens_and_sockets(tc: TestClient, route: str) -> None:
    token = login(tc, "everywhere", "old-pass-word-1")
    refresh_cookie = tc.cookies.get("canopy_refresh")
    other_user = login(tc, "bystander", "bystander-pass-1")
    auth = {"Authorization": f"Bearer {token}"}
    with session_socket(tc, token) as (ws, _ready), session_socket(tc, other_user) as (other_ws, _):
        if route == "logout-all":
            r = tc.post("/api/auth/logout-all", headers=auth)
        else:
            r = tc.post(
                "/api/auth/password",
                headers=auth,
                json={"current_password": "old-pass-word-1", "new_password": "new-pass-word-2"},
            )
        assert r.status_code == 204, r.text
        assert _socket_closed(ws) == 1008
        other_ws.send_json({"type": "ping", "data": {}, "id": "p"})
        assert recv(other_ws)["type"] == "pong"  # other users keep their sockets
    assert tc.get("/api/auth/me", headers=auth).status_code == 401
    with pytest.raises(WebSocketDisconnect) as info, tc.websocket_connect("/ws/session") as ws2:
        ws2.send_json({"type": "init_session", "data": {"token": token}})
        ws2.receive_json()
    assert info.value.code == 1008
    tc.cookies.set("canopy_refresh", refresh_cookie or "", path="/api/auth")
    assert tc.post("/api/auth/refresh").status_code == 401
    new_password = "new-pass-word-2" if route == "password" else "old-pass-word-1"
    assert login(tc, "everywhere", new_password)


def test_password_change_checks_the_current_password_and_the_rules(tc: TestClient) -> None:
    token = login(tc, "changer", "old-pass-word-1")
    auth = {"Authorization": f"Bearer {token}"}
    r = tc.post(
        "/api/auth/password",
        headers=auth,
        json={"current_password": "wrong-pass-word", "new_password": "new-pass-word-2"},
    )
    assert r.status_code == 403
    for bad in ("        ", "changer", "CHANGER", "qwertyuiop", "password123"):
        r = tc.post(
            "/api/auth/password",
            headers=auth,
            json={"current_password": "old-pass-word-1", "new_password": bad.ljust(8)},
        )
        assert r.status_code == 422, bad
    assert tc.get("/api/auth/me", headers=auth).status_code == 200  # nothing changed
    assert login(tc, "changer", "old-pass-word-1")


async def test_deleting_a_user_evicts_their_live_sessions(tmp_path: Path) -> None:
    application = create_app(make_settings(tmp_path, offline_chunk_delay_ms=0))
    with TestClient(application, base_url="https://testserver") as tc:
        token = login(tc, "leaving", "leaving-pass-1")
        services: Services = application.state.services
        assert services.sessions is not None
        with session_socket(tc, token) as (ws, _ready):
            user_id = tc.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["id"]
            assert len(services.sessions) == 1  # the user's session, in memory
            assert tc.portal is not None
            assert tc.portal.call(accounts.delete_account, services, user_id)
            assert _socket_closed(ws) == 1008
        assert len(services.sessions) == 0  # evicted, not left for the idle timer
        with pytest.raises(WebSocketDisconnect) as info, tc.websocket_connect("/ws/session") as ws2:
            ws2.send_json({"type": "init_session", "data": {"token": token}})
            ws2.receive_json()
        assert info.value.code == 1008
        assert tc.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


# ------------------------------------------------------------------------------- 8. passwords and files


@pytest.mark.parametrize(
    "password", ["         ", "\t\t\t\t\t\t\t\t\t", "newcomer", "NewComer", "password123", "iloveyou", "qwertyuiop"]
)
async def test_weak_passwords_are_refused_at_registration(client: httpx.AsyncClient, password: str) -> None:
    r = await client.post("/api/auth/register", json={"username": "newcomer", "password": password})
    assert r.status_code == 422, r.text
    r = await client.post("/api/auth/login", data={"username": "newcomer", "password": password})
    assert r.status_code == 401  # nobody was created


async def test_database_files_are_private(
    app: FastAPI, client: httpx.AsyncClient, settings: object, tmp_path: Path
) -> None:
    await register_and_login(client, "filecheck", "file-check-pass")
    files = [p for p in tmp_path.iterdir() if p.name.startswith("canopy.db")]
    assert {p.name for p in files} >= {"canopy.db", "canopy.db-wal"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path.name, oct(path.stat().st_mode))


async def test_a_new_data_dir_is_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    application = create_app(make_settings(data))
    async with application.router.lifespan_context(application):
        assert stat.S_IMODE(data.stat().st_mode) == 0o700


async def test_an_old_world_readable_database_is_made_private(tmp_path: Path) -> None:
    (tmp_path / "canopy.db").touch(mode=0o644)
    (tmp_path / "canopy.db").chmod(0o644)
    application = create_app(make_settings(tmp_path))
    async with application.router.lifespan_context(application):
        assert stat.S_IMODE((tmp_path / "canopy.db").stat().st_mode) == 0o600


# ------------------------------------------------------------------------------- 9. caching and docs


async def test_user_data_is_never_cached(client: httpx.AsyncClient) -> None:
    token = await register_and_login(client, "nocache", "no-cache-pass")
    auth = {"Authorization": f"Bearer {token}"}
    created = await client.post("/api/sessions", json={"title": "t"}, headers=auth)
    for r in (
        await client.get("/api/auth/me", headers=auth),
        await client.get("/api/sessions", headers=auth),
        created,
        await client.get(f"/api/sessions/{created.json()['session_id']}", headers=auth),
        await client.get("/api/sessions"),
    ):
        assert r.headers.get("cache-control") == "no-store", (r.request.url, r.status_code)


@pytest.mark.parametrize(
    ("environment", "api_docs", "served"),
    [
        ("development", None, True),
        ("production", None, False),
        ("production", True, True),
        ("development", False, False),
    ],
)
async def test_openapi_docs_follow_the_environment(
    tmp_path: Path, environment: str, api_docs: bool | None, served: bool
) -> None:
    import secrets

    application = create_app(
        make_settings(tmp_path, environment=environment, api_docs=api_docs, secret_key=secrets.token_hex(32))
    )
    async with application.router.lifespan_context(application), client_from(application, "10.5.5.5") as c:
        for path in ("/api/docs", "/api/openapi.json"):
            assert ((await c.get(path)).status_code == 200) is served, path
    assert "/api/auth/logout-all" in application.openapi()["paths"]  # export scripts keep working
