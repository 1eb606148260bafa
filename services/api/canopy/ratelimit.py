"""Rate limiters: a token bucket for frames, sliding windows for logins and prompts."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable


class TokenBucket:
    __slots__ = ("_clock", "_rate", "_tokens", "_updated", "burst")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._clock = clock
        self._updated = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class SlidingWindow:
    """At most `limit` events per `window` seconds per key; keys with no recent events are forgotten.

    With `max_keys`, the map is bounded: keys are kept in order of their last event, every new
    event checks the two least recent keys and drops them once expired (an amortised sweep: no
    task, and a key nobody asks about again still goes), and past `max_keys` the least recent
    key is dropped even if not expired.
    """

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic, max_keys: int | None = None
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._events: dict[Hashable, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._events)

    def _recent(self, key: Hashable) -> deque[float]:
        now = self._clock()
        events = self._events.get(key)
        if events is None:
            return deque()
        while events and events[0] <= now - self.window:
            events.popleft()
        if not events:
            del self._events[key]
        return events

    def retry_after(self, key: Hashable) -> float:
        """Seconds until another event is allowed (0 when allowed now)."""
        events = self._recent(key)
        if len(events) < self.limit:
            return 0.0
        return max(0.0, events[0] + self.window - self._clock())

    def hit(self, key: Hashable) -> None:
        self._recent(key)
        events = self._events.pop(key, None)
        if events is None:
            events = deque(maxlen=self.limit)  # only the last `limit` events decide anything
        events.append(self._clock())
        self._events[key] = events  # re-inserted: the dict stays ordered by last event
        if self.max_keys is not None:
            self._sweep()

    def _sweep(self) -> None:
        for key in list(itertools.islice(self._events, 2)):
            self._recent(key)
        while self.max_keys is not None and len(self._events) > self.max_keys:
            del self._events[next(iter(self._events))]

    def reset(self, key: Hashable) -> None:
        self._events.pop(key, None)
