"""Open agent streams, so that ending a credential ends them too.

Every request is authenticated when it starts; a long one (an MCP GET stream, a
`subscriptions/listen` stream, an AG-UI run) would outlive its credential. Each registers here
with what ended it: revoking a personal access token (`end_token`), or logging out everywhere,
changing the password, deleting the account (`end_user`) calls those, and the stream ends at once.
A registration is taken back when its stream ends by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from prometheus_client import Gauge

log = logging.getLogger("canopy.agents")
# mcp: an HTTP request to /mcp (a GET or listen stream, a call); mcp_subscription: a client connection's
# resources/subscribe subscriptions; agui: an AG-UI run.
Kind = Literal["mcp", "mcp_subscription", "agui"]
KINDS: tuple[Kind, ...] = ("mcp", "mcp_subscription", "agui")


@dataclass(eq=False, slots=True)
class AgentStream:
    """One open stream: whose credential carries it, and how to end it (`end(reason)`, idempotent)."""

    kind: Kind
    user_id: str
    token_id: str | None  # the personal access token, or None for an access token (an AG-UI run)
    end: Callable[[str], None]


class AgentStreams:
    def __init__(self, gauge: Gauge) -> None:
        self._open: set[AgentStream] = set()
        self._gauge = gauge
        for kind in KINDS:
            gauge.labels(kind).set(0)

    def add(self, stream: AgentStream) -> None:
        self._open.add(stream)
        self._gauge.labels(stream.kind).inc()

    def discard(self, stream: AgentStream) -> None:
        if stream in self._open:
            self._open.remove(stream)
            self._gauge.labels(stream.kind).dec()

    @contextmanager
    def tracking(self, stream: AgentStream) -> Iterator[AgentStream]:
        self.add(stream)
        try:
            yield stream
        finally:
            self.discard(stream)

    def end_token(self, token_id: str, reason: str) -> int:
        """Ends every stream of this personal access token (it was revoked)."""
        return self._end([s for s in self._open if s.token_id == token_id], reason)

    def end_user(self, user_id: str, reason: str) -> int:
        """Ends every stream of this user, whatever token carries it (all their logins ended)."""
        return self._end([s for s in self._open if s.user_id == user_id], reason)

    def token_ids(self) -> set[str]:
        return {s.token_id for s in self._open if s.token_id is not None}

    def user_ids(self) -> set[str]:
        return {s.user_id for s in self._open}

    def _end(self, streams: list[AgentStream], reason: str) -> int:
        for stream in streams:
            self.discard(stream)
            try:
                stream.end(reason)
            except Exception:  # one stream that fails to end must not keep the others open
                log.exception("could not end an agent stream")
        if streams:
            log.info("ended %d agent stream(s): %s", len(streams), reason)
        return len(streams)

    def __len__(self) -> int:
        return len(self._open)
