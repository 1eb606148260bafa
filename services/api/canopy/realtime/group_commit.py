"""Group commit: concurrent writes from many sessions share one transaction.

Each caller still awaits its own write: `write()` returns only once the transaction
holding it has committed, so "committed before broadcast" holds. A batch runs in one
database-thread hop; if it fails, its writes are retried one by one so a single bad
write fails alone and the others still land.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("canopy.store")

Write = Callable[[Connection], None]
MAX_BATCH = 256


class GroupCommitter:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._pending: list[tuple[Write, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._inflight: list[tuple[Write, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, work: Write) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="group-commit")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((work, done))
        self._wakeup.set()
        await done

    async def close(self) -> None:
        """Lets queued writes finish, then stops the writer task."""
        waiting = [done for _, done in self._pending + self._inflight]
        if waiting and self._task is not None and not self._task.done():
            await asyncio.gather(*waiting, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                self._inflight = batch
                await self._commit(batch)
                self._inflight = []

    async def _commit(self, batch: list[tuple[Write, asyncio.Future[None]]]) -> None:
        def run_all(conn: Connection) -> None:
            for work, _ in batch:
                work(conn)

        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(run_all)
        except Exception as exc:
            if len(batch) == 1:
                self._settle(batch, exc)
                return
            log.warning("a batch of %d writes failed; retrying them one by one", len(batch))
            for item in batch:
                await self._commit([item])
            return
        self._settle(batch)

    @staticmethod
    def _settle(batch: list[tuple[Write, asyncio.Future[None]]], error: Exception | None = None) -> None:
        for _, done in batch:
            if done.done():  # the caller was cancelled; the write itself still happened (or failed) as told
                continue
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(None)
