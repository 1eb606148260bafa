from __future__ import annotations

import time

import pytest
from jose import jwt

from canopy.security import (
    InvalidTokenError,
    create_access_token,
    decode_access_token,
    hash_password,
    hash_refresh_token,
    new_refresh_token,
    verify_password,
)

SECRET = "s" * 40


def test_password_hash_is_argon2_and_verifies() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2")
    assert verify_password("correct horse", h)
    assert not verify_password("wrong horse", h)
    assert not verify_password("anything", None)


def test_access_token_round_trip_and_claims() -> None:
    token, expires_in = create_access_token("user-1", SECRET, 30)
    assert expires_in == 1800
    claims = jwt.get_unverified_claims(token)
    assert {"sub", "exp", "iat", "jti"} <= set(claims)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert decode_access_token(token, SECRET).user_id == "user-1"


def test_token_signed_with_another_key_is_rejected() -> None:
    token, _ = create_access_token("user-1", "x" * 40, 30)
    with pytest.raises(InvalidTokenError):
        decode_access_token(token, SECRET)


def test_expired_token_is_rejected() -> None:
    now = int(time.time())
    token = jwt.encode({"sub": "u", "iat": now - 100, "exp": now - 10, "jti": "j", "typ": "access"}, SECRET, "HS256")
    with pytest.raises(InvalidTokenError):
        decode_access_token(token, SECRET)


def test_alg_none_and_other_algorithms_are_rejected() -> None:
    import base64
    import json

    def b64(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    payload = {"sub": "u", "exp": int(time.time()) + 60, "jti": "j", "typ": "access"}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."
    with pytest.raises(InvalidTokenError):
        decode_access_token(unsigned, SECRET)
    hs512 = jwt.encode(payload, SECRET, algorithm="HS512")
    with pytest.raises(InvalidTokenError):
        decode_access_token(hs512, SECRET)


def test_tampered_payload_is_rejected() -> None:
    token, _ = create_access_token("user-1", SECRET, 30)
    header, _payload, sig = token.split(".")
    forged, _ = create_access_token("user-2", SECRET, 30)
    with pytest.raises(InvalidTokenError):
        decode_access_token(f"{header}.{forged.split('.')[1]}.{sig}", SECRET)


def test_refresh_tokens_are_random_and_stored_hashed() -> None:
    a, b = new_refresh_token(), new_refresh_token()
    assert a != b and len(a) >= 40
    assert hash_refresh_token(a) != a and len(hash_refresh_token(a)) == 64
