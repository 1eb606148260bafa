"""AG-UI endpoint: `POST /api/agui/sessions/{session_id}` runs one assistant turn, answered as SSE.

The run is an ordinary prompt through the session's entry point (`LiveSession.prompt`: one turn at
a time, the prompt rate limit, storage, every open tab sees it), and a `RunPeer` attached to the
session like a tab turns the frames it is sent into AG-UI events: `RUN_STARTED`; `STATE_SNAPSHOT`
of the tree as a map by node id (`canopy.agents.agui_state`) taken under the session's lock when
the peer attached, then one `STATE_DELTA` per change from any source, so the snapshot with every
delta applied is the tree; reasoning as `REASONING_*`; the answer as `TEXT_MESSAGE_*`; each change
the assistant makes as one `TOOL_CALL_*` group (the tree operation and its delta); `RUN_FINISHED`,
or `RUN_ERROR` (a turn already running: code `409`; rate limited: `429`; a provider failure: its
code; the run's token revoked, or its user logged out everywhere, mid-run: `401`). A client that
disconnects, or whose credential ends, cancels the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from ag_ui.core import (
    BaseEvent,
    ReasoningEndEvent,
    ReasoningMessageContentEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    ReasoningStartEvent,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedEvent,
    RunStartedEvent,
    StateDeltaEvent,
    StateSnapshotEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.responses import StreamingResponse

from canopy import tokens
from canopy.agents.agui_state import TreeState
from canopy.agents.streams import AgentStream, AgentStreams
from canopy.api.deps import ServicesDep, get_current_user, oauth2_scheme
from canopy.errors import CanopyError
from canopy.realtime.changes import Actor
from canopy.realtime.session import LiveSession

log = logging.getLogger("canopy.agents")
router = APIRouter(prefix="/api/agui", tags=["ag-ui"])
MAX_PROMPT_CHARS = 4000
SessionId = Annotated[str, Path(min_length=1, max_length=64)]
_UNAUTHORIZED = HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True, slots=True)
class RunCaller:
    actor: Actor
    token_id: str | None  # the personal access token behind the run; None for an access token


async def run_caller(
    session_id: SessionId, services: ServicesDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> RunCaller:
    """An access token (the user) or a write personal access token that may write this session (an agent)."""
    if not token:
        raise _UNAUTHORIZED
    if tokens.looks_like_personal_token(token):
        pat = await tokens.verify_token(services.engine, token)
        if pat is None:
            raise _UNAUTHORIZED
        if not pat.allows(session_id, write=True):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "This token may not run turns in this session")
        return RunCaller(Actor(pat.user_id, "agent", pat.name), pat.id)
    user = await get_current_user(services, token)  # the access token's own checks (expiry, generation)
    return RunCaller(Actor(user.id, "user"), None)


def last_user_text(run: RunAgentInput) -> str:
    for message in reversed(run.messages):
        if getattr(message, "role", None) != "user":
            continue
        content = message.content
        if isinstance(content, str):
            return content
        return "".join(getattr(part, "text", "") or "" for part in content or [])
    return ""


class RunPeer:
    """A Peer (`canopy.realtime.session.Peer`) that queues the frames it is sent for the run's stream:
    a frame, None when the session closed, or a `str` (why) when the run's credential ended."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[dict[str, Any] | str | None] = asyncio.Queue()
        self.closed = asyncio.Event()

    def enqueue(self, data: bytes) -> None:
        self.frames.put_nowait(orjson.loads(data))

    def close(self, code: int, reason: str = "") -> None:
        self.closed.set()
        self.frames.put_nowait(None)

    def credential_ended(self, reason: str) -> None:
        """Its token was revoked, or the user logged out everywhere (`AgentStreams`)."""
        self.frames.put_nowait(reason)

    async def wait_closed(self) -> None:
        await self.closed.wait()


class Translator:
    """Canopy frames of one run → AG-UI events, keeping text and reasoning messages properly opened and closed."""

    def __init__(self, run: RunAgentInput, frame_id: str) -> None:
        self.run = run
        self.frame_id = frame_id
        self.state: TreeState | None = None
        self.text_id: str | None = None
        self.reasoning_id: str | None = None
        self.done = False

    def error(self, message: str, code: str) -> list[BaseEvent]:
        """RUN_ERROR for a run cut short (its turn goes on until cancelled), after closing whatever text or
        reasoning message is open."""
        return [*self._close_open(), RunErrorEvent(message=message, code=code)]

    def _close_open(self) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        if self.text_id is not None:
            out.append(TextMessageEndEvent(message_id=self.text_id))
            self.text_id = None
        if self.reasoning_id is not None:
            out += [
                ReasoningMessageEndEvent(message_id=self.reasoning_id),
                ReasoningEndEvent(message_id=self.reasoning_id),
            ]
            self.reasoning_id = None
        return out

    def frame(self, frame: dict[str, Any]) -> list[BaseEvent]:
        kind, data, ours = frame["type"], frame.get("data") or {}, frame.get("id") == self.frame_id
        if kind == "session_ready":
            self.state = TreeState(data["initial_tree"], data["rev"])
            return [StateSnapshotEvent(snapshot=self.state.snapshot())]
        if kind == "tree_update" and self.state is not None:
            return self._change(data, ours)
        if not ours:
            return []
        if kind == "reasoning" and data.get("text"):
            return self._reasoning(str(data["text"]))
        if kind == "assistant_response" and data.get("chunk"):
            return self._text(str(data["text"]))
        if kind == "assistant_response":
            self.done = True
            result = {"cancelled": True} if data.get("cancelled") else None
            return [
                *self._close_open(),
                RunFinishedEvent(thread_id=self.run.thread_id, run_id=self.run.run_id, result=result),
            ]
        if kind == "error" and "seq" in frame:  # the turn's end (a frame's own error has no seq)
            self.done = True
            error = frame.get("error") or {}
            return [*self._close_open(), RunErrorEvent(message=str(error.get("message")), code=str(error.get("code")))]
        return []

    def _reasoning(self, text: str) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        if self.reasoning_id is None:
            out = self._close_open()
            self.reasoning_id = uuid.uuid4().hex
            out += [
                ReasoningStartEvent(message_id=self.reasoning_id),
                ReasoningMessageStartEvent(message_id=self.reasoning_id),
            ]
        out.append(ReasoningMessageContentEvent(message_id=self.reasoning_id, delta=text))
        return out

    def _text(self, text: str) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        if self.text_id is None:
            out = self._close_open()
            self.text_id = uuid.uuid4().hex
            out.append(TextMessageStartEvent(message_id=self.text_id, role="assistant"))
        out.append(TextMessageContentEvent(message_id=self.text_id, delta=text))
        return out

    def _change(self, data: dict[str, Any], ours: bool) -> list[BaseEvent]:
        assert self.state is not None
        if data["rev"] <= self.state.rev:  # already in the snapshot
            return []
        delta = data["delta"]
        out: list[BaseEvent] = []
        if ours and data.get("origin") == "assistant":  # the assistant's own tool call, reported as one
            out = self._close_open()
            call_id = uuid.uuid4().hex
            out += [
                ToolCallStartEvent(tool_call_id=call_id, tool_call_name=f"tree_{delta['action']}"),
                ToolCallArgsEvent(tool_call_id=call_id, delta=orjson.dumps(delta).decode()),
                ToolCallEndEvent(tool_call_id=call_id),
                ToolCallResultEvent(
                    message_id=uuid.uuid4().hex,
                    tool_call_id=call_id,
                    content=orjson.dumps({"rev": data["rev"]}).decode(),
                ),
            ]
        out.append(StateDeltaEvent(delta=self.state.apply(delta, data["rev"])))
        return out


def _sse(event: BaseEvent) -> bytes:
    return f"data: {event.model_dump_json(by_alias=True, exclude_none=True)}\n\n".encode()


async def _stream(
    live: LiveSession, caller: RunCaller, run: RunAgentInput, prompt: str, streams: AgentStreams | None
) -> AsyncIterator[bytes]:
    frame_id = f"agui-{uuid.uuid4().hex[:16]}"
    translator = Translator(run, frame_id)
    peer = RunPeer()
    actor = caller.actor
    yield _sse(RunStartedEvent(thread_id=run.thread_id, run_id=run.run_id))
    started = False
    stream = AgentStream("agui", actor.user_id, caller.token_id, peer.credential_ended)
    if streams is not None:
        streams.add(stream)
    try:
        await live.attach(peer, None, None)
        try:
            await live.prompt(actor, prompt, frame_id)
            started = True
        except CanopyError as exc:
            for waiting in _drain(peer):  # the snapshot first: the stream still carries the state
                for event in translator.frame(waiting):
                    yield _sse(event)
            yield _sse(RunErrorEvent(message=exc.message, code=str(exc.code)))
            return
        while not translator.done:
            frame = await peer.frames.get()
            if frame is None:  # the session closed (deleted, shutdown)
                yield _sse(RunErrorEvent(message="The session was closed", code="1001"))
                return
            if isinstance(frame, str):  # the credential ended: the turn is cancelled below
                for event in translator.error(f"The run's credential is no longer valid ({frame})", "401"):
                    yield _sse(event)
                return
            for event in translator.frame(frame):
                yield _sse(event)
    finally:
        if streams is not None:
            streams.discard(stream)
        live.detach(peer)
        if started and not translator.done:  # the client went away (or lost its credential) mid-turn: stop it
            with contextlib.suppress(CanopyError):
                await live.cancel(actor)


def _drain(peer: RunPeer) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while not peer.frames.empty():
        queued = peer.frames.get_nowait()
        if isinstance(queued, dict):
            out.append(queued)
    return out


@router.post(
    "/sessions/{session_id}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "AG-UI events (SSE)"},
        400: {"description": "Body is not parseable"},
        413: {"description": "Body over 1 MiB (refused by the proxy)"},
        401: {"description": "No valid access token or personal access token"},
        403: {"description": "A read-only token, or one limited to another session"},
        404: {"description": "No such session of the caller's"},
        422: {"description": "Not a RunAgentInput, or no user message (1-4000 characters)"},
    },
)
async def run_agent(
    session_id: SessionId, run: RunAgentInput, services: ServicesDep, caller: Annotated[RunCaller, Depends(run_caller)]
) -> StreamingResponse:
    prompt = last_user_text(run).strip()
    if not 1 <= len(prompt) <= MAX_PROMPT_CHARS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"The last user message is the prompt: 1-{MAX_PROMPT_CHARS} characters",
        )
    assert services.sessions is not None
    live = await services.sessions.get(session_id, caller.actor.user_id)
    return StreamingResponse(
        _stream(live, caller, run, prompt, services.agent_streams),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
