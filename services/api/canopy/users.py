"""User and refresh-token storage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update
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
    token_generation: int = 0


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


_USER_COLUMNS = (db.users.c.id, db.users.c.username, db.users.c.token_generation, db.users.c.password_hash)


async def find_by_username(engine: AsyncEngine, username: str) -> StoredUser | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(*_USER_COLUMNS).where(db.users.c.username == username))).first()
    return None if row is None else StoredUser(User(row.id, row.username, row.token_generation), row.password_hash)


async def find_by_id(engine: AsyncEngine, user_id: str) -> StoredUser | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(*_USER_COLUMNS).where(db.users.c.id == user_id))).first()
    return None if row is None else StoredUser(User(row.id, row.username, row.token_generation), row.password_hash)


# Built once: every REST request and every socket's authentication runs it (no password hash read).
_USER_BY_ID = select(db.users.c.id, db.users.c.username, db.users.c.token_generation).where(
    db.users.c.id == bindparam("user_id")
)


async def get_user(engine: AsyncEngine, user_id: str) -> User | None:
    async with engine.connect() as conn:
        row = (await conn.execute(_USER_BY_ID, {"user_id": user_id})).first()
    return None if row is None else User(row.id, row.username, row.token_generation)


async def current_user(engine: AsyncEngine, user_id: str, generation: int) -> User | None:
    """The user, if they exist and the token's generation is theirs (not ended by logout-all or a
    password change); None otherwise."""
    user = await get_user(engine, user_id)
    return user if user is not None and user.token_generation == generation else None


async def generations(engine: AsyncEngine, user_ids: set[str]) -> dict[str, int]:
    """The current token generation of each of these users that still exists."""
    if not user_ids:
        return {}
    u = db.users
    async with engine.connect() as conn:
        rows = await conn.execute(select(u.c.id, u.c.token_generation).where(u.c.id.in_(user_ids)))
        return {row.id: row.token_generation for row in rows}


async def end_all_tokens(engine: AsyncEngine, user_id: str, password_hash: str | None = None) -> int:
    """Bumps the user's token generation (older access tokens stop working) and revokes every refresh
    token; with `password_hash`, also sets the new password, in the same transaction. Returns the new
    generation."""
    values: dict[str, object] = {"token_generation": db.users.c.token_generation + 1}
    if password_hash is not None:
        values["password_hash"] = password_hash
    async with engine.begin() as conn:
        await conn.execute(update(db.users).where(db.users.c.id == user_id).values(**values))
        await conn.execute(update(db.refresh_tokens).where(db.refresh_tokens.c.user_id == user_id).values(revoked=True))
        generation = (await conn.execute(select(db.users.c.token_generation).where(db.users.c.id == user_id))).scalar()
    return int(generation or 0)


async def delete_user(engine: AsyncEngine, user_id: str) -> bool:
    """Deletes the user, their refresh tokens and their sessions (foreign keys cascade)."""
    async with engine.begin() as conn:
        result = await conn.execute(delete(db.users).where(db.users.c.id == user_id))
    return result.rowcount == 1


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
