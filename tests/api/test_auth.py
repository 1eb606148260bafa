from __future__ import annotations

import httpx
import pytest

from tests.conftest import register_and_login

# Users and refresh tokens live in the database: every test runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.backends("sqlite", "postgres")


async def refresh_with(client: httpx.AsyncClient, token: str | None) -> httpx.Response:
    client.cookies.clear()
    return await client.post("/api/auth/refresh", headers={"Cookie": f"canopy_refresh={token}"})


async def test_register_returns_the_user(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/register", json={"username": "alice", "password": "pw-first1"})
    assert r.status_code == 201
    body = r.json()
    assert body["username"] == "alice" and len(body["id"]) == 36
    assert "password" not in r.text


async def test_register_twice_is_409(client: httpx.AsyncClient) -> None:
    await client.post("/api/auth/register", json={"username": "alice", "password": "pw-first1"})
    r = await client.post("/api/auth/register", json={"username": "alice", "password": "pw-second2"})
    assert r.status_code == 409 and r.json() == {"detail": "Username already taken"}


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ab", "password": "pw-first1"},
        {"username": "a" * 33, "password": "pw-first1"},
        {"username": "bad name", "password": "pw-first1"},
        {"username": "bad/name", "password": "pw-first1"},
        {"username": "alice", "password": "short"},
        {"username": "alice", "password": "p" * 257},
        {"username": "alice"},
        {"password": "pw-first1"},
        {"username": 5, "password": "pw-first1"},
    ],
)
async def test_register_rejects_bad_input_with_422(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    r = await client.post("/api/auth/register", json=body)
    assert r.status_code == 422
    assert "detail" in r.json()
    assert "pw-first1" not in r.text  # inputs are never echoed back


async def test_register_accepts_the_edges(client: httpx.AsyncClient) -> None:
    for name, pw in (("abc", "p" * 8), ("A_b.c-" + "x" * 26, "p" * 256)):
        r = await client.post("/api/auth/register", json={"username": name, "password": pw})
        assert r.status_code == 201, r.text


async def test_login_sets_a_strict_refresh_cookie(client: httpx.AsyncClient) -> None:
    await client.post("/api/auth/register", json={"username": "alice", "password": "pw-first1"})
    r = await client.post("/api/auth/login", data={"username": "alice", "password": "pw-first1"})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800 and body["access_token"]
    cookie = r.headers["set-cookie"].lower()
    for flag in ("httponly", "secure", "samesite=strict", "path=/api/auth"):
        assert flag in cookie


async def test_login_bad_credentials_same_answer_for_unknown_users(client: httpx.AsyncClient) -> None:
    await client.post("/api/auth/register", json={"username": "alice", "password": "pw-first1"})
    wrong = await client.post("/api/auth/login", data={"username": "alice", "password": "pw-second2"})
    unknown = await client.post("/api/auth/login", data={"username": "nobody", "password": "pw-second2"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_login_requires_the_form(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/login", json={"username": "alice", "password": "pw-first1"})
    assert r.status_code == 422


async def test_me_with_and_without_token(client: httpx.AsyncClient) -> None:
    token = await register_and_login(client)
    r = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["username"] == "alice"
    assert (await client.get("/api/auth/me")).status_code == 401
    bad = await client.get("/api/auth/me", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401 and bad.json() == {"detail": "Not authenticated"}


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    await register_and_login(client)
    first = client.cookies.get("canopy_refresh")
    r = await client.post("/api/auth/refresh")
    assert r.status_code == 200 and r.json()["access_token"]
    second = client.cookies.get("canopy_refresh")
    assert second and second != first
    # Replaying the first (already used) token: refused, and the whole family is revoked.
    assert (await refresh_with(client, first)).status_code == 401
    assert (await refresh_with(client, second)).status_code == 401


async def test_refresh_without_cookie_or_with_garbage_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/auth/refresh")).status_code == 401
    assert (await refresh_with(client, "garbage")).status_code == 401


async def test_logout_revokes_and_clears_the_cookie(client: httpx.AsyncClient) -> None:
    await register_and_login(client)
    token = client.cookies.get("canopy_refresh")
    r = await client.post("/api/auth/logout")
    assert r.status_code == 204
    assert 'canopy_refresh=""' in r.headers["set-cookie"] or "max-age=0" in r.headers["set-cookie"].lower()
    assert (await refresh_with(client, token)).status_code == 401


async def test_login_throttle_after_five_failures(client: httpx.AsyncClient) -> None:
    await client.post("/api/auth/register", json={"username": "alice", "password": "pw-first1"})
    for _ in range(5):
        r = await client.post("/api/auth/login", data={"username": "alice", "password": "wrong-pass"})
        assert r.status_code == 401
    r = await client.post("/api/auth/login", data={"username": "alice", "password": "pw-first1"})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    # Another username from the same address is not affected.
    await client.post("/api/auth/register", json={"username": "bob", "password": "pw-first1"})
    assert (await client.post("/api/auth/login", data={"username": "bob", "password": "pw-first1"})).status_code == 200


async def test_health_ready_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/healthz")).json() == {"status": "ok"}
    assert (await client.get("/api/readyz")).json() == {"status": "ready"}
    await client.post("/api/auth/login", data={"username": "ghost", "password": "pw-first1"})
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'canopy_http_requests_total{method="GET",route="/api/healthz",status="200"} 1.0' in r.text
    assert 'canopy_logins_total{outcome="failure"} 1.0' in r.text


async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/nope")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


async def test_request_id_is_returned(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert len((await client.get("/api/healthz")).headers["x-request-id"]) == 32
