"""Sharing REST: a session's members and its history of change sets.

Every route is 404 for a user who is neither the session's owner nor a member. Membership
changes go through `SessionManager` (`share`, `set_role`), which ends each in
`membership_changed`: the one hook that reaches the live session (revoking closes sockets).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from canopy.api.deps import CurrentUser, ServicesDep
from canopy.api.sessions import SessionId, manager_of
from canopy.realtime import attribution
from canopy.realtime.changes import Actor

router = APIRouter(prefix="/api/sessions", tags=["sharing"])

MemberRole = Literal["editor", "viewer"]
Username = Annotated[str, Path(min_length=1, max_length=64)]
HISTORY_MAX = 200


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(min_length=1, max_length=64)]
    role: MemberRole


class MemberRolePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: MemberRole


class Member(BaseModel):
    username: str
    role: Literal["owner", "editor", "viewer"]


class ActorOut(BaseModel):
    username: str
    via: str


class HistoryItem(BaseModel):
    number: int
    actor: ActorOut
    created_at: str | None
    summary: str
    rev: int = Field(description="the tree revision after the change set's last change")
    undone: bool
    nodes: list[str] = Field(description="ids of the nodes it touched (the top node of each change)")


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    next_before: int | None = Field(description="`before` for the next, older page; null on the last page")


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid body, or the owner named as a member"},
    403: {"description": "Only the owner (or the member themselves, for DELETE)"},
    404: {"description": "Session not found (or not shared with you), user or member not found"},
    409: {"description": "Already a member"},
}

# Bodies over nginx's client_max_body_size (1 MiB) get nginx's JSON 413.
_BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    413: {"description": "Body over 1 MiB (refused by the proxy)"},
}


@router.get("/{session_id}/members", response_model=list[Member], responses=_ERRORS)
async def list_members(session_id: SessionId, user: CurrentUser, services: ServicesDep) -> list[Member]:
    access = await manager_of(services).access(session_id, user.id)
    members = sorted((access.names.get(uid, "unknown"), role) for uid, role in access.roles.items())
    owner = Member(username=access.names.get(access.owner_id, "unknown"), role="owner")
    return [owner, *(Member(username=name, role=role) for name, role in members)]


@router.post(
    "/{session_id}/members", status_code=status.HTTP_201_CREATED, response_model=Member, responses=_BODY_ERRORS
)
async def add_member(session_id: SessionId, body: MemberAdd, user: CurrentUser, services: ServicesDep) -> Member:
    await manager_of(services).share(session_id, Actor(user.id, "user"), body.username, body.role)
    return Member(username=body.username, role=body.role)


@router.patch("/{session_id}/members/{username}", response_model=Member, responses=_BODY_ERRORS)
async def change_member(
    session_id: SessionId, username: Username, body: MemberRolePatch, user: CurrentUser, services: ServicesDep
) -> Member:
    await manager_of(services).set_role(session_id, Actor(user.id, "user"), username, body.role)
    return Member(username=username, role=body.role)


@router.delete("/{session_id}/members/{username}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def remove_member(
    session_id: SessionId, username: Username, user: CurrentUser, services: ServicesDep
) -> Response:
    await manager_of(services).set_role(session_id, Actor(user.id, "user"), username, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{session_id}/history", response_model=HistoryPage, responses=_ERRORS)
async def history(
    session_id: SessionId,
    user: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=HISTORY_MAX)] = 50,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HistoryPage:
    manager = manager_of(services)
    access = await manager.access(session_id, user.id)
    rows = await manager.store.history(session_id, access.owner_id, limit + 1, before)
    more = len(rows) > limit
    rows = rows[:limit]
    names = dict(access.names)
    missing = {cs.actor.user_id for cs, _, _ in rows} - set(names)
    if missing:
        names.update(await manager.store.usernames(missing))
    items = [
        HistoryItem(
            number=cs.number,
            actor=ActorOut(username=names.get(cs.actor.user_id, "unknown"), via=cs.actor.via),
            created_at=created,
            summary=attribution.summarise_changes(cs.changes),
            rev=rev,
            undone=cs.undone,
            nodes=attribution.touched(cs.changes),
        )
        for cs, created, rev in rows
    ]
    return HistoryPage(items=items, next_before=items[-1].number if more and items else None)
