"""Sessions REST: the caller's own workspaces and those shared with them. A session the caller is
not a member of is a 404; an owner-only action by a member is a 403. Sharing routes: `members.py`.

Errors are `CanopyError`s, raised as they come: the app's one handler (`canopy.main`) turns them
into responses. Changes go through the live session's own API, which takes its lock.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

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


class SessionPatch(BaseModel):
    """`title` (owner or editor) and/or `review_mode` (owner only); `{}` changes nothing."""

    model_config = ConfigDict(extra="forbid")
    title: Title | None = None
    review_mode: bool | None = None


Role = Literal["owner", "editor", "viewer"]


class SessionSummary(BaseModel):
    session_id: str
    title: str
    updated_at: str
    node_count: int
    role: Role
    owner: str = Field(description="the owner's username")


class SessionPatched(SessionSummary):
    review_mode: bool


class SessionState(BaseModel):
    session_id: str
    title: str
    tree: dict[str, Any]
    rev: int
    history: list[dict[str, Any]]
    role: Role
    owner: str
    review_mode: bool


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not found (or not shared with you)"}}
_FORBIDDEN: dict[int | str, dict[str, Any]] = {403: {"description": "Not allowed for your role"}}
_BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"description": "Body is not parseable"},
    413: {"description": "Body over 1 MiB (refused by the proxy)"},
}
_QUOTA: dict[int | str, dict[str, Any]] = {
    409: {"description": "The user has MAX_SESSIONS_PER_USER sessions already"},
    429: {"description": "Over SESSIONS_CREATED_PER_MINUTE (Retry-After says when to try again)"},
}


def manager_of(services: ServicesDep) -> SessionManager:
    assert services.sessions is not None
    return services.sessions


async def _state(live: LiveSession, user_id: str, status_code: int = 200) -> Response:
    """A SessionState body serialised straight from the tree's live view: a 100k-node tree goes out in
    milliseconds, where validating it through the pydantic model took about half a second."""
    state = await live.state()
    # Serialised at once: the view is valid only until the next await.
    body = orjson.dumps({**state, "role": live.role_of(user_id)})
    return Response(body, status_code=status_code, media_type="application/json")


@router.get("", response_model=list[SessionSummary])
async def list_sessions(user: CurrentUser, services: ServicesDep) -> list[SessionSummary]:
    listed = await manager_of(services).store.list_visible(user.id)
    return [
        SessionSummary(
            session_id=m.id,
            title=m.title,
            updated_at=iso(m.updated_at),
            node_count=m.node_count,
            role=role,
            owner=owner,
        )
        for m, role, owner in listed
    ]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SessionState, responses={**_BAD_BODY, **_QUOTA})
async def create_session(user: CurrentUser, services: ServicesDep, body: SessionCreate | None = None) -> Response:
    manager, quotas = manager_of(services), services.quotas
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
    return await _state(live, user.id, status.HTTP_201_CREATED)


@router.get("/{session_id}", response_model=SessionState, responses=_NOT_FOUND)
async def get_session(session_id: SessionId, user: CurrentUser, services: ServicesDep) -> Response:
    return await _state(await manager_of(services).get(session_id, user.id), user.id)


@router.patch("/{session_id}", response_model=SessionPatched, responses={**_BAD_BODY, **_NOT_FOUND, **_FORBIDDEN})
async def patch_session(
    session_id: SessionId, body: SessionPatch, user: CurrentUser, services: ServicesDep
) -> SessionPatched:
    manager = manager_of(services)
    actor = Actor(user.id, "user")
    if body.review_mode is not None:  # checked first: an editor sending it changes nothing at all
        await manager.require_owner(session_id, user.id, "changes review mode")
    if body.title is not None:
        await manager.rename(session_id, actor, body.title)
    if body.review_mode is not None:
        await manager.set_review_mode(session_id, actor, body.review_mode)
    meta = await manager.owned_meta(session_id, user.id)
    access = await manager.access(session_id, user.id)
    live = await manager.get(session_id, user.id)
    return SessionPatched(
        session_id=meta.id,
        title=meta.title,
        updated_at=iso(meta.updated_at),
        node_count=meta.node_count,
        role=access.role_of(user.id),
        owner=access.names.get(access.owner_id, ""),
        review_mode=live.review_mode,
    )


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**_NOT_FOUND, **_FORBIDDEN})
async def delete_session(session_id: SessionId, user: CurrentUser, services: ServicesDep) -> Response:
    await manager_of(services).delete(session_id, Actor(user.id, "user"))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
