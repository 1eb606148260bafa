"""User and refresh-token storage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from canopy import db
from canopy.security import hash_refresh_token, new_refresh_token


class UsernameTakenError(Exception):
    pass


class RefreshRejectedError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str


@dataclass(frozen=True, slots=True)
class StoredUser:
    user: User
    password_hash: str


async def create_user(engine: AsyncEngine, username: str, password_hash: str) -> User:
    user = User(str(uuid.uuid4()), username)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(db.users).values(
                    id=user.id, username=username, password_hash=password_hash, created_at=datetime.now(UTC)
                )
            )
    except IntegrityError as exc:
        raise UsernameTakenError(username) from exc
    return user


async def find_by_username(engine: AsyncEngine, username: str) -> StoredUser | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(db.users.c.id, db.users.c.username, db.users.c.password_hash).where(
                    db.users.c.username == username
                )
            )
        ).first()
    return None if row is None else StoredUser(User(row.id, row.username), row.password_hash)


async def get_user(engine: AsyncEngine, user_id: str) -> User | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(db.users.c.id, db.users.c.username).where(db.users.c.id == user_id))
        ).first()
    return None if row is None else User(row.id, row.username)


async def _insert_refresh_token(conn: AsyncConnection, user_id: str, days: int, family_id: str) -> str:
    token = new_refresh_token()
    now = datetime.now(UTC)
    await conn.execute(
        insert(db.refresh_tokens).values(
            id=str(uuid.uuid4()),
            user_id=user_id,
            family_id=family_id,
            token_hash=hash_refresh_token(token),
            created_at=now,
            expires_at=now + timedelta(days=days),
            revoked=False,
        )
    )
    return token


async def issue_refresh_token(engine: AsyncEngine, user_id: str, days: int) -> str:
    """Starts a new token family (one per login)."""
    async with engine.begin() as conn:
        return await _insert_refresh_token(conn, user_id, days, str(uuid.uuid4()))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def rotate_refresh_token(engine: AsyncEngine, token: str, days: int) -> tuple[str, str]:
    """Consumes a refresh token and returns (user_id, new token) in the same family.

    A token presented a second time means it leaked: the whole family is revoked.
    """
    rt = db.refresh_tokens
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        row = (await conn.execute(select(rt).where(rt.c.token_hash == hash_refresh_token(token)))).first()
        if row is None:
            raise RefreshRejectedError("unknown refresh token")
        if row.used_at is not None or row.revoked:
            await conn.execute(update(rt).where(rt.c.family_id == row.family_id).values(revoked=True))
        else:
            if _aware(row.expires_at) <= now:
                raise RefreshRejectedError("expired refresh token")
            claimed = await conn.execute(
                update(rt).where(rt.c.id == row.id, rt.c.used_at.is_(None)).values(used_at=now)
            )
            if claimed.rowcount != 1:
                raise RefreshRejectedError("refresh token already used")
            return row.user_id, await _insert_refresh_token(conn, row.user_id, days, row.family_id)
    # Reached only on reuse, outside the block so the family's revocation is committed before we refuse.
    raise RefreshRejectedError("refresh token reused; family revoked")


async def revoke_refresh_family(engine: AsyncEngine, token: str) -> None:
    rt = db.refresh_tokens
    async with engine.begin() as conn:
        family = (
            await conn.execute(select(rt.c.family_id).where(rt.c.token_hash == hash_refresh_token(token)))
        ).scalar()
        if family is not None:
            await conn.execute(update(rt).where(rt.c.family_id == family).values(revoked=True))
