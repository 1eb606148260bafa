"""Personal access tokens REST: create (secret shown once), list, revoke (which also ends the token's
open MCP streams and AG-UI runs, on every replica: `accounts.revoke_token`).

Every route needs a normal access token (`CurrentUser` decodes JWTs only), so a PAT cannot mint PATs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from canopy import accounts, tokens
from canopy.api.deps import CurrentUser, ServicesDep
from canopy.realtime.store import iso

router = APIRouter(prefix="/api/tokens", tags=["tokens"])

MAX_EXPIRES_DAYS = 365


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    scope: tokens.Scope
    session_id: str | None = Field(default=None, min_length=1, max_length=64)
    expires_days: int | None = Field(default=None, ge=1, le=MAX_EXPIRES_DAYS)


class TokenOut(BaseModel):
    id: str
    name: str
    scope: tokens.Scope
    session_id: str | None
    hint: str
    created_at: str
    expires_at: str | None
    last_used_at: str | None


class TokenCreated(TokenOut):
    token: str  # the secret: in this response only


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def _out(token: tokens.PersonalToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "scope": token.scope,
        "session_id": token.session_id,
        "hint": token.hint,
        "created_at": iso(token.created_at),
        "expires_at": _iso(token.expires_at),
        "last_used_at": _iso(token.last_used_at),
    }


_BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"description": "Body is not parseable"},
    413: {"description": "Body over 1 MiB (refused by the proxy)"},
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreated,
    responses={
        **_BAD_BODY,
        404: {"description": "No such session of the caller's"},
        409: {"description": "Too many tokens"},
    },
)
async def create_token(body: TokenCreate, user: CurrentUser, services: ServicesDep, response: Response) -> TokenCreated:
    if body.session_id is not None:
        assert services.sessions is not None
        meta = await services.sessions.store.meta(body.session_id)
        if meta is None or meta.user_id != user.id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Session not found")
    try:
        token, secret = await tokens.create_token(
            services.engine, user.id, body.name, body.scope, body.session_id, body.expires_days
        )
    except tokens.TooManyTokensError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    response.headers["Cache-Control"] = "no-store"
    return TokenCreated(**_out(token), token=secret)


@router.get("", response_model=list[TokenOut])
async def list_tokens(user: CurrentUser, services: ServicesDep) -> list[TokenOut]:
    return [TokenOut(**_out(t)) for t in await tokens.list_tokens(services.engine, user.id)]


@router.delete(
    "/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "Not found (or another user's)"}},
)
async def revoke_token(
    token_id: Annotated[str, Path(min_length=1, max_length=64)], user: CurrentUser, services: ServicesDep
) -> Response:
    if not await accounts.revoke_token(services, user.id, token_id):  # its open streams end too, on every replica
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Token not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
