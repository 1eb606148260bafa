"""Session leases in PostgreSQL: a replica serves a session only while it holds its lease.

A lease row is `(session_id, owner, epoch, expires_at)`. Taking a lease that is free or
expired bumps the epoch; the holder renews all its leases in one statement every TTL/3.
Every commit a replica makes for a session is fenced (`Fence.check`, inside the commit's
own transaction): the row must still name this replica, with the epoch it took, unexpired.
The check locks the row FOR SHARE, so a takeover waits for the commit, and a commit that
starts after a takeover sees the new epoch and is refused: a replica that lost its lease
(paused past its TTL, cut off from the database) can never commit again.

Times are the database's (`now()`), so replicas' clocks do not matter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from canopy.db import session_leases as leases

log = logging.getLogger("canopy.cluster")


class LeaseLostError(Exception):
    """A commit for a session whose lease this replica no longer holds: nothing was written."""

    def __init__(self, session_ids: Iterable[str]) -> None:
        self.session_ids = sorted(set(session_ids))
        super().__init__(f"lease lost for session(s) {', '.join(self.session_ids)}")


@dataclass(frozen=True, slots=True)
class Lease:
    session_id: str
    owner: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Holder:
    owner: str
    epoch: int
    seconds_left: float  # <= 0: expired
    address: str | None  # where the other replicas reach the holder (REPLICA_URL); None from an older release


class Leases:
    """This replica's leases: take, renew, release, and the fence its commits run."""

    def __init__(self, engine: AsyncEngine, owner: str, ttl_seconds: float, address: str | None = None) -> None:
        self.engine = engine
        self.owner = owner
        self.address = address
        self.ttl = timedelta(seconds=ttl_seconds)
        self.held: dict[str, Lease] = {}
        # Told (synchronously) which sessions were lost: the manager drops them and closes their tabs.
        self.on_lost: Callable[[list[str]], None] | None = None

    async def acquire(self, session_id: str) -> Lease | None:
        """Takes the lease if it is free, expired or already ours (a new epoch each time);
        None while another replica holds it."""
        insert = pg_insert(leases).values(
            session_id=session_id,
            owner=self.owner,
            epoch=1,
            expires_at=func.now() + self.ttl,
            address=self.address,
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[leases.c.session_id],
            set_={
                "owner": self.owner,
                "epoch": leases.c.epoch + 1,
                "expires_at": func.now() + self.ttl,
                "address": self.address,
            },
            where=(leases.c.expires_at < func.now()) | (leases.c.owner == self.owner),
        ).returning(leases.c.epoch)
        async with self.engine.begin() as conn:
            epoch = (await conn.execute(stmt)).scalar()
        if epoch is None:
            return None
        lease = Lease(session_id, self.owner, int(epoch))
        self.held[session_id] = lease
        return lease

    async def holder(self, session_id: str) -> Holder | None:
        seconds_left = func.extract("epoch", leases.c.expires_at - func.now())
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(leases.c.owner, leases.c.epoch, seconds_left.label("left"), leases.c.address).where(
                        leases.c.session_id == session_id
                    )
                )
            ).first()
        return None if row is None else Holder(row.owner, row.epoch, float(row.left), row.address)

    async def renew(self) -> list[str]:
        """Extends every lease held; returns the sessions whose lease was lost (taken over)."""
        if not self.held:
            return []
        ids = list(self.held)
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    update(leases)
                    .where(leases.c.owner == self.owner, leases.c.session_id.in_(ids))
                    .values(expires_at=func.now() + self.ttl)
                    .returning(leases.c.session_id, leases.c.epoch)
                )
            ).all()
        kept = {(r.session_id, r.epoch) for r in rows}
        # Only the leases renewed here: one taken meanwhile is not in `ids`.
        lost = [sid for sid in ids if (lease := self.held.get(sid)) is not None and (sid, lease.epoch) not in kept]
        self._lose(lost)
        return lost

    async def release(self, session_id: str) -> None:
        """Expires our lease at once (the epoch stays), so the next replica need not wait."""
        lease = self.held.pop(session_id, None)
        if lease is None:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(leases)
                .where(leases.c.session_id == session_id, leases.c.owner == self.owner, leases.c.epoch == lease.epoch)
                .values(expires_at=func.now() - timedelta(seconds=1))
            )

    def forget(self, session_id: str) -> None:
        self.held.pop(session_id, None)

    def _lose(self, session_ids: list[str]) -> None:
        for sid in session_ids:
            self.held.pop(sid, None)
        if session_ids and self.on_lost is not None:
            self.on_lost(session_ids)

    # --- fencing ----------------------------------------------------------------------

    def check(self, conn: Connection, session_ids: Iterable[str]) -> None:
        """Inside a commit's transaction: raises LeaseLostError unless every session's lease is
        still ours, at our epoch, unexpired; the rows stay share-locked until the commit ends."""
        wanted = {sid: self.held.get(sid) for sid in set(session_ids)}
        missing = [sid for sid, lease in wanted.items() if lease is None]
        if missing:
            raise LeaseLostError(missing)
        rows = conn.execute(
            select(leases.c.session_id, leases.c.epoch)
            .where(
                leases.c.session_id.in_(list(wanted)),
                leases.c.owner == literal(self.owner),
                leases.c.expires_at > func.now(),
            )
            .with_for_update(read=True)
        ).all()
        valid = {(r.session_id, r.epoch) for r in rows}
        lost = [sid for sid, lease in wanted.items() if lease is not None and (sid, lease.epoch) not in valid]
        if lost:
            log.warning("commit refused: lease lost for %s", ", ".join(lost))
            self._lose(lost)
            raise LeaseLostError(lost)
