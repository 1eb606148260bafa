"""Personal access tokens: REST, storage (hashed), scopes, expiry, and where a PAT is (not) accepted."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from canopy import tokens
from canopy.config import Settings
from tests.conftest import register_and_login


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_token(client: httpx.AsyncClient, access: str, **body: object) -> dict[str, object]:
    payload: dict[str, object] = {"name": "agent", "scope": "write", **body}
    r = await client.post("/api/tokens", json=payload, headers=bearer(access))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_create_shows_the_secret_once_and_stores_only_its_hash(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    access = await register_and_login(client)
    r = await client.post(
        "/api/tokens", json={"name": "Claude", "scope": "read", "expires_days": 30}, headers=bearer(access)
    )
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    created = r.json()
    secret = created["token"]
    assert secret.startswith("cnp_") and len(secret) > 40
    assert created["name"] == "Claude" and created["scope"] == "read" and created["session_id"] is None
    assert created["hint"] == secret[:8] and created["last_used_at"] is None
    expires = datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)

    listed = (await client.get("/api/tokens", headers=bearer(access))).json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0] and secret not in str(listed)

    with sqlite3.connect(settings.data_dir / "canopy.db") as db:
        (stored,) = db.execute("SELECT token_hash FROM personal_tokens").fetchone()
        dump = "\n".join(db.iterdump())
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in dump


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "scope": "read"},
        {"name": "x" * 101, "scope": "read"},
        {"name": "a", "scope": "admin"},
        {"name": "a"},
        {"name": "a", "scope": "read", "expires_days": 0},
        {"name": "a", "scope": "read", "expires_days": 366},
        {"name": "a", "scope": "read", "extra": 1},
    ],
)
async def test_bad_bodies_get_422_and_create_nothing(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    access = await register_and_login(client)
    r = await client.post("/api/tokens", json=body, headers=bearer(access))
    assert r.status_code == 422, r.text
    assert (await client.get("/api/tokens", headers=bearer(access))).json() == []


async def test_a_session_limit_must_name_one_of_the_callers_sessions(client: httpx.AsyncClient) -> None:
    alice = await register_and_login(client, "alice")
    bob = await register_and_login(client, "bob")
    bobs = (await client.post("/api/sessions", json={}, headers=bearer(bob))).json()["session_id"]
    for session_id in (bobs, "no-such-session"):
        r = await client.post(
            "/api/tokens", json={"name": "a", "scope": "read", "session_id": session_id}, headers=bearer(alice)
        )
        assert r.status_code == 404
    own = (await client.post("/api/sessions", json={}, headers=bearer(alice))).json()["session_id"]
    created = await make_token(client, alice, session_id=own)
    assert created["session_id"] == own


async def test_revoke_is_immediate_and_only_for_the_owner(client: httpx.AsyncClient, app: FastAPI) -> None:
    alice = await register_and_login(client, "alice")
    bob = await register_and_login(client, "bob")
    created = await make_token(client, alice)
    engine = app.state.services.engine
    assert await tokens.verify_token(engine, str(created["token"])) is not None
    assert (await client.delete(f"/api/tokens/{created['id']}", headers=bearer(bob))).status_code == 404
    assert await tokens.verify_token(engine, str(created["token"])) is not None
    assert (await client.delete(f"/api/tokens/{created['id']}", headers=bearer(alice))).status_code == 204
    assert await tokens.verify_token(engine, str(created["token"])) is None
    assert (await client.delete(f"/api/tokens/{created['id']}", headers=bearer(alice))).status_code == 404
    assert (await client.get("/api/tokens", headers=bearer(alice))).json() == []


async def test_a_pat_is_not_an_access_token(client: httpx.AsyncClient) -> None:
    """A PAT authenticates only /mcp and /api/agui: not the REST API, so it cannot mint PATs either."""
    access = await register_and_login(client)
    secret = str((await make_token(client, access))["token"])
    for method, path, body in (
        ("POST", "/api/tokens", {"name": "b", "scope": "write"}),
        ("GET", "/api/tokens", None),
        ("GET", "/api/sessions", None),
        ("GET", "/api/auth/me", None),
    ):
        r = await client.request(method, path, json=body, headers=bearer(secret))
        assert r.status_code == 401, (path, r.text)
    assert len((await client.get("/api/tokens", headers=bearer(access))).json()) == 1


async def test_verify_rejects_expired_unknown_and_malformed_tokens_and_records_use(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    access = await register_and_login(client)
    created = await make_token(client, access, expires_days=1)
    secret = str(created["token"])
    engine = app.state.services.engine
    token = await tokens.verify_token(engine, secret)
    assert token is not None and token.id == created["id"] and token.scope == "write"
    listed = (await client.get("/api/tokens", headers=bearer(access))).json()
    assert listed[0]["last_used_at"] is not None
    for bad in ("", "cnp_", secret + "x", secret[:-1], "Bearer " + secret, "cnp_" + "a" * 200, access):
        assert await tokens.verify_token(engine, bad) is None
    past = datetime.now(UTC) - timedelta(seconds=1)
    db_path: Path = settings.data_dir / "canopy.db"
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE personal_tokens SET expires_at = ?", (past.isoformat(sep=" "),))
    assert await tokens.verify_token(engine, secret) is None


async def test_scopes_and_session_limits(client: httpx.AsyncClient, app: FastAPI) -> None:
    access = await register_and_login(client)
    engine = app.state.services.engine
    read = await tokens.verify_token(engine, str((await make_token(client, access, scope="read"))["token"]))
    limited = await tokens.verify_token(
        engine,
        str(
            (
                await make_token(
                    client,
                    access,
                    session_id=(await client.post("/api/sessions", json={}, headers=bearer(access))).json()[
                        "session_id"
                    ],
                )
            )["token"]
        ),
    )
    assert read is not None and limited is not None and limited.session_id is not None
    assert read.allows("s1", write=False) and not read.allows("s1", write=True)
    assert limited.allows(limited.session_id, write=True) and not limited.allows("other", write=False)


async def test_tokens_per_user_are_capped(client: httpx.AsyncClient) -> None:
    access = await register_and_login(client)
    for _ in range(tokens.MAX_TOKENS_PER_USER):
        await make_token(client, access)
    r = await client.post("/api/tokens", json={"name": "c", "scope": "read"}, headers=bearer(access))
    assert r.status_code == 409 and f"At most {tokens.MAX_TOKENS_PER_USER}" in r.json()["detail"]
    assert len((await client.get("/api/tokens", headers=bearer(access))).json()) == tokens.MAX_TOKENS_PER_USER


async def test_deleting_a_user_session_deletes_its_limited_tokens(client: httpx.AsyncClient) -> None:
    access = await register_and_login(client)
    session_id = (await client.post("/api/sessions", json={}, headers=bearer(access))).json()["session_id"]
    await make_token(client, access, session_id=session_id)
    unlimited = await make_token(client, access)
    assert (await client.delete(f"/api/sessions/{session_id}", headers=bearer(access))).status_code == 204
    assert [t["id"] for t in (await client.get("/api/tokens", headers=bearer(access))).json()] == [unlimited["id"]]


async def test_logging_out_everywhere_ends_personal_tokens(client: httpx.AsyncClient, app: FastAPI) -> None:
    access = await register_and_login(client)
    secret = str((await make_token(client, access))["token"])
    engine = app.state.services.engine
    assert await tokens.verify_token(engine, secret) is not None
    r = await client.post("/api/auth/logout-all", headers=bearer(access))
    assert r.status_code == 204, r.text
    assert await tokens.verify_token(engine, secret) is None
    login = await client.post("/api/auth/login", data={"username": "alice", "password": "correct horse"})
    fresh = login.json()["access_token"]  # a new login, the new generation: its new tokens work
    assert await tokens.verify_token(engine, str((await make_token(client, fresh))["token"])) is not None
