"""Personal access tokens: storage and verification.

A token belongs to the user's token generation at its creation (`users.token_generation`, as access
tokens do): "log out everywhere" and a password change end every PAT too.

A personal access token (PAT, `cnp_…`) lets an outside agent act for its user on `/mcp` and
`/api/agui/…` only; it is never accepted where an access token is (the REST routes decode JWTs,
which a PAT is not), so a PAT cannot mint PATs. The secret is shown once at creation; only its
SHA-256 is stored. Deleting the row revokes it: every request looks the token up again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from canopy import db
from canopy.security import PERSONAL_TOKEN_PREFIX, hash_personal_token, new_personal_token

Scope = Literal["read", "write"]
MAX_TOKENS_PER_USER = 50
HINT_CHARS = 8  # "cnp_" and four characters of the secret: enough to tell tokens apart, useless to an attacker
# `last_used_at` is written at most this often per token, so a busy agent costs no write per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TooManyTokensError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class PersonalToken:
    id: str
    user_id: str
    name: str
    scope: Scope
    session_id: str | None
    hint: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None

    def allows(self, session_id: str, *, write: bool) -> bool:
        """Whether this token may read (or write) that session; ownership is checked separately."""
        if self.session_id is not None and self.session_id != session_id:
            return False
        return self.scope == "write" or not write


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _from_row(r: Any) -> PersonalToken:  # a SQLAlchemy Row of _COLUMNS
    created = _aware(r.created_at)
    assert created is not None
    return PersonalToken(
        id=r.id,
        user_id=r.user_id,
        name=r.name,
        scope=r.scope,
        session_id=r.session_id,
        hint=r.hint,
        created_at=created,
        expires_at=_aware(r.expires_at),
        last_used_at=_aware(r.last_used_at),
    )


_COLUMNS = (
    db.personal_tokens.c.id,
    db.personal_tokens.c.user_id,
    db.personal_tokens.c.name,
    db.personal_tokens.c.scope,
    db.personal_tokens.c.session_id,
    db.personal_tokens.c.hint,
    db.personal_tokens.c.created_at,
    db.personal_tokens.c.expires_at,
    db.personal_tokens.c.last_used_at,
)


async def create_token(
    engine: AsyncEngine, user_id: str, name: str, scope: Scope, session_id: str | None, expires_days: int | None
) -> tuple[PersonalToken, str]:
    """Stores a new token; returns it and its secret (the only time the secret exists outside the caller)."""
    pt = db.personal_tokens
    secret = new_personal_token()
    moment = datetime.now(UTC)
    token = PersonalToken(
        id=str(uuid.uuid4()),
        user_id=user_id,
        name=name,
        scope=scope,
        session_id=session_id,
        hint=secret[:HINT_CHARS],
        created_at=moment,
        expires_at=None if expires_days is None else moment + timedelta(days=expires_days),
        last_used_at=None,
    )
    async with engine.begin() as conn:
        generation = (await conn.execute(select(db.users.c.token_generation).where(db.users.c.id == user_id))).scalar()
        count = (await conn.execute(select(func.count()).select_from(pt).where(pt.c.user_id == user_id))).scalar()
        if (count or 0) >= MAX_TOKENS_PER_USER:
            raise TooManyTokensError(f"At most {MAX_TOKENS_PER_USER} tokens per user; revoke one first")
        await conn.execute(
            insert(pt).values(
                id=token.id,
                user_id=user_id,
                name=name,
                scope=scope,
                session_id=session_id,
                token_hash=hash_personal_token(secret),
                hint=token.hint,
                created_at=moment,
                expires_at=token.expires_at,
                last_used_at=None,
                generation=generation or 0,
            )
        )
    return token, secret


async def list_tokens(engine: AsyncEngine, user_id: str) -> list[PersonalToken]:
    pt = db.personal_tokens
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(*_COLUMNS).where(pt.c.user_id == user_id).order_by(pt.c.created_at, pt.c.id))
        ).all()
    return [_from_row(r) for r in rows]


async def delete_token(engine: AsyncEngine, user_id: str, token_id: str) -> bool:
    """Revokes (deletes) one of the user's tokens; False when they have no such token."""
    pt = db.personal_tokens
    async with engine.begin() as conn:
        result = await conn.execute(delete(pt).where(pt.c.id == token_id, pt.c.user_id == user_id))
    return bool(result.rowcount)


async def current_ids(engine: AsyncEngine, token_ids: set[str]) -> set[str]:
    """Those of these tokens that still exist and belong to their user's current token generation."""
    if not token_ids:
        return set()
    pt, users = db.personal_tokens, db.users
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(pt.c.id)
            .join(users, users.c.id == pt.c.user_id)
            .where(pt.c.id.in_(token_ids), pt.c.generation == users.c.token_generation)
        )
        return {row.id for row in rows}


def looks_like_personal_token(token: str) -> bool:
    return token.startswith(PERSONAL_TOKEN_PREFIX) and len(token) <= 100


async def verify_token(engine: AsyncEngine, secret: str) -> PersonalToken | None:
    """The live, unexpired token with this secret, or None. Records when it was last used."""
    if not looks_like_personal_token(secret):
        return None
    pt = db.personal_tokens
    moment = datetime.now(UTC)
    users = db.users
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(*_COLUMNS)
                .join(users, users.c.id == pt.c.user_id)
                .where(pt.c.token_hash == hash_personal_token(secret), pt.c.generation == users.c.token_generation)
            )
        ).first()
    if row is None:  # unknown, revoked, or from before the user logged out everywhere
        return None
    token = _from_row(row)
    if token.expires_at is not None and token.expires_at <= moment:
        return None
    if token.last_used_at is None or moment - token.last_used_at >= LAST_USED_RESOLUTION:
        async with engine.begin() as conn:
            await conn.execute(update(pt).where(pt.c.id == token.id).values(last_used_at=moment))
    return token
