"""Auth routes: register, login, refresh, logout, logout-all, password change, me."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Cookie, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field, model_validator

from canopy import accounts, users
from canopy.api.deps import CurrentUser, ServicesDep
from canopy.loginthrottle import USERNAME_PATTERN
from canopy.passwords import HASH_RETRY_AFTER_SECONDS, HashBusyError, password_problem
from canopy.security import create_access_token, hash_password, verify_password
from canopy.services import Services

T = TypeVar("T")

log = logging.getLogger("canopy.auth")
# nginx rate-limits every /api/auth/ route per client address and answers a JSON 429 itself.
router = APIRouter(
    prefix="/api/auth", tags=["auth"], responses={429: {"description": "Too many requests (rate limit of the proxy)"}}
)

# Bodies over nginx's client_max_body_size (1 MiB) get nginx's JSON 413.
BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"description": "Body is not parseable"},
    413: {"description": "Body over 1 MiB (refused by the proxy)"},
    503: {"description": "Too many password hashes in progress; retry after Retry-After seconds"},
}

# Every POST under /api/auth/ passes canopy.origins first.
CROSS_SITE: dict[int | str, dict[str, Any]] = {
    403: {"description": "Cross-site browser request (Origin not the app's own)"},
}

REFRESH_COOKIE = "canopy_refresh"
REFRESH_PATH = "/api/auth"


class Credentials(BaseModel):
    username: str = Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=8, max_length=256)

    @model_validator(mode="after")
    def _acceptable_password(self) -> Credentials:
        problem = password_problem(self.username, self.password)
        if problem is not None:
            raise ValueError(problem)
        return self


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class UserOut(BaseModel):
    id: str
    username: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


def _set_refresh_cookie(response: Response, token: str, days: int) -> None:
    response.set_cookie(
        REFRESH_COOKIE,
        token,
        max_age=days * 86400,
        path=REFRESH_PATH,
        httponly=True,
        secure=True,
        samesite="strict",
    )


async def _hash(services: Services, operation: str, func: Callable[..., T], *args: object) -> T:
    """Runs an argon2 hash or verify within the concurrency bound, or answers 503. Each one run is counted
    in `canopy_password_hashes_total{operation}`: the cost of logins, and proof of what never got here."""
    try:
        result = await services.hashing.run(func, *args)
    except HashBusyError:
        services.metrics.rate_limited.labels("password_hashing").inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Too many logins in progress; try again shortly",
            headers={"Retry-After": str(HASH_RETRY_AFTER_SECONDS)},
        ) from None
    services.metrics.password_hashes.labels(operation).inc()
    return result


def _token_response(services: Services, user: users.User, refresh: str, response: Response) -> TokenOut:
    settings = services.settings
    token, expires_in = create_access_token(
        user.id, settings.secret_key.get_secret_value(), settings.access_token_minutes, user.token_generation
    )
    _set_refresh_cookie(response, refresh, settings.refresh_token_days)
    response.headers["Cache-Control"] = "no-store"
    return TokenOut(access_token=token, expires_in=expires_in)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses={**BAD_BODY, **CROSS_SITE, 409: {"description": "Username taken"}},
)
async def register(body: Credentials, services: ServicesDep) -> UserOut:
    password_hash = await _hash(services, "hash", hash_password, body.password)
    try:
        user = await users.create_user(services.engine, body.username, password_hash)
    except users.UsernameTakenError:
        raise HTTPException(status.HTTP_409_CONFLICT, "Username already taken") from None
    log.info("registered user %s", user.id)
    return UserOut(id=user.id, username=user.username)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/login",
    response_model=TokenOut,
    responses={**BAD_BODY, **CROSS_SITE, 401: {"description": "Bad credentials"}, 429: {"description": "Throttled"}},
)
async def login(
    request: Request,
    response: Response,
    services: ServicesDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    throttle, ip = services.login_failures, _client_ip(request)
    wait = throttle.retry_after(form.username, ip)
    if wait > 0:
        services.metrics.login_throttled.inc()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "Too many failed logins; try again later",
            headers={"Retry-After": str(wait)},
        )
    stored, ok = None, False
    if USERNAME_PATTERN.match(form.username):
        stored = await users.find_by_username(services.engine, form.username)
        # Bounded before hashing so an oversized password cannot burn CPU; still verified against the dummy
        # hash, so an unknown user takes as long as a known one. A name that cannot exist skips both.
        ok = await _hash(
            services,
            "verify",
            verify_password,
            form.password[:256],
            stored.password_hash if stored and len(form.password) <= 256 else None,
        )
    if stored is None or not ok:
        throttle.failed(form.username, ip)
        services.metrics.logins.labels("failure").inc()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    throttle.succeeded(form.username, ip)
    services.metrics.logins.labels("success").inc()
    refresh = await users.issue_refresh_token(services.engine, stored.user.id, services.settings.refresh_token_days)
    return _token_response(services, stored.user, refresh, response)


@router.post(
    "/refresh", response_model=TokenOut, responses={**CROSS_SITE, 401: {"description": "No valid refresh cookie"}}
)
async def refresh(
    response: Response,
    services: ServicesDep,
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
    user = await users.get_user(services.engine, user_id)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Invalid refresh token")
    return _token_response(services, user, new_token, response)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=CROSS_SITE)
async def logout(
    services: ServicesDep, canopy_refresh: Annotated[str | None, Cookie(max_length=256)] = None
) -> Response:
    if canopy_refresh:
        await users.revoke_refresh_family(services.engine, canopy_refresh)
    return _cleared_cookie_response()


def _cleared_cookie_response() -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_PATH, httponly=True, secure=True, samesite="strict")
    return response


@router.post(
    "/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**CROSS_SITE, 401: {"description": "Not authenticated"}},
)
async def logout_all(user: CurrentUser, services: ServicesDep) -> Response:
    """Ends every login of the caller: access tokens, refresh tokens and open sockets."""
    await accounts.end_all_logins(services, user.id)
    log.info("user %s logged out everywhere", user.id)
    return _cleared_cookie_response()


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **BAD_BODY,
        401: {"description": "Not authenticated"},
        403: {"description": "Current password is wrong, or a cross-site browser request"},
        422: {"description": "New password refused (too short, common, or the username)"},
    },
)
async def change_password(body: PasswordChange, user: CurrentUser, services: ServicesDep) -> Response:
    """Sets a new password and ends every login of the caller (this one too: log in again)."""
    problem = password_problem(user.username, body.new_password)
    if problem is not None:
        raise HTTPException(422, [{"loc": ["body", "new_password"], "msg": problem, "type": "value_error"}])
    stored = await users.find_by_id(services.engine, user.id)
    if stored is None or not await _hash(
        services, "verify", verify_password, body.current_password, stored.password_hash
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Current password is wrong")
    new_hash = await _hash(services, "hash", hash_password, body.new_password)
    await accounts.end_all_logins(services, user.id, new_hash)
    log.info("user %s changed their password", user.id)
    return _cleared_cookie_response()


@router.get("/me", response_model=UserOut, responses={401: {"description": "Not authenticated"}})
async def me(user: CurrentUser) -> UserOut:
    return UserOut(id=user.id, username=user.username)
