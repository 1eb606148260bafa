"""Group commit: concurrent writes from many sessions share one transaction.

Each caller still awaits its own write: `write()` returns only once the transaction
holding it has committed, so "committed before broadcast" holds.

A write is data, not code: prepared statements with their parameters. A batch merges
them per statement and runs each statement once with all its parameter sets
(`executemany`), so a batch of a hundred sessions' changes costs a handful of
database round trips instead of hundreds. Writes must therefore list their statements
in one global order (the store's `STATEMENT_ORDER` documents it); a batch keeps the
order in which statements first appear. With replicas, a fence (canopy/cluster/lease.py)
runs first in every batch's transaction and refuses writes for sessions whose lease
this replica lost. The batches run on one connection kept open
for them; it is replaced after any error. If a batch fails, its writes are retried one
by one, so a single bad write fails alone and the others still land.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("canopy.store")

MAX_BATCH = 256


@dataclass(slots=True)
class Write:
    """One caller's part of a transaction: `before` (a read-modify-write, rarely needed) runs
    first, then each statement with its parameters."""

    ops: list[tuple[Executable, dict[str, Any]]] = field(default_factory=list)
    before: Callable[[Connection], None] | None = None
    session_id: str | None = None  # the session the write belongs to, for the fence


# Raises (nothing is written) unless this replica still holds every named session's lease.
Fence = Callable[[Connection, Iterable[str]], None]


Pending = tuple[Write, "asyncio.Future[None]"]


def run_batch(conn: Connection, writes: list[Write], fence: Fence | None = None) -> None:
    if fence is not None:
        fence(conn, [w.session_id for w in writes if w.session_id is not None])
    for write in writes:
        if write.before is not None:
            write.before(conn)
    merged: dict[Executable, list[dict[str, Any]]] = {}
    for write in writes:
        for statement, params in write.ops:
            merged.setdefault(statement, []).append(params)
    for statement, param_sets in merged.items():
        conn.execute(statement, param_sets)


class GroupCommitter:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._pending: list[Pending] = []
        self._wakeup = asyncio.Event()
        self._inflight: list[Pending] = []
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None
        self.fence: Fence | None = None

    async def write(self, work: Write) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="group-commit")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((work, done))
        self._wakeup.set()
        await done

    async def close(self) -> None:
        """Lets queued writes finish, then stops the writer task and closes its connection."""
        waiting = [done for _, done in self._pending + self._inflight]
        if waiting and self._task is not None and not self._task.done():
            await asyncio.gather(*waiting, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop_connection()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                self._inflight = batch
                await self._commit(batch)
                self._inflight = []

    async def _commit(self, batch: list[Pending]) -> None:
        writes = [work for work, _ in batch]
        try:
            if self._conn is None:
                self._conn = await self.engine.connect()
            async with self._conn.begin():
                await self._conn.run_sync(run_batch, writes, self.fence)
        except Exception as exc:
            await self._drop_connection()  # whatever state it is in, the next batch starts clean
            if len(batch) == 1:
                self._settle(batch, exc)
                return
            log.warning("a batch of %d writes failed; retrying them one by one", len(batch))
            for item in batch:
                await self._commit([item])
            return
        self._settle(batch)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                log.warning("could not close the group-commit connection cleanly", exc_info=True)

    @staticmethod
    def _settle(batch: list[Pending], error: Exception | None = None) -> None:
        for _, done in batch:
            if done.done():  # the caller was cancelled; the write itself still happened (or failed) as told
                continue
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(None)
