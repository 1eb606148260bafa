"""Auth routes: register, login, refresh, logout, me."""

from __future__ import annotations

import logging
import math
import re
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Cookie, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from canopy import users
from canopy.api.deps import CurrentUser, ServicesDep
from canopy.security import create_access_token, hash_password, verify_password
from canopy.services import Services

log = logging.getLogger("canopy.auth")
# nginx rate-limits every /api/auth/ route per client address and answers a JSON 429 itself.
router = APIRouter(prefix="/api/auth", tags=["auth"],
                   responses={429: {"description": "Too many requests (rate limit of the proxy)"}})

# Bodies over nginx's client_max_body_size (1 MiB) get nginx's JSON 413.
BAD_BODY: dict[int | str, dict[str, Any]] = {400: {"description": "Body is not parseable"},
                                             413: {"description": "Body over 1 MiB (refused by the proxy)"}}

REFRESH_COOKIE = "canopy_refresh"
REFRESH_PATH = "/api/auth"
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")


class Credentials(BaseModel):
    username: str = Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=8, max_length=256)


class UserOut(BaseModel):
    id: str
    username: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


def _set_refresh_cookie(response: Response, token: str, days: int) -> None:
    response.set_cookie(
        REFRESH_COOKIE, token, max_age=days * 86400, path=REFRESH_PATH,
        httponly=True, secure=True, samesite="strict",
    )


def _token_response(services: Services, user_id: str, refresh: str, response: Response) -> TokenOut:
    settings = services.settings
    token, expires_in = create_access_token(
        user_id, settings.secret_key.get_secret_value(), settings.access_token_minutes
    )
    _set_refresh_cookie(response, refresh, settings.refresh_token_days)
    response.headers["Cache-Control"] = "no-store"
    return TokenOut(access_token=token, expires_in=expires_in)


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserOut,
             responses={**BAD_BODY, 409: {"description": "Username taken"}})
async def register(body: Credentials, services: ServicesDep) -> UserOut:
    password_hash = await to_thread.run_sync(hash_password, body.password)
    try:
        user = await users.create_user(services.engine, body.username, password_hash)
    except users.UsernameTakenError:
        raise HTTPException(status.HTTP_409_CONFLICT, "Username already taken") from None
    log.info("registered user %s", user.id)
    return UserOut(id=user.id, username=user.username)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", response_model=TokenOut,
             responses={**BAD_BODY, 401: {"description": "Bad credentials"}, 429: {"description": "Throttled"}})
async def login(
    request: Request, response: Response, services: ServicesDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    key = (form.username.lower(), _client_ip(request))
    wait = services.login_failures.retry_after(key)
    if wait > 0:
        services.metrics.login_throttled.inc()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "Too many failed logins; try again later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    # Bounded before hashing so an oversized password cannot burn CPU; still verified against the dummy hash.
    stored = None
    if USERNAME_PATTERN.match(form.username) and len(form.password) <= 256:
        stored = await users.find_by_username(services.engine, form.username)
    ok = await to_thread.run_sync(
        verify_password, form.password[:256], stored.password_hash if stored else None
    )
    if not ok or stored is None:
        services.login_failures.hit(key)
        services.metrics.logins.labels("failure").inc()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "Incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    services.login_failures.reset(key)
    services.metrics.logins.labels("success").inc()
    refresh = await users.issue_refresh_token(services.engine, stored.user.id, services.settings.refresh_token_days)
    return _token_response(services, stored.user.id, refresh, response)


@router.post("/refresh", response_model=TokenOut, responses={401: {"description": "No valid refresh cookie"}})
async def refresh(
    response: Response, services: ServicesDep,
    canopy_refresh: Annotated[str | None, Cookie(max_length=256)] = None,
) -> TokenOut:
    if not canopy_refresh:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "No refresh token")
    try:
        user_id, new_token = await users.rotate_refresh_token(
            services.engine, canopy_refresh, services.settings.refresh_token_days
        )
    except users.RefreshRejectedError as exc:
        log.warning("refresh rejected: %s", exc)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Invalid refresh token") from None
    return _token_response(services, user_id, new_token, response)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    services: ServicesDep, canopy_refresh: Annotated[str | None, Cookie(max_length=256)] = None
) -> Response:
    if canopy_refresh:
        await users.revoke_refresh_family(services.engine, canopy_refresh)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_PATH, httponly=True, secure=True, samesite="strict")
    return response


@router.get("/me", response_model=UserOut, responses={401: {"description": "Not authenticated"}})
async def me(user: CurrentUser) -> UserOut:
    return UserOut(id=user.id, username=user.username)
