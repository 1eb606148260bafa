"""Unit tests of the group committer and of change-set actors in the store, on a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from canopy import db
from canopy.realtime.changes import Actor, ChangeSet
from canopy.realtime.group_commit import GroupCommitter, Write
from canopy.realtime.store import SessionStore, now
from canopy.tree import Tree

meta = MetaData()
items = Table("items", meta, Column("id", Integer, primary_key=True), Column("label", String(20)))
INSERT = insert(items)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    yield engine
    await engine.dispose()


def count_commits(engine: AsyncEngine) -> list[int]:
    commits = [0]

    def on_commit(_conn: Any) -> None:
        commits[0] += 1

    event.listen(engine.sync_engine, "commit", on_commit)
    return commits


async def rows(engine: AsyncEngine) -> list[tuple[int, str]]:
    async with engine.connect() as conn:
        return [(r.id, r.label) for r in await conn.execute(select(items).order_by(items.c.id))]


async def test_concurrent_writes_share_one_transaction_and_each_waits_for_it(engine: AsyncEngine) -> None:
    group = GroupCommitter(engine)
    commits = count_commits(engine)
    await asyncio.gather(*(group.write(Write([(INSERT, {"id": i, "label": f"r{i}"})])) for i in range(20)))
    assert await rows(engine) == [(i, f"r{i}") for i in range(20)]  # all stored once write() returned
    assert commits[0] == 1
    await group.close()


async def test_a_bad_write_fails_alone(engine: AsyncEngine) -> None:
    group = GroupCommitter(engine)
    await group.write(Write([(INSERT, {"id": 1, "label": "first"})]))
    results = await asyncio.gather(
        group.write(Write([(INSERT, {"id": 2, "label": "ok"})])),
        group.write(Write([(INSERT, {"id": 1, "label": "duplicate"})])),
        group.write(Write([(INSERT, {"id": 3, "label": "ok too"})])),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None and isinstance(results[1], IntegrityError)
    assert await rows(engine) == [(1, "first"), (2, "ok"), (3, "ok too")]
    await group.close()


async def test_a_write_runs_its_read_modify_step_first(engine: AsyncEngine) -> None:
    group = GroupCommitter(engine)
    seen: list[int] = []

    def before(conn: Any) -> None:
        seen.append(conn.execute(text("SELECT count(*) FROM items")).scalar())

    await group.write(Write([(INSERT, {"id": 1, "label": "a"})]))
    await group.write(Write([(INSERT, {"id": 2, "label": "b"})], before=before))
    assert seen == [1] and len(await rows(engine)) == 2
    await group.close()


async def test_close_lets_queued_writes_finish(engine: AsyncEngine) -> None:
    group = GroupCommitter(engine)
    pending = [asyncio.ensure_future(group.write(Write([(INSERT, {"id": i, "label": "x"})]))) for i in range(5)]
    await asyncio.ensure_future(group.close())  # scheduled after the writes, so it finds them queued
    assert len(await rows(engine)) == 5
    assert await asyncio.gather(*pending) == [None] * 5


# --- change-set actors ------------------------------------------------------------------


async def _store(tmp_path: Path) -> tuple[SessionStore, AsyncEngine]:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    await db.init_database(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(db.users).values(id="u1", username="alice", password_hash="x", created_at=now()))
    return SessionStore(engine), engine


async def test_a_change_set_keeps_its_actor(tmp_path: Path) -> None:
    store, engine = await _store(tmp_path)
    session = await store.create("u1", "t")
    tree = Tree.from_dict({"id": "root", "value": "Root", "children": []})
    change = tree.apply({"action": "add", "path": "/root/children", "node": {"id": "a", "value": "A"}})
    actor = Actor("u1", "assistant")
    await store.commit_changes(session.id, [change], rev=1, node_count=2, change_set=1, new_set=ChangeSet(1, actor))
    loaded = await store.load(session.id, 10)
    assert loaded is not None
    (change_set,) = loaded.change_sets
    assert change_set.actor == actor and change_set.changes == [change] and not change_set.undone
    await store.close()
    await engine.dispose()


async def test_change_sets_stored_before_actors_read_as_the_owner_and_their_origin(tmp_path: Path) -> None:
    """A schema-2 database (no actor columns) upgrades in place; its rows stay readable."""
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(_schema_2)
    await db.init_database(engine)  # migration 3 adds the columns
    store = SessionStore(engine)
    loaded = await store.load("s1", 10)
    assert loaded is not None
    assert [(cs.number, cs.actor) for cs in loaded.change_sets] == [
        (1, Actor("u1", "assistant")),
        (2, Actor("u1", "user")),
    ]
    async with engine.connect() as conn:
        assert (await conn.execute(select(db.schema_version.c.version))).scalar() == len(db.MIGRATIONS)
    await store.close()
    await engine.dispose()


def _schema_2(conn: Any) -> None:
    """What release 2 created: change_sets without actor columns, plus one session with two sets."""
    db.schema_version.create(conn)
    conn.execute(insert(db.schema_version).values(version=2))
    db.users.create(conn)
    db.refresh_tokens.create(conn)
    for table in (db.sessions, db.changes, db.messages):
        table.create(conn)
    conn.execute(
        text(
            "CREATE TABLE change_sets (session_id VARCHAR(36) NOT NULL REFERENCES sessions (id) "
            "ON DELETE CASCADE, number INTEGER NOT NULL, origin VARCHAR(16) NOT NULL, undone BOOLEAN "
            "NOT NULL, PRIMARY KEY (session_id, number))"
        )
    )
    moment = now()
    conn.execute(insert(db.users).values(id="u1", username="alice", password_hash="x", created_at=moment))
    conn.execute(
        insert(db.sessions).values(
            id="s1",
            user_id="u1",
            title="t",
            created_at=moment,
            updated_at=moment,
            rev=2,
            seq_ceiling=0,
            node_count=3,
            snapshot='{"id": "root", "value": "Root", "children": []}',
            snapshot_rev=0,
        )
    )
    for number, origin, node in ((1, "assistant", "a"), (2, "user", "b")):
        conn.execute(
            text("INSERT INTO change_sets (session_id, number, origin, undone) VALUES ('s1', :n, :o, 0)"),
            {"n": number, "o": origin},
        )
        delta = f'{{"action": "add", "path": "/root/children", "node": {{"id": "{node}", "value": "V"}}, "index": 0}}'
        conn.execute(
            insert(db.changes).values(
                session_id="s1",
                rev=number,
                change_set=number,
                delta=delta,
                inverse=f'{{"action": "remove", "path": "/root/{node}"}}',
            )
        )
