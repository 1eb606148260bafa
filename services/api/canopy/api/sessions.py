"""Sessions REST: the caller's own workspaces. Another user's session is a 404.

Errors are `CanopyError`s, raised as they come: the app's one handler (`canopy.main`) turns them
into responses. Changes go through the live session's own API, which takes its lock.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from canopy.api.deps import CurrentUser, ServicesDep
from canopy.quotas import QuotaError
from canopy.realtime.changes import Actor
from canopy.realtime.manager import SessionManager
from canopy.realtime.session import LiveSession
from canopy.realtime.store import iso

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

SessionId = Annotated[str, Path(min_length=1, max_length=64)]
# No NUL: PostgreSQL's text cannot store one; refused on SQLite too, so both backends behave alike.
Title = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title | None = None


class SessionRename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title


class SessionSummary(BaseModel):
    session_id: str
    title: str
    updated_at: str
    node_count: int


class SessionState(BaseModel):
    session_id: str
    title: str
    tree: dict[str, Any]
    rev: int
    history: list[dict[str, Any]]


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not found (or another user's)"}}
_BAD_BODY: dict[int | str, dict[str, Any]] = {400: {"description": "Body is not parseable"},
                                              413: {"description": "Body over 1 MiB (refused by the proxy)"}}
_QUOTA: dict[int | str, dict[str, Any]] = {
    409: {"description": "The user has MAX_SESSIONS_PER_USER sessions already"},
    429: {"description": "Over SESSIONS_CREATED_PER_MINUTE (Retry-After says when to try again)"},
}


def _manager(services: ServicesDep) -> SessionManager:
    assert services.sessions is not None
    return services.sessions


async def _state(live: LiveSession, status_code: int = 200) -> Response:
    """A SessionState body serialised straight from the tree's live view: a 100k-node tree goes out in
    milliseconds, where validating it through the pydantic model took about half a second."""
    body = orjson.dumps(await live.state())  # at once: the view is valid only until the next await
    return Response(body, status_code=status_code, media_type="application/json")


@router.get("", response_model=list[SessionSummary])
async def list_sessions(user: CurrentUser, services: ServicesDep) -> list[SessionSummary]:
    metas = await _manager(services).store.list_for(user.id)
    return [SessionSummary(session_id=m.id, title=m.title, updated_at=iso(m.updated_at), node_count=m.node_count)
            for m in metas]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SessionState,
             responses={**_BAD_BODY, **_QUOTA})
async def create_session(user: CurrentUser, services: ServicesDep, body: SessionCreate | None = None) -> Response:
    manager, quotas = _manager(services), services.quotas
    assert quotas is not None
    async with quotas.creating:  # count and create as one step: two requests cannot both take the last place
        try:
            quotas.check_session_create(user.id, await manager.store.count_for(user.id))
        except QuotaError as exc:
            budget = "sessions_per_user" if exc.code == 409 else "session_creation_rate"
            services.metrics.budget_refusals_of(budget).inc()
            headers = {"Retry-After": str(int(exc.retry_after) + 1)} if exc.code == 429 else None
            raise HTTPException(exc.code, exc.message, headers=headers) from None
        live = await manager.create(user.id, body.title if body else None)
        quotas.session_created(user.id)
    return await _state(live, status.HTTP_201_CREATED)


@router.get("/{session_id}", response_model=SessionState, responses=_NOT_FOUND)
async def get_session(session_id: SessionId, user: CurrentUser, services: ServicesDep) -> Response:
    return await _state(await _manager(services).get(session_id, user.id))


@router.patch("/{session_id}", response_model=SessionSummary, responses={**_BAD_BODY, **_NOT_FOUND})
async def rename_session(
    session_id: SessionId, body: SessionRename, user: CurrentUser, services: ServicesDep
) -> SessionSummary:
    manager = _manager(services)
    await manager.rename(session_id, Actor(user.id, "user"), body.title)
    meta = await manager.owned_meta(session_id, user.id)
    return SessionSummary(session_id=meta.id, title=meta.title, updated_at=iso(meta.updated_at),
                          node_count=meta.node_count)


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
async def delete_session(session_id: SessionId, user: CurrentUser, services: ServicesDep) -> Response:
    await _manager(services).delete(session_id, Actor(user.id, "user"))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
