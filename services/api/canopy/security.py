"""Passwords, access tokens and refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jose import JWTError, jwt
from passlib.context import CryptContext

ALGORITHM = "HS256"
_passwords = CryptContext(schemes=["argon2"], deprecated="auto")
# Unknown users are verified against this so a login takes as long whether or not the user exists.
_DUMMY_HASH = _passwords.hash(secrets.token_urlsafe(16))


class InvalidTokenError(Exception):
    pass


def hash_password(password: str) -> str:
    return str(_passwords.hash(password))


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _passwords.verify(password, _DUMMY_HASH)
        return False
    return bool(_passwords.verify(password, password_hash))


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    expires_at: datetime
    token_id: str
    generation: int = 0  # the user's token generation when issued; a bumped one refuses the token


def create_access_token(user_id: str, secret: str, minutes: int, generation: int = 0) -> tuple[str, int]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": user_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=minutes)).timestamp()),
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "gen": generation,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), minutes * 60


def decode_access_token(token: str, secret: str) -> AccessClaims:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require_exp": True})
    except JWTError as exc:
        raise InvalidTokenError("invalid token") from exc
    sub, exp, jti, gen = claims.get("sub"), claims.get("exp"), claims.get("jti"), claims.get("gen", 0)
    if claims.get("typ") != "access" or not isinstance(sub, str) or not isinstance(exp, int):
        raise InvalidTokenError("invalid token")
    if not isinstance(gen, int) or isinstance(gen, bool):
        raise InvalidTokenError("invalid token")
    return AccessClaims(sub, datetime.fromtimestamp(exp, UTC), str(jti), gen)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """Refresh tokens are high-entropy random strings, so a plain SHA-256 is the right store."""
    return hashlib.sha256(token.encode()).hexdigest()


PERSONAL_TOKEN_PREFIX = "cnp_"  # noqa: S105 - a public prefix, not a secret


def new_personal_token() -> str:
    """A personal access token: the `cnp_` prefix (so scanners and people recognise it) and 256 random bits."""
    return PERSONAL_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_personal_token(token: str) -> str:
    """Like refresh tokens, high-entropy: stored as a SHA-256, compared by looking the hash up."""
    return hashlib.sha256(token.encode()).hexdigest()
