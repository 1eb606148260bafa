"""Per-user and per-address quotas: what one account or one client address may hold at once.

Each check answers with a :class:`QuotaError` naming the limit and its setting, before anything
changes. The counts live here, in the one worker's memory (sessions and sockets are per worker too);
the session and storage counts come from the database, so they hold across restarts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from canopy.config import Settings
from canopy.errors import CanopyError
from canopy.ratelimit import SlidingWindow

STORAGE_RECOUNT_SECONDS = 60.0  # a user's stored bytes are recounted from the database this often


class QuotaError(CanopyError):
    """A request past a quota; `code` is 409, 413 or 429, `retry_after` seconds for a 429."""

    def __init__(self, code: int, message: str, retry_after: float = 0.0) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class Quotas:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self.session_creations = SlidingWindow(settings.sessions_created_per_minute, 60.0, clock)
        self.creating = asyncio.Lock()  # count-then-create, one at a time, so two requests cannot both pass
        self._sockets: dict[str, int] = {}
        self._anonymous: dict[str, int] = {}
        self._storage: dict[str, tuple[int, float]] = {}  # user -> (bytes, when counted)

    # --- sessions -----------------------------------------------------------------------

    def check_session_create(self, user_id: str, owned: int) -> None:
        limit = self.settings.max_sessions_per_user
        if owned >= limit:
            raise QuotaError(
                409,
                f"Session limit reached: at most {limit} sessions per user (MAX_SESSIONS_PER_USER); delete one first",
            )
        wait = self.session_creations.retry_after(user_id)
        if wait > 0:
            per_minute = self.settings.sessions_created_per_minute
            raise QuotaError(
                429,
                f"Too many new sessions: at most {per_minute} per minute "
                f"(SESSIONS_CREATED_PER_MINUTE); try again in {int(wait) + 1} s",
                wait,
            )

    def session_created(self, user_id: str) -> None:
        self.session_creations.hit(user_id)

    # --- sockets ------------------------------------------------------------------------

    def admit_anonymous(self, address: str) -> None:
        """A socket that has not authenticated yet, from `address`; release it with `release_anonymous`."""
        held = self._anonymous.get(address, 0)
        limit = self.settings.ws_max_unauthenticated_per_ip
        if held >= limit:
            raise QuotaError(
                429,
                f"Too many unauthenticated connections from your address: at most {limit} "
                "(WS_MAX_UNAUTHENTICATED_PER_IP)",
            )
        self._anonymous[address] = held + 1

    def release_anonymous(self, address: str) -> None:
        _release(self._anonymous, address)

    def admit_socket(self, user_id: str) -> None:
        """An authenticated socket of `user_id`; release it with `release_socket`."""
        held = self._sockets.get(user_id, 0)
        limit = self.settings.ws_max_sockets_per_user
        if held >= limit:
            raise QuotaError(
                429, f"Too many open connections for this user: at most {limit} (WS_MAX_SOCKETS_PER_USER); close a tab"
            )
        self._sockets[user_id] = held + 1

    def release_socket(self, user_id: str) -> None:
        _release(self._sockets, user_id)

    def sockets_of(self, user_id: str) -> int:
        return self._sockets.get(user_id, 0)

    # --- storage ------------------------------------------------------------------------

    def storage_known(self, user_id: str) -> bool:
        entry = self._storage.get(user_id)
        return entry is not None and self._clock() - entry[1] < STORAGE_RECOUNT_SECONDS

    def storage_counted(self, user_id: str, stored: int) -> None:
        self._storage[user_id] = (stored, self._clock())

    def charge_storage(self, user_id: str, size: int) -> None:
        """Checks that `size` more bytes fit the user's storage quota and counts them; call after
        `storage_counted` (the count is recounted from the database every STORAGE_RECOUNT_SECONDS)."""
        stored, when = self._storage.get(user_id, (0, self._clock()))
        limit = self.settings.user_storage_max_bytes
        if size > 0 and stored + size > limit:
            raise QuotaError(
                413,
                f"Storage quota reached: at most {limit} bytes stored per user "
                "(USER_STORAGE_MAX_BYTES); delete a session to make room",
            )
        self._storage[user_id] = (stored + size, when)


def _release(counts: dict[str, int], key: str) -> None:
    held = counts.get(key, 0) - 1
    if held > 0:
        counts[key] = held
    else:
        counts.pop(key, None)
