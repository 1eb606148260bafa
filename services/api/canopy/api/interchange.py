"""Import and export REST: a session's tree as JSON, Markdown or OPML (`canopy.outline`).

An import is one change set through the session's own entry point (`LiveSession.submit`),
attributed to the user `via` `import`: undoable as one, broadcast to every open tab, under the
same limits as any change; in a review-mode session it is a proposal instead. The file is parsed
and checked against the limits (bytes, nodes, depth) before anything is applied; a bad file is a
422 naming the line or element.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from anyio import to_thread
from fastapi import APIRouter, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from canopy import outline
from canopy.api.deps import CurrentUser, ServicesDep
from canopy.errors import CanopyError
from canopy.realtime.changes import Actor
from canopy.realtime.manager import SessionManager
from canopy.realtime.session import LiveSession
from canopy.tree import ROOT_ID

router = APIRouter(prefix="/api/sessions", tags=["import and export"])

SessionId = Annotated[str, Path(min_length=1, max_length=64)]
# The content's byte limit is checked by canopy.outline; this only bounds what pydantic reads.
Content = Annotated[str, Field(max_length=outline.IMPORT_MAX_BYTES)]


class ImportNew(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: outline.Format
    content: Content
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class ImportInto(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: outline.Format
    content: Content
    parent_id: Annotated[str, Field(min_length=1, max_length=64)] = ROOT_ID


class ImportResult(BaseModel):
    rev: int
    added: int  # nodes added (or proposed), descendants included
    ids: list[str]  # the ids of the top-level nodes added (or proposed), in order
    status: Literal["applied", "proposed"] = Field(
        "applied", description="proposed: the session is in review mode and nothing was applied"
    )
    proposal_id: str | None = Field(None, description="the proposal made instead, in review mode")


_BAD_FILE: dict[int | str, dict[str, Any]] = {
    400: {"description": "Body is not parseable"},
    413: {"description": "Body over 1 MiB (refused by the proxy); in review mode, over 1000 top-level nodes"},
    422: {"description": "Bad file or over a limit: `detail`, `reason`, and `line` or `element`"},
    404: {"description": "No such session of the caller's (or node)"},
}


def _manager(services: ServicesDep) -> SessionManager:
    assert services.sessions is not None
    return services.sessions


def _filename(title: str, extension: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-.")[:60]
    return f"{slug or 'canopy-tree'}.{extension}"


def _refused(exc: outline.OutlineError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def _id_source(live: LiveSession) -> Callable[[], str]:
    """Fresh ids, unique in the tree and among each other."""
    used: set[str] = set()

    def new_id() -> str:
        while True:
            nid = "n-" + secrets.token_hex(5)
            if nid not in used and nid not in live.tree:
                used.add(nid)
                return nid

    return new_id


def _fits(live: LiveSession, doc: outline.Document, parent_id: str) -> None:
    """The import's limits against this tree, before anything is applied (the engine checks again)."""
    limits = live.tree.limits
    adding = doc.root.count() - 1
    if len(live.tree) + adding > limits.max_nodes:
        raise outline.OutlineError(f"adding {adding} nodes would make the tree exceed {limits.max_nodes} nodes")
    depth = live.tree.depth(parent_id) + doc.root.height() - 1
    if depth > limits.max_depth:
        raise outline.OutlineError(
            f"under {parent_id!r} the tree would be {depth} levels deep; the limit is {limits.max_depth}"
        )


def _import_deltas(
    live: LiveSession, doc: outline.Document, parent_id: str, *, with_root: bool
) -> list[dict[str, Any]]:
    new_id = _id_source(live)
    path = live.tree.path(parent_id) + "/children"
    deltas: list[dict[str, Any]] = []
    if with_root and (doc.root.value != live.tree.value(ROOT_ID) or doc.root.props):
        fields: dict[str, Any] = {"value": doc.root.value}
        if doc.root.props:
            fields["props"] = dict(doc.root.props)
        deltas.append({"action": "update", "path": "/" + ROOT_ID, "fields": fields})
    deltas.extend({"action": "add", "path": path, "node": outline.to_node(item, new_id)} for item in doc.root.children)
    return deltas


async def _apply_import(
    live: LiveSession, user_id: str, fmt: str, doc: outline.Document, parent_id: str, *, with_root: bool
) -> ImportResult:
    if parent_id not in live.tree:
        raise CanopyError(404, f"node {parent_id!r} does not exist")
    _fits(live, doc, parent_id)
    deltas = _import_deltas(live, doc, parent_id, with_root=with_root)
    adds = [d for d in deltas if d["action"] == "add"]
    proposal_id = None
    if deltas:
        done = await live.submit(Actor(user_id, "import", fmt), deltas)
        proposal_id = done.proposal.id if done.proposal else None
    return ImportResult(
        rev=live.tree.rev,
        added=doc.root.count() - 1,
        ids=[d["node"]["id"] for d in adds],
        status="proposed" if proposal_id else "applied",
        proposal_id=proposal_id,
    )


@router.get(
    "/{session_id}/export",
    responses={
        200: {"content": {m: {} for m in outline.MEDIA_TYPES.values()}},
        404: _BAD_FILE[404],
        409: {"description": "OPML cannot carry a control character"},
    },
)
async def export_session(
    session_id: SessionId,
    user: CurrentUser,
    services: ServicesDep,
    format: Annotated[outline.Format, Query()] = "json",
) -> Response:
    live = await _manager(services).get(session_id, user.id)
    state = await live.state()
    # A private copy at once (the state holds the tree's live view), rendered off the event loop.
    tree = orjson.loads(orjson.dumps(state["tree"]))
    try:
        content = await to_thread.run_sync(outline.render, format, state["title"], state["rev"], tree)
    except outline.UnrepresentableError as exc:
        raise CanopyError(409, str(exc)) from None
    filename = _filename(state["title"], outline.EXTENSIONS[format])
    return Response(
        content,
        media_type=outline.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    responses={**_BAD_FILE, 201: {"description": "The new session's full state, as `GET /api/sessions/{id}`"}},
)
async def import_new_session(body: ImportNew, user: CurrentUser, services: ServicesDep) -> Response:
    manager = _manager(services)
    try:
        doc = await to_thread.run_sync(outline.parse, body.format, body.content, manager.limits)
    except outline.OutlineError as exc:
        return _refused(exc)
    live = await manager.create(user.id, body.title or doc.title or f"Imported {body.format}")
    try:
        await _apply_import(live, user.id, body.format, doc, ROOT_ID, with_root=True)
    except outline.OutlineError as exc:
        await manager.delete(live.id, Actor(user.id, "import", body.format))
        return _refused(exc)
    return Response(
        orjson.dumps(await live.state()), status_code=status.HTTP_201_CREATED, media_type="application/json"
    )


@router.post("/{session_id}/import", response_model=ImportResult, responses=_BAD_FILE)
async def import_into_session(
    session_id: SessionId, body: ImportInto, user: CurrentUser, services: ServicesDep
) -> ImportResult | JSONResponse:
    manager = _manager(services)
    live = await manager.get(session_id, user.id)
    try:
        doc = await to_thread.run_sync(outline.parse, body.format, body.content, manager.limits)
        return await _apply_import(live, user.id, body.format, doc, body.parent_id, with_root=False)
    except outline.OutlineError as exc:
        return _refused(exc)
