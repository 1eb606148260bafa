"""Leases, fencing and cross-replica events on a real PostgreSQL (canopy/cluster)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from canopy import db
from canopy.cluster.lease import LeaseLostError, Leases
from canopy.cluster.notify import ClusterBus
from canopy.realtime.store import INITIAL_TREE, LoggedChange, SessionStore, Step
from canopy.users import create_user

pytestmark = [pytest.mark.backends("postgres"), pytest.mark.timeout(60)]


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    """Polls an async or sync check (a poll period, not a synchronisation sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("condition not met in time")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    await db.init_database(engine)
    yield engine
    await engine.dispose()


async def a_session(store: SessionStore) -> str:
    user = await create_user(store.engine, "lease-user", "not-a-real-hash")
    return (await store.create(user.id, "t")).id


def change(rev: int) -> LoggedChange:
    node = {"id": f"n{rev}", "value": "v", "children": []}
    return LoggedChange(rev, None, Step({"action": "add", "path": "/root/children", "node": node},
                                        {"action": "remove", "path": f"/root/n{rev}"}))


async def test_one_holder_at_a_time_and_the_epoch_only_grows(engine: AsyncEngine) -> None:
    a, b = Leases(engine, "replica-a", 30), Leases(engine, "replica-b", 30)
    first = await a.acquire("s1")
    assert first is not None and first.epoch == 1
    assert await b.acquire("s1") is None
    holder = await b.holder("s1")
    assert holder is not None and holder.owner == "replica-a" and holder.seconds_left > 20
    await a.release("s1")
    taken = await b.acquire("s1")
    assert taken is not None and taken.epoch == 2 and "s1" not in a.held
    assert await a.renew() == []  # nothing held any more: nothing to lose


async def test_an_expired_lease_is_taken_over_and_the_old_holder_learns_it(engine: AsyncEngine) -> None:
    a, b = Leases(engine, "replica-a", 0.3), Leases(engine, "replica-b", 30)
    lost: list[str] = []
    a.on_lost = lost.extend
    await a.acquire("s1")
    await eventually(lambda: b.acquire("s1"))
    assert await a.renew() == ["s1"] and lost == ["s1"] and "s1" not in a.held


async def test_renewal_keeps_a_lease_alive(engine: AsyncEngine) -> None:
    a, b = Leases(engine, "replica-a", 1.0), Leases(engine, "replica-b", 1.0)
    await a.acquire("s1")
    for _ in range(4):
        assert await a.renew() == []
        assert await b.acquire("s1") is None
        holder = await b.holder("s1")
        assert holder is not None and holder.seconds_left > 0.5


async def test_a_commit_after_losing_the_lease_is_refused_and_writes_nothing(engine: AsyncEngine) -> None:
    store_a, store_b = SessionStore(engine), SessionStore(engine)
    a, b = Leases(engine, "replica-a", 0.3), Leases(engine, "replica-b", 30)
    store_a.set_fence(a.check)
    store_b.set_fence(b.check)
    sid = await a_session(store_a)
    try:
        with pytest.raises(LeaseLostError):  # never taken: refused too
            await store_a.commit_changes(sid, [change(1)], rev=1, node_count=2)
        await a.acquire(sid)
        await store_a.commit_changes(sid, [change(1)], rev=1, node_count=2)
        await eventually(lambda: b.acquire(sid))
        await store_b.commit_changes(sid, [change(2)], rev=2, node_count=3)
        with pytest.raises(LeaseLostError) as refused:  # the paused replica's pending commit
            await store_a.commit_changes(sid, [change(2)], rev=2, node_count=3)
        assert refused.value.session_ids == [sid]
        with pytest.raises(LeaseLostError):
            await store_a.set_seq_ceiling(sid, 1)
        stored = await store_b.load(sid, message_limit=10)
        assert stored is not None and [d["node"]["id"] for d in stored.log] == ["n1", "n2"]
        async with engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(db.changes))).scalar() == 2
        assert stored.snapshot == INITIAL_TREE
    finally:
        await store_a.close()
        await store_b.close()


async def test_events_reach_the_other_replicas_only(engine: AsyncEngine) -> None:
    bus_a, bus_b = ClusterBus(engine, "replica-a"), ClusterBus(engine, "replica-b")
    seen_a: list[dict[str, Any]] = []
    seen_b: list[dict[str, Any]] = []

    async def record_a(event: dict[str, Any]) -> None:
        seen_a.append(event)

    async def record_b(event: dict[str, Any]) -> None:
        seen_b.append(event)

    bus_a.on("deleted", record_a)
    bus_b.on("deleted", record_b)
    await bus_a.start()
    await bus_b.start()
    try:
        assert bus_a.listening.is_set() and bus_b.listening.is_set()
        await bus_a.publish("deleted", "s1")
        await bus_a.publish("unknown-type", "s1")
        await eventually(lambda: seen_b)
        assert seen_b == [{"type": "deleted", "session": "s1", "from": "replica-a"}]
        await bus_b.publish("deleted", "s2")
        await eventually(lambda: seen_a)
        assert seen_a[0]["session"] == "s2" and len(seen_b) == 1
        with pytest.raises(ValueError, match="too large"):
            await bus_a.publish("renamed", "s1", title="x" * 8000)
    finally:
        await bus_a.close()
        await bus_b.close()
