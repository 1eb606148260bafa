"""MCP tool calls on a session another replica holds are run by that replica (docs/scaling.md, "Routing").

An MCP request names its session inside the JSON-RPC body, where nginx cannot hash it, so it reaches
any replica. Were that replica to serve the call itself, it would claim the session: the holder would
hand it over and close every tab with 1012, and the tabs, hashed back to the holder, would claim it
back. So the receiver checks the token (scope, session limit, its rate) and, while another live
replica holds the session's lease, sends it the call (tool, arguments, and the caller: user, token
id, name, scope and session limit) as a signed replica call (`canopy.cluster.calls`). The holder runs
it as that caller through its own `AgentTools` (the same checks and entry point; a forwarded call is
never forwarded again) and answers the tool's result or its error.

Reads (`get_tree`, `find_nodes`, the tree resource) are forwarded too: the holder's tree is the one
its tabs see, ahead of the database by the changes still in group commit, so an agent reads what it
just wrote. A holder that does not answer within `CALL_TIMEOUT_SECONDS` fails the call with a tool
error (503) and nothing is claimed, so a slow holder causes no hand-over. Only when no live replica
holds the session does the receiver serve it (claiming the lease, as any replica does).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from canopy.agents.tools import WRITE_TOOLS, AgentError, AgentTools, Caller
from canopy.cluster.calls import (
    CALL_PATH,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallSigner,
    ReplicaCallError,
    ReplicaClient,
)
from canopy.cluster.ownership import Ownership
from canopy.tokens import PersonalToken

log = logging.getLogger("canopy.agents")
MAX_CALL_BYTES = 1024 * 1024
_EPOCH = datetime.fromtimestamp(0, tz=UTC)  # a forwarded caller's token dates are not sent: the tools read none


class ForwardedCaller(BaseModel):
    token_id: str = Field(max_length=36)
    user_id: str = Field(max_length=36)
    name: str = Field(max_length=100)
    scope: Literal["read", "write"]
    session_id: str | None = Field(None, max_length=36)


class ForwardedCall(BaseModel):
    tool: str = Field(max_length=32)
    args: dict[str, Any]
    caller: ForwardedCaller


def _caller_json(caller: Caller) -> dict[str, Any]:
    token = caller.token
    return {
        "token_id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "scope": token.scope,
        "session_id": token.session_id,
    }


def _caller(sent: ForwardedCaller) -> Caller:
    """The caller as the receiving replica authenticated it (the fields the tools read)."""
    token = PersonalToken(
        id=sent.token_id,
        user_id=sent.user_id,
        name=sent.name,
        scope=sent.scope,
        session_id=sent.session_id,
        hint="",
        created_at=_EPOCH,
        expires_at=None,
        last_used_at=None,
    )
    return Caller(token)


class Forwarding:
    """Runs a session tool here, or on the replica that holds the session."""

    def __init__(self, tools: AgentTools, cluster: Ownership | None, secret_key: str) -> None:
        self.tools = tools
        self.cluster = cluster
        self.signer = CallSigner(secret_key) if cluster is not None else None
        self.client = ReplicaClient(self.signer) if self.signer is not None else None

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def held_elsewhere(self, session_id: str) -> str | None:
        if self.cluster is None:
            return None
        try:
            return await self.cluster.held_elsewhere(session_id)
        except (SQLAlchemyError, OSError):
            raise AgentError("Storage unavailable; try again later (503)") from None

    async def run(self, tool: str, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        session_id = str(args["session_id"])
        address = await self.held_elsewhere(session_id)
        if address is None or self.client is None:
            return await self.tools.run(tool, caller, args)
        self.tools.authorise(caller, session_id, write=tool in WRITE_TOOLS)
        payload = {"tool": tool, "args": args, "caller": _caller_json(caller)}
        try:
            answer = await self.client.call(address, payload)
        except ReplicaCallError as exc:
            log.warning("forwarded %s on session %s to %s: %s", tool, session_id, address, exc)
            raise AgentError(f"The server that holds this session {exc}; try again in a few seconds (503)") from None
        if isinstance(answer.get("error"), str):
            raise AgentError(answer["error"])
        result = answer.get("result")
        if not isinstance(result, dict):
            raise AgentError("The server that holds this session answered nothing usable (502)")
        return result

    async def serve(self, request: Request) -> Response:
        """The holder's side: a signed call from another replica, run here as its caller."""
        if self.signer is None:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        body = await request.body()
        if len(body) > MAX_CALL_BYTES:
            return JSONResponse({"detail": "Request body too large"}, status_code=413)
        headers = request.headers
        if not self.signer.verify(headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER), body):
            return JSONResponse({"detail": "Not a signed replica call"}, status_code=401)
        try:
            call = ForwardedCall.model_validate(orjson.loads(body))
        except (ValidationError, orjson.JSONDecodeError):
            return JSONResponse({"detail": "Not a replica call"}, status_code=422)
        try:
            session_id = call.args.get("session_id")
            # Moved on meanwhile (a hand-over between the receiver's look-up and now): serving it here would
            # take it back from its new holder. The agent retries; the receiver then finds the new holder.
            if isinstance(session_id, str) and await self.held_elsewhere(session_id) is not None:
                raise AgentError("The session just moved to another server; try again (503)")
            result = await self.tools.run(call.tool, _caller(call.caller), call.args)
        except AgentError as exc:
            return JSONResponse({"error": str(exc)})
        return JSONResponse({"result": result})


router = APIRouter(include_in_schema=False)


@router.post(CALL_PATH)
async def agent_call(request: Request) -> Response:
    forwarding: Forwarding | None = request.app.state.mcp.forwarding
    if forwarding is None:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    return await forwarding.serve(request)
