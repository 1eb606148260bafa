"""One WebSocket connection (one browser tab): authentication, frame handling, ordered sending.

Frames are read and handled one at a time, in order. A frame goes out at once while the
socket takes it; otherwise it waits in a bounded outbox drained by a writer task, so a
slow tab never blocks a session's broadcast; a tab that falls too far behind is closed
(1013) and resumes with `last_seq`. The writer task exists only while frames are waiting,
so an idle tab holds no task.

The outbox has a byte budget (`WS_OUTBOX_MAX_BYTES`) for the frames waiting behind the next
one to go out, and back-pressure: while more than a quarter of the budget waits, the reader
takes no further frames, so a tab that stops reading cannot make its own requests pile up
replies. A newer queued `tree_snapshot` replaces an older one still waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from canopy import protocol, users
from canopy.config import Settings
from canopy.metrics import Metrics
from canopy.quotas import QuotaError, Quotas
from canopy.ratelimit import SlidingWindow, TokenBucket
from canopy.realtime import frames
from canopy.realtime.changes import Actor
from canopy.realtime.errors import SessionError
from canopy.realtime.manager import SessionManager
from canopy.realtime.session import LiveSession
from canopy.security import InvalidTokenError, decode_access_token

log = logging.getLogger("canopy.ws")

OUTBOX_LIMIT = 4096
HIGH_WATER_SHARE = 4  # the reader pauses while more than budget / HIGH_WATER_SHARE bytes wait
MAX_SESSION_ID = 64  # as init_session.data.session_id
STRIKE_WINDOW_SECONDS = 10.0


def _text(frame: bytes) -> dict[str, Any]:
    return {"type": "websocket.send", "text": frame.decode()}


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Connection:
    # An idle socket should cost little: no writer task, queue or event until one is needed.
    __slots__ = (
        "_auth_deadline",
        "_bucket",
        "_close_code",
        "_closed_event",
        "_drained",
        "_finished",
        "_frame_id",
        "_last_frame",
        "_outbox",
        "_queued",
        "_reader",
        "_receiving",
        "_snapshot",
        "_strikes",
        "_timed_out",
        "_timer",
        "_writer",
        "generation",
        "manager",
        "metrics",
        "quotas",
        "session",
        "settings",
        "user_id",
        "username",
        "ws",
    )

    def __init__(
        self, websocket: WebSocket, manager: SessionManager, settings: Settings, metrics: Metrics, quotas: Quotas
    ) -> None:
        self.ws = websocket
        self.manager = manager
        self.settings = settings
        self.metrics = metrics
        self.quotas = quotas
        self.user_id: str | None = None
        self.username: str | None = None  # from the token check; a user's first session is made with it
        self.generation: int | None = None  # the user's token generation its token carried (re-checked by accounts)
        self.session: LiveSession | None = None
        self._outbox: deque[bytes | _Close] = deque()
        self._queued = 0  # bytes of the frames in the outbox
        self._snapshot: bytes | None = None  # a tree_snapshot still waiting in the outbox
        self._drained: asyncio.Event | None = None  # set when a paused reader may read again
        self._writer: asyncio.Task[Any] | None = None  # a flush in progress (its own task, or the reader)
        self._close_code: int | None = None
        self._finished = False
        self._closed_event: asyncio.Event | None = None
        self._frame_id: str | None = None
        self._bucket = TokenBucket(settings.rate_limit_frames_per_second, settings.rate_limit_frame_burst)
        self._strikes: SlidingWindow | None = None
        self._reader: asyncio.Task[Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._receiving = False
        self._timed_out = False
        self._last_frame = self._auth_deadline = 0.0

    # --- sending ------------------------------------------------------------------------

    def enqueue(self, data: bytes) -> None:
        if self._close_code is not None or self._finished:
            return
        snapshot = data.startswith(frames.SNAPSHOT_PREFIX)
        if snapshot:
            self._drop_queued_snapshot()  # the newer one shows everything the older one did
        outbox = self._outbox
        # The budget bounds what waits behind the next frame out: one frame alone (a snapshot of a
        # tree at TREE_MAX_BYTES, session_ready) always fits, and so do the frames that follow it.
        head = outbox[0] if outbox else None
        waiting = self._queued - (len(head) if isinstance(head, bytes) else 0) + len(data)
        if len(outbox) >= OUTBOX_LIMIT or (head is not None and waiting > self.settings.ws_outbox_max_bytes):
            self._fall_behind(waiting)
            return
        self.metrics.note_outbox(waiting if head is not None else 0)
        self._queued += len(data)
        if snapshot:
            self._snapshot = data
        self._push(data)

    def _drop_queued_snapshot(self) -> None:
        old = self._snapshot
        if old is None:
            return
        self._snapshot = None
        for i, item in enumerate(self._outbox):
            if item is old:
                del self._outbox[i]
                self._queued -= len(old)
                return

    def _fall_behind(self, waiting: int) -> None:
        """Past the budget: the unsent frames are dropped whole (never one from the middle, which would
        leave a seq gap) and the socket closes; the client resumes with its last seq (replay or snapshot)."""
        log.warning("closing a connection that fell behind (%d frames, %d bytes waiting)", len(self._outbox), waiting)
        self.metrics.budget_refusals_of("ws_outbox").inc()
        self._outbox.clear()
        self._queued = 0
        self._snapshot = None
        self.close(1013, "too far behind; resume with last_seq")

    def close(self, code: int, reason: str = "") -> None:
        """Closes after the frames already queued have been sent."""
        if self._close_code is not None:
            return
        self._close_code = code
        self._push(_Close(code, reason))
        if self._drained is not None:
            self._drained.set()  # a paused reader stops waiting: the connection is closing

    def _push(self, item: bytes | _Close) -> None:
        self._outbox.append(item)
        if self._writer is None and not self._finished and not self._send_now():
            self._writer = asyncio.create_task(self._flush(), name="ws-writer")

    def _send_now(self) -> bool:
        """Sends the queued frames right here while the socket takes each at once, which is the usual
        case: uvicorn's send (websockets-sansio, pinned in worker.py) writes to the transport without
        suspending unless flow control has paused it. A task per flush cost more than the sending.
        False leaves the rest to a writer task: a close, or a send that would wait. Such a send is
        closed at its first suspension, where it has written nothing yet, and the writer sends it again."""
        outbox = self._outbox
        while outbox:
            item = outbox[0]
            if isinstance(item, _Close):
                return False
            step = self.ws.send(_text(item))
            try:
                step.send(None)
            except StopIteration:
                pass
            except (WebSocketDisconnect, RuntimeError, OSError):
                self._finish()
                return True
            else:
                step.close()
                return False
            outbox.popleft()
            self._taken(item)
        if self._drained is not None:
            self._drained.set()
        return True

    def _taken(self, item: bytes) -> None:
        """`item` left the outbox to be sent: it no longer counts against the budget."""
        self._queued -= len(item)
        if item is self._snapshot:
            self._snapshot = None

    def send(
        self, frame_type: str, data: dict[str, Any], frame_id: str | None = None, error: tuple[int, str] | None = None
    ) -> None:
        session_id = self.session.id if self.session else None
        self.enqueue(frames.encode(frame_type, data, session_id=session_id, frame_id=frame_id, error=error))
        self.metrics.frames_out_of(frame_type).inc()

    def error(self, code: int, message: str, frame_id: str | None = None) -> None:
        log.info("error %d sent: %s", code, message)
        self.metrics.errors_of(str(code)).inc()
        self.send("error", {}, frame_id, error=(code, message))

    async def _flush(self) -> None:
        """Sends what is queued, in order, then ends; the next frame starts a new flush."""
        outbox = self._outbox
        try:
            while outbox:
                item = outbox.popleft()
                if isinstance(item, _Close):
                    await self.ws.close(item.code, item.reason)
                    self._finish()
                    return
                self._taken(item)
                await self.ws.send(_text(item))
                if self._drained is not None and self._queued <= self._high_water() // 2:
                    self._drained.set()
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._finish()  # the socket is gone: nothing more can be sent
        finally:
            self._writer = None
            if self._drained is not None:
                self._drained.set()

    def _high_water(self) -> int:
        return self.settings.ws_outbox_max_bytes // HIGH_WATER_SHARE

    def _finish(self) -> None:
        self._finished = True
        self._outbox.clear()
        self._queued = 0
        self._snapshot = None
        if self._drained is not None:
            self._drained.set()
        if self._closed_event is not None:
            self._closed_event.set()

    async def wait_closed(self) -> None:
        """Returns once the close frame is sent or the socket is gone."""
        if self._finished:
            return
        if self._closed_event is None:
            self._closed_event = asyncio.Event()
        await self._closed_event.wait()

    # --- receiving ----------------------------------------------------------------------

    async def serve(self) -> None:
        await self.ws.accept()
        address = self._address()
        log.info("connected from %s", address)  # the URL may hold a token: not logged
        try:
            self.quotas.admit_anonymous(address)
        except QuotaError as exc:
            self._refuse("ws_unauthenticated_per_ip", exc)
            await self._stop_writer()
            return
        self.metrics.ws_connections.inc()
        self.manager.peers.add(self)
        try:
            token = self.ws.query_params.get("token")
            if token is not None and not await self._authenticate(token):
                return
            await self._read_loop()
        finally:
            if self.user_id is None:
                self.quotas.release_anonymous(address)
            else:
                self.quotas.release_socket(self.user_id)
            self.manager.peers.discard(self)
            if self.session is not None:
                self.session.detach(self)
            self.close(1000)
            await self._stop_writer()
            self.metrics.ws_connections.dec()
            log.info("disconnected (user %s, session %s)", self.user_id, self.session.id if self.session else "-")

    def _address(self) -> str:
        client = self.ws.client
        return client.host if client else "unknown"

    def _refuse(self, budget: str, exc: QuotaError) -> None:
        """A socket past a quota: the error says which, then 1013 (try again later)."""
        log.info("refused a WebSocket: %s", exc.message)
        self.metrics.budget_refusals_of(budget).inc()
        self.error(exc.code, exc.message, self._frame_id)
        self.close(1013, "over a connection quota; try again later")

    async def _stop_writer(self) -> None:
        """Gives queued frames (and the close frame) up to 5 s to go out, then gives up on them."""
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(writer), 5.0)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        self._finish()

    async def _authenticate(self, token: str) -> bool:
        try:
            claims = decode_access_token(token, self.settings.secret_key.get_secret_value())
        except InvalidTokenError:
            log.info("refused a WebSocket with a bad token")
            self.close(1008, "invalid or expired token")
            return False
        if self.user_id is not None and claims.user_id != self.user_id:
            self.close(1008, "token belongs to another user")
            return False
        if self.user_id is None:
            try:
                self.quotas.admit_socket(claims.user_id)
            except QuotaError as exc:
                self._refuse("ws_sockets_per_user", exc)
                return False
            self.quotas.release_anonymous(self._address())
        # Set before the check so a logout-all running meanwhile finds (and closes) this socket.
        self.user_id = claims.user_id
        self.generation = claims.generation
        user = await users.current_user(self.manager.store.engine, claims.user_id, claims.generation)
        if user is None:
            log.info("refused a WebSocket of a deleted user or with a token ended by logout-all")
            self.close(1008, "invalid or expired token")
            return False
        self.username = user.username
        return True

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        self._reader = reader = asyncio.current_task()
        assert reader is not None
        self._last_frame = loop.time()
        self._auth_deadline = self._last_frame + self.settings.ws_auth_timeout_seconds
        self._timer = loop.call_at(self._deadline(), self._watch)
        try:
            while self._close_code is None:
                if self._writer is not None and self._queued > self._high_water():
                    await self._wait_drained()
                    continue
                message = await self._receive(reader)
                if message is None:
                    return
                self._last_frame = loop.time()
                if message["type"] == "websocket.disconnect":
                    self._close_code = message.get("code", 1000)
                    return
                try:
                    await self._handle(message)
                except SessionError as exc:  # every CanopyError: a quota's too
                    self.error(exc.code, exc.message, self._frame_id)
                except Exception:
                    log.exception("unexpected error handling a frame")
                    self.error(500, "Internal error", self._frame_id)
                if self._outbox and self._writer is None:
                    # Replies go out from here: no task per answer. If the tab stops reading, this waits,
                    # which pauses only this tab; uvicorn's keepalive ping closes a dead one.
                    self._writer = reader
                    await self._flush()
        finally:
            self._timer.cancel()

    async def _wait_drained(self) -> None:
        """Back-pressure: takes no further frame until the writer has sent most of what waits (or the
        socket closes). A tab that stops reading stops being read; its other budgets stay with the writer."""
        self.metrics.budget_refusals_of("ws_outbox_paused").inc()
        if self._drained is None:
            self._drained = asyncio.Event()
        self._drained.clear()
        await self._drained.wait()

    async def _receive(self, reader: asyncio.Task[Any]) -> Mapping[str, Any] | None:
        """The next ASGI message, or None once the idle or auth deadline has passed (the socket is closing)."""
        self._receiving = True
        try:
            return await self.ws.receive()
        except asyncio.CancelledError:
            if not self._timed_out or reader.uncancel() > 0:
                raise  # a cancellation from elsewhere: not ours to swallow
            self._close_idle()
            return None
        finally:
            self._receiving = False

    # One timer per connection, re-armed only when it fires: cheaper than a timeout per frame.
    def _deadline(self) -> float:
        idle = self._last_frame + self.settings.ws_idle_timeout_seconds
        return idle if self.session is not None else min(idle, self._auth_deadline)

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = self._deadline()
        if self._receiving and loop.time() >= deadline:
            self._timed_out = True
            assert self._reader is not None
            self._reader.cancel()
            return
        self._timer = loop.call_at(max(deadline, loop.time() + 1.0), self._watch)

    def _close_idle(self) -> None:
        if self.session is None and asyncio.get_running_loop().time() >= self._auth_deadline:
            self.close(1008, "no valid init_session in time")
        else:
            self.close(1001, "idle timeout")

    async def _handle(self, message: Mapping[str, Any]) -> None:
        self._frame_id = None
        if not self._bucket.take():
            self.metrics.rate_limited.labels("frames").inc()
            if self._strikes is None:
                self._strikes = SlidingWindow(self.settings.rate_limit_strikes_before_close, STRIKE_WINDOW_SECONDS)
            self._strikes.hit("strikes")
            if self._strikes.retry_after("strikes") > 0:
                self.close(1008, "rate limit exceeded repeatedly")
                return
            raise SessionError(429, "Too many frames; slow down")
        text = message.get("text")
        if text is None:
            raise SessionError(400, "Binary frames are not supported; send JSON text")
        if len(text) > self.settings.ws_max_frame_bytes // 4 and len(text.encode()) > self.settings.ws_max_frame_bytes:
            raise SessionError(413, f"Frame larger than {self.settings.ws_max_frame_bytes} bytes")
        frame, raw = self._parse(text)
        self.metrics.frames_in_of(frame.type).inc()
        await self._dispatch(frame, raw, len(text))

    def _parse(self, text: str) -> tuple[protocol.ClientFrame, dict[str, Any]]:
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise SessionError(400, "Invalid JSON") from None
        if not isinstance(raw, dict):
            raise SessionError(400, "A frame must be a JSON object")
        frame_id = raw.get("id")
        self._frame_id = frame_id if isinstance(frame_id, str) and len(frame_id) <= 128 else None
        frame_type = raw.get("type")
        if not isinstance(frame_type, str):
            raise SessionError(400, "'type' must be a string")
        if frame_type not in protocol.CLIENT_TYPES:
            raise SessionError(400, f"Unknown type {frame_type[:64]!r}")
        try:
            frame = protocol.client_frames.validate_python(raw)
        except protocol.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"][1:]) or "frame"
            raise SessionError(400, f"Invalid {frame_type}: {where}: {first['msg']}") from None
        return frame, raw

    async def _dispatch(self, frame: protocol.ClientFrame, raw: dict[str, Any], size: int) -> None:
        fid = frame.id
        if isinstance(frame, protocol.Ping):
            self.send("pong", {}, fid)
        elif isinstance(frame, protocol.CloseSession):
            self.close(1000, "closed by client")
        elif isinstance(frame, protocol.InitSession):
            await self._init_session(frame)
        else:
            live = self._require_session()
            if isinstance(frame, protocol.UserPrompt | protocol.TreeOp):
                await self._charge_storage(live.user_id, 2 * size)  # stored: a delta and its inverse, a prompt
            await self._session_request(frame, raw, live)

    async def _charge_storage(self, user_id: str, size: int) -> None:
        """A prompt or edit that would pass the user's storage quota is refused (413) before anything is stored;
        undo, redo and deleting sessions stay open to get back under it."""
        quotas = self.quotas
        if not quotas.storage_known(user_id):
            quotas.storage_counted(user_id, await self.manager.store.stored_size(user_id))
        try:
            quotas.charge_storage(user_id, size)
        except QuotaError:
            self.metrics.budget_refusals_of("user_storage").inc()
            raise

    def _require_session(self) -> LiveSession:
        if self.session is None:
            raise SessionError(400, "Send init_session first")
        return self.session

    async def _init_session(self, frame: protocol.InitSession) -> None:
        token = frame.data.token
        if token is not None:
            if not await self._authenticate(token):
                return
        elif self.user_id is None:
            self.close(1008, "missing token")
            return
        assert self.user_id is not None and self.username is not None
        live = await self.manager.open_for(self.user_id, self.username, self._routed_session(frame.data.session_id))
        if self.session is not None:
            self.session.detach(self)
            self.session = None
        self.session = live
        await live.attach(self, frame.data.last_seq, frame.id, self.user_id)
        log.info("attached to session %s (user %s)", live.id, self.user_id)

    def _routed_session(self, requested: str | None) -> str | None:
        """`?session=` in the URL is what nginx routed on (all tabs of a session meet on one
        replica): init_session may omit the id or must repeat it. Another id is 421: this socket
        may sit on the wrong replica for it, so the client reconnects with `?session=<id>`."""
        routed = self.ws.query_params.get("session")
        if routed is None:
            return requested
        if not 1 <= len(routed) <= MAX_SESSION_ID:
            raise SessionError(400, "?session= must be a session id (1-64 characters)")
        if requested is not None and requested != routed:
            raise SessionError(
                421,
                "This socket was opened for another session (?session=); reconnect with ?session=<id> to open this one",
            )
        return routed

    async def _session_request(self, frame: protocol.ClientFrame, raw: dict[str, Any], live: LiveSession) -> None:
        fid = frame.id
        assert self.user_id is not None  # a session is attached only after authentication
        actor = Actor(self.user_id, "user")
        if isinstance(frame, protocol.UserPrompt):
            await live.prompt(actor, frame.data.prompt, fid)
        elif isinstance(frame, protocol.TreeOp):
            # The engine validates the delta itself; it gets the frame's own dict, not pydantic's re-dump.
            await live.apply_op(actor, raw["data"]["delta"], frame.data.base_rev, fid)
        elif isinstance(frame, protocol.Cancel):
            await live.cancel(actor)
        elif isinstance(frame, protocol.Undo):
            await live.undo(actor, fid)
        elif isinstance(frame, protocol.Redo):
            await live.redo(actor, fid)
        elif isinstance(frame, protocol.Resync):
            await live.resync(self, fid)
        elif isinstance(frame, protocol.PresenceUpdate):
            live.update_presence(self, {k: v for k, v in raw["data"].items() if k in ("selected", "typing")})
        elif isinstance(frame, protocol.ProposalDecision):
            await live.decide(actor, frame.data.proposal_id, frame.data.accept, fid)
