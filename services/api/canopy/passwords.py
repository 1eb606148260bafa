"""Password policy and the bound on concurrent password hashing.

Each argon2 hash or verify (passlib's defaults: memory_cost 65536 KiB) takes 64 MiB for
the time it runs, in a worker thread. Unbounded, 20 concurrent logins took the worker
from 347 MiB to 1.4 GiB; `HashLimiter` lets at most `concurrency` run and `queue` wait,
and refuses the rest at once (the route answers 503 with Retry-After).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import cache
from typing import TypeVar

from anyio import to_thread
from zxcvbn.frequency_lists import FREQUENCY_LISTS

T = TypeVar("T")

MIN_PASSWORD_LENGTH = 8
HASH_MEMORY_MIB = 64  # passlib's argon2 memory_cost (65536 KiB), per hash in progress
HASH_RETRY_AFTER_SECONDS = 1


@cache
def common_passwords() -> frozenset[str]:
    """zxcvbn's list of the 30,000 most common passwords (its own frequency data), those long enough to matter."""
    return frozenset(p for p in FREQUENCY_LISTS["passwords"] if len(p) >= MIN_PASSWORD_LENGTH)


def password_problem(username: str, password: str) -> str | None:
    """Why a new password is refused, in words for the user; None when it is acceptable."""
    if not password.strip():
        return "Password must not be only whitespace"
    if password.strip().casefold() == username.casefold():
        return "Password must not be the username"
    if password.casefold() in common_passwords():
        return "Password is one of the most common passwords; choose another"
    return None


class HashBusyError(Exception):
    """More password hashes asked for than the limiter runs and queues."""


class HashLimiter:
    def __init__(self, concurrency: int, queue: int) -> None:
        self._running = asyncio.Semaphore(concurrency)
        self._capacity = concurrency + queue
        self._admitted = 0

    @property
    def admitted(self) -> int:
        return self._admitted

    async def run(self, func: Callable[..., T], *args: object) -> T:
        if self._admitted >= self._capacity:
            raise HashBusyError
        self._admitted += 1
        try:
            async with self._running:
                return await to_thread.run_sync(func, *args)
        finally:
            self._admitted -= 1
