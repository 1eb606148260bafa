"""Presence: who has a tab on a session, what each selected, who is typing.

Not stored and not numbered: a `presence` frame is the whole state, so frames may be merged.
Changes within `MIN_INTERVAL` of the last frame are held and sent together once it has passed
(at most 10 frames per second per session, the latest state, never a backlog).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIN_INTERVAL = 0.1  # seconds between two presence frames of one session
_ticks = itertools.count(1)


@dataclass(slots=True)
class TabPresence:
    user_id: str
    selected: str | None = None
    typing: bool = False
    selected_at: int = 0  # orders the tabs of one user: the last to set `selected` wins


class PresenceBoard:
    """The tabs of one session (keyed by any hashable tab object) and the frame they add up to."""

    def __init__(self, send: Callable[[], None]) -> None:
        self._send = send
        self.tabs: dict[object, TabPresence] = {}
        self._last_sent = 0.0
        self._pending: asyncio.TimerHandle | None = None

    def join(self, tab: object, user_id: str) -> None:
        self.tabs[tab] = TabPresence(user_id)
        self.changed()

    def leave(self, tab: object) -> None:
        if self.tabs.pop(tab, None) is not None:
            self.changed()

    def update(self, tab: object, fields: dict[str, Any]) -> None:
        state = self.tabs.get(tab)
        if state is None:
            return
        if "selected" in fields:
            state.selected = fields["selected"]
            state.selected_at = next(_ticks)
        if "typing" in fields and fields["typing"] is not None:
            state.typing = bool(fields["typing"])
        self.changed()

    def users(self, role_of: Callable[[str], str | None], name_of: Callable[[str], str]) -> list[dict[str, Any]]:
        by_user: dict[str, list[TabPresence]] = {}
        for state in self.tabs.values():
            by_user.setdefault(state.user_id, []).append(state)
        out: list[dict[str, Any]] = []
        for user_id, tabs in by_user.items():
            role = role_of(user_id)
            if role is None:  # being revoked: their tabs are closing
                continue
            latest = max(tabs, key=lambda t: t.selected_at)
            out.append(
                {
                    "username": name_of(user_id),
                    "role": role,
                    "tabs": len(tabs),
                    "selected": latest.selected,
                    "typing": any(t.typing for t in tabs),
                }
            )
        out.sort(key=lambda u: str(u["username"]))
        return out

    def changed(self) -> None:
        """Sends a frame now, or once MIN_INTERVAL has passed since the last one."""
        if self._pending is not None:
            return
        wait = self._last_sent + MIN_INTERVAL - time.monotonic()
        if wait <= 0:
            self._flush()
        else:
            self._pending = asyncio.get_running_loop().call_later(wait, self._flush)

    def _flush(self) -> None:
        self._pending = None
        self._last_sent = time.monotonic()
        self._send()

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
