"""Session persistence: metadata, the append-only change log, change sets, chat messages.

The tree is stored as a snapshot at `snapshot_rev` plus every change after it, so a
session loads by replaying its log. Every accepted change is committed here before
it is broadcast; compaction rewrites the snapshot and drops log rows no undo needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, case, delete, func, insert, not_, null, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import BindParameter

from canopy import db
from canopy.realtime.changes import VIA_VALUES, Actor, ChangeSet
from canopy.realtime.group_commit import Fence, GroupCommitter, Write
from canopy.tree import Change

INITIAL_TREE: dict[str, Any] = {"id": "root", "value": "Root", "children": []}
UNDO_DEPTH = 100  # change sets kept undoable per session
_INITIAL_SNAPSHOT = orjson.dumps(INITIAL_TREE).decode()


def db_text(value: str) -> str:
    """PostgreSQL's text type cannot hold NUL: it becomes U+FFFD on both backends alike (prompts
    and model output may carry one; titles refuse it at the API)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SessionMeta:
    id: str
    user_id: str
    title: str
    updated_at: datetime
    node_count: int


@dataclass(frozen=True, slots=True)
class StoredMessage:
    role: str
    content: str
    created_at: str
    meta: dict[str, Any] | None
    # Who wrote it (schema 10): a prompt's user ("user", or "agent" with the token's name), an answer's
    # prompter ("assistant"). None for messages stored before authors were.
    author: Actor | None = None


@dataclass(slots=True)
class StoredProposal:
    """A review-mode proposal as stored; `outcome` is its proposal_resolved data once decided."""

    id: str
    base_rev: int
    author_user_id: str
    summary: str
    deltas: list[dict[str, Any]]
    created_at: str
    outcome: dict[str, Any] | None = None
    # How it came (schema 8): "assistant" (a review-mode turn), "agent" (an outside agent's tool call,
    # `author_name` the token's name) or "import" (`author_name` the format).
    author_via: str = "assistant"
    author_name: str | None = None


@dataclass(slots=True)
class Access:
    """Who may open a session: its owner and members (user id -> role), and everyone's username."""

    owner_id: str
    roles: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def role_of(self, user_id: str) -> str | None:
        return "owner" if user_id == self.owner_id else self.roles.get(user_id)


@dataclass(slots=True)
class StoredSession:
    meta: SessionMeta
    snapshot: dict[str, Any]
    snapshot_rev: int
    log: list[dict[str, Any]]  # deltas after snapshot_rev, in rev order
    seq_ceiling: int
    change_sets: list[ChangeSet]
    messages: list[StoredMessage]
    access: Access = field(default_factory=lambda: Access(""))
    review_mode: bool = False
    proposals: list[StoredProposal] = field(default_factory=list)  # the open ones, oldest first
    decided_proposals: list[str] = field(default_factory=list)  # ids of those decided already


# Group-committed statements, built once. Every write lists the ones it uses in this order, so
# a merged batch (one executemany per statement) keeps each write's own order.
_INSERT_SET = insert(db.change_sets)
_MARK_SET = (
    update(db.change_sets)
    .where(
        db.change_sets.c.session_id == bindparam("b_session"),
        db.change_sets.c.number == bindparam("b_number"),
    )
    .values(undone=bindparam("b_undone"))
)
_INSERT_CHANGE = insert(db.changes)
_INSERT_MESSAGE = insert(db.messages)
_SET_REV = (
    update(db.sessions)
    .where(db.sessions.c.id == bindparam("b_session"))
    .values(rev=bindparam("b_rev"), node_count=bindparam("b_node_count"), updated_at=bindparam("b_updated_at"))
)
_SET_REV_SEQ = _SET_REV.values(seq_ceiling=bindparam("b_seq_ceiling"))
_TOUCH = (
    update(db.sessions).where(db.sessions.c.id == bindparam("b_session")).values(updated_at=bindparam("b_updated_at"))
)
_TOUCH_SEQ = _TOUCH.values(seq_ceiling=bindparam("b_seq_ceiling"))
_RESOLVE_PROPOSAL = (
    update(db.proposals)
    .where(
        db.proposals.c.session_id == bindparam("b_session"),
        db.proposals.c.id == bindparam("b_id"),
    )
    .values(status="resolved", outcome=bindparam("b_outcome"))
)
STATEMENT_ORDER = (
    _INSERT_SET,
    _MARK_SET,
    _INSERT_CHANGE,
    _INSERT_MESSAGE,
    _SET_REV,
    _SET_REV_SEQ,
    _TOUCH,
    _TOUCH_SEQ,
    _RESOLVE_PROPOSAL,
)


# Read on socket attaches and session loads: built once, not per call (building a statement is event-loop
# time on every attach).
_MOST_RECENT = (
    select(db.sessions.c.id)
    .where(db.sessions.c.user_id == bindparam("user_id"))
    .order_by(db.sessions.c.updated_at.desc())
    .limit(1)
)
_OWNER, _MEMBER = db.users.alias("owner"), db.users.alias("member")
_ACCESS = (
    select(
        db.sessions.c.user_id.label("owner_id"),
        _OWNER.c.username.label("owner_name"),
        db.session_members.c.user_id.label("member_id"),
        db.session_members.c.role,
        _MEMBER.c.username.label("member_name"),
    )
    .select_from(
        db.sessions.outerjoin(_OWNER, _OWNER.c.id == db.sessions.c.user_id)
        .outerjoin(db.session_members, db.session_members.c.session_id == db.sessions.c.id)
        .outerjoin(_MEMBER, _MEMBER.c.id == db.session_members.c.user_id)
    )
    .where(db.sessions.c.id == bindparam("session_id"))
)
_PROPOSALS = (  # every proposal of a session; the decided ones without their (unused) deltas
    select(
        *(col for col in db.proposals.c if col.name != "deltas"),
        case((db.proposals.c.status == "open", db.proposals.c.deltas), else_=null()).label("deltas"),
    )
    .where(db.proposals.c.session_id == bindparam("session_id"))
    .order_by(db.proposals.c.created_at, db.proposals.c.id)
)


def _stored_size() -> Select[tuple[int | None, int | None, int | None]]:
    s, c, m = db.sessions, db.changes, db.messages
    user: BindParameter[str] = bindparam("user_id")
    mine = select(s.c.id).where(s.c.user_id == user).scalar_subquery()
    return select(
        select(func.sum(func.length(s.c.snapshot))).where(s.c.user_id == user).scalar_subquery(),
        select(func.sum(func.length(c.c.delta) + func.length(c.c.inverse)))
        .where(c.c.session_id.in_(mine))
        .scalar_subquery(),
        select(func.sum(func.length(m.c.content) + func.coalesce(func.length(m.c.meta), 0)))
        .where(m.c.session_id.in_(mine))
        .scalar_subquery(),
    )


_STORED_SIZE = _stored_size()  # snapshots, change log, messages: three sums in one statement


def _drop_undone(conn: Connection, session_id: str, user_id: str) -> None:
    """A user's new change set discards their redo stack (undone change sets of others stay)."""
    cs, c, s = db.change_sets, db.changes, db.sessions
    owner = conn.execute(select(s.c.user_id).where(s.c.id == session_id)).scalar()
    mine = cs.c.actor_user_id == user_id
    if owner == user_id:  # rows from before schema 3 have no actor: they are the owner's
        mine = mine | cs.c.actor_user_id.is_(None)
    undone = [
        r[0]
        for r in conn.execute(select(cs.c.number).where(cs.c.session_id == session_id, cs.c.undone.is_(True), mine))
    ]
    if undone:
        conn.execute(update(c).where(c.c.session_id == session_id, c.c.change_set.in_(undone)).values(change_set=None))
        conn.execute(delete(cs).where(cs.c.session_id == session_id, cs.c.number.in_(undone)))


def _author(row: Any) -> Actor | None:
    """A message's author; None for rows stored before schema 10 (or with a `via` this code does not know)."""
    if row.author_user_id is None:
        return None
    via = next((v for v in VIA_VALUES if v == row.author_via), None)
    return None if via is None else Actor(row.author_user_id, via, row.author_name)


def _actor(row: Any, owner: str) -> Actor:
    """A change set's actor; rows from before actors were stored (schema 2) get the session's owner
    and their origin."""
    via = row.actor_via if row.actor_via in VIA_VALUES else row.origin
    return Actor(row.actor_user_id or owner, via if via in VIA_VALUES else "user", row.actor_name)


class SessionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.group = GroupCommitter(engine)

    # --- sessions -----------------------------------------------------------------

    async def create(self, user_id: str, title: str) -> SessionMeta:
        moment = now()
        meta = SessionMeta(str(uuid.uuid4()), user_id, db_text(title), moment, 1)
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(db.sessions).values(
                    id=meta.id,
                    user_id=user_id,
                    title=meta.title,
                    created_at=moment,
                    updated_at=moment,
                    rev=0,
                    seq_ceiling=0,
                    node_count=1,
                    snapshot=_INITIAL_SNAPSHOT,
                    snapshot_rev=0,
                )
            )
        return meta

    async def create_loaded(self, user_id: str, username: str, title: str) -> StoredSession:
        """Creates a session and returns it as `load` would read it back, without reading it back:
        everything in it was just written (an owner named `username`, no members, no history)."""
        meta = await self.create(user_id, title)
        return StoredSession(
            meta, orjson.loads(_INITIAL_SNAPSHOT), 0, [], 0, [], [], Access(user_id, {}, {user_id: username})
        )

    async def list_for(self, user_id: str) -> list[SessionMeta]:
        s = db.sessions
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(s.c.id, s.c.user_id, s.c.title, s.c.updated_at, s.c.node_count)
                .where(s.c.user_id == user_id)
                .order_by(s.c.updated_at.desc(), s.c.id)
            )
            return [SessionMeta(r.id, r.user_id, r.title, r.updated_at, r.node_count) for r in rows]

    async def count_for(self, user_id: str) -> int:
        s = db.sessions
        async with self.engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(s).where(s.c.user_id == user_id))).scalar_one()
            )

    async def stored_size(self, user_id: str) -> int:
        """Characters of snapshots, change log and chat messages stored for the user's sessions (the
        storage quota's measure: JSON and text, so about their bytes)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(_STORED_SIZE, {"user_id": user_id})).one()
        return sum(int(part or 0) for part in row)

    async def list_visible(self, user_id: str) -> list[tuple[SessionMeta, str, str]]:
        """The user's own sessions and those shared with them, most recently updated first:
        (meta, role, owner's username)."""
        s, m, u = db.sessions, db.session_members, db.users
        role = func.coalesce(m.c.role, "owner")
        query = (
            select(
                s.c.id,
                s.c.user_id,
                s.c.title,
                s.c.updated_at,
                s.c.node_count,
                role.label("role"),
                u.c.username.label("owner"),
            )
            .select_from(
                s.join(u, u.c.id == s.c.user_id).outerjoin(m, and_(m.c.session_id == s.c.id, m.c.user_id == user_id))
            )
            .where((s.c.user_id == user_id) | m.c.user_id.is_not(None))
            .order_by(s.c.updated_at.desc(), s.c.id)
        )
        async with self.engine.connect() as conn:
            return [
                (SessionMeta(r.id, r.user_id, r.title, r.updated_at, r.node_count), r.role, r.owner)
                for r in await conn.execute(query)
            ]

    # --- members ------------------------------------------------------------------

    async def add_member(self, session_id: str, user_id: str, role: str) -> bool:
        """False when they are a member already."""
        m = db.session_members
        async with self.engine.begin() as conn:
            exists = (
                await conn.execute(select(m.c.role).where(m.c.session_id == session_id, m.c.user_id == user_id))
            ).first()
            if exists is not None:
                return False
            await conn.execute(insert(m).values(session_id=session_id, user_id=user_id, role=role, created_at=now()))
        return True

    async def set_member_role(self, session_id: str, user_id: str, role: str | None) -> bool:
        """Changes a member's role, or removes them (`role` None); False when they are not a member."""
        m = db.session_members
        where = (m.c.session_id == session_id, m.c.user_id == user_id)
        async with self.engine.begin() as conn:
            if role is None:
                result = await conn.execute(delete(m).where(*where))
            else:
                result = await conn.execute(update(m).where(*where).values(role=role))
        return bool(result.rowcount)

    async def find_user(self, username: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(db.users.c.id).where(db.users.c.username == username))).scalar()

    # --- history ------------------------------------------------------------------

    async def history(
        self, session_id: str, owner_id: str, limit: int, before: int | None
    ) -> list[tuple[ChangeSet, str | None, int]]:
        """Change sets, newest first: (change set with its changes, created_at, rev after its last change)."""
        cs, c = db.change_sets, db.changes
        query = select(cs).where(cs.c.session_id == session_id)
        if before is not None:
            query = query.where(cs.c.number < before)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(cs.c.number.desc()).limit(limit))).all()
            sets = {
                r.number: (
                    ChangeSet(r.number, _actor(r, owner_id), [], r.undone),
                    iso(r.created_at) if r.created_at else None,
                )
                for r in rows
            }
            revs: dict[int, int] = {}
            for r in await conn.execute(
                select(c.c.change_set, c.c.rev, c.c.delta, c.c.inverse)
                .where(c.c.session_id == session_id, c.c.change_set.in_(list(sets)))
                .order_by(c.c.rev)
            ):
                sets[r.change_set][0].changes.append(Change(orjson.loads(r.delta), orjson.loads(r.inverse)))
                revs[r.change_set] = r.rev
        return [(change_set, created, revs.get(number, 0)) for number, (change_set, created) in sets.items()]

    async def meta(self, session_id: str) -> SessionMeta | None:
        s = db.sessions
        async with self.engine.connect() as conn:
            r = (
                await conn.execute(
                    select(s.c.id, s.c.user_id, s.c.title, s.c.updated_at, s.c.node_count).where(s.c.id == session_id)
                )
            ).first()
        return None if r is None else SessionMeta(r.id, r.user_id, r.title, r.updated_at, r.node_count)

    async def stored_rev(self, session_id: str) -> int | None:
        """The session's last committed rev; None if there is no such session."""
        async with self.engine.connect() as conn:
            rev = (await conn.execute(select(db.sessions.c.rev).where(db.sessions.c.id == session_id))).scalar()
        return None if rev is None else int(rev)

    async def most_recent(self, user_id: str) -> str | None:
        """The id of the user's most recently updated own session (every socket attaching without an id asks)."""
        async with self.engine.connect() as conn:
            return (await conn.execute(_MOST_RECENT, {"user_id": user_id})).scalar()

    async def rename(self, session_id: str, title: str) -> None:
        # updated_at stays: a rename is not activity, and the list (most recent first) keeps its order.
        async with self.engine.begin() as conn:
            await conn.execute(update(db.sessions).where(db.sessions.c.id == session_id).values(title=db_text(title)))

    async def delete(self, session_id: str) -> None:
        async with self.engine.begin() as conn:
            # The lease row too: a replica that missed the "deleted" event loses it at its next renewal.
            for table in (db.changes, db.change_sets, db.messages, db.session_members, db.proposals, db.session_leases):
                await conn.execute(delete(table).where(table.c.session_id == session_id))
            await conn.execute(delete(db.sessions).where(db.sessions.c.id == session_id))

    async def load(self, session_id: str, message_limit: int) -> StoredSession | None:
        """The session as stored, in six statements (one more when a change set's actor or a message's
        author is neither its owner nor a member): the row, change sets, their changes and the log,
        messages, access, proposals."""
        s, cs, m = db.sessions, db.change_sets, db.messages
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(s).where(s.c.id == session_id))).first()
            if row is None:
                return None
            sets = {
                r.number: ChangeSet(r.number, _actor(r, row.user_id), [], r.undone)
                for r in await conn.execute(select(cs).where(cs.c.session_id == session_id).order_by(cs.c.number))
            }
            log = await _changes(conn, session_id, row.snapshot_rev, sets)
            recent = (
                await conn.execute(
                    select(m).where(m.c.session_id == session_id).order_by(m.c.id.desc()).limit(message_limit)
                )
            ).all()
            messages = [
                StoredMessage(
                    r.role, r.content, iso(r.created_at), orjson.loads(r.meta) if r.meta else None, _author(r)
                )
                for r in reversed(recent)
            ]
            access = await _access(conn, session_id) or Access(row.user_id)
            # Actors and authors who are no longer members (or never were: an old owner's rows) still get names;
            # members' names are known already, so usually this asks nothing.
            actors = {cs.actor.user_id for cs in sets.values()} | {m.author.user_id for m in messages if m.author}
            access.names.update(await _names(conn, actors - set(access.names)))
            open_proposals, decided = await _proposals(conn, session_id)
        meta = SessionMeta(row.id, row.user_id, row.title, row.updated_at, row.node_count)
        return StoredSession(
            meta,
            orjson.loads(row.snapshot),
            row.snapshot_rev,
            log,
            row.seq_ceiling,
            list(sets.values()),
            messages,
            access,
            bool(row.review_mode),
            open_proposals,
            decided,
        )

    async def access(self, session_id: str) -> Access | None:
        """The session's owner and members, or None for an unknown session."""
        async with self.engine.connect() as conn:
            return await _access(conn, session_id)

    async def usernames(self, user_ids: set[str]) -> dict[str, str]:
        async with self.engine.connect() as conn:
            return await _names(conn, user_ids)

    # --- proposals ----------------------------------------------------------------

    async def add_proposal(self, session_id: str, proposal: StoredProposal) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(db.proposals).values(
                    session_id=session_id,
                    id=proposal.id,
                    base_rev=proposal.base_rev,
                    author_user_id=proposal.author_user_id,
                    author_via=proposal.author_via,
                    author_name=proposal.author_name,
                    summary=proposal.summary,
                    deltas=orjson.dumps(proposal.deltas).decode(),
                    status="open",
                    outcome=None,
                    created_at=datetime.fromisoformat(proposal.created_at.replace("Z", "+00:00")),
                )
            )

    async def set_review_mode(self, session_id: str, on: bool) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(db.sessions).where(db.sessions.c.id == session_id).values(review_mode=on))

    async def resolve_proposal(self, session_id: str, proposal_id: str, outcome: dict[str, Any]) -> None:
        await self.group.write(Write([(_RESOLVE_PROPOSAL, _resolution(session_id, proposal_id, outcome))]))

    # --- changes ------------------------------------------------------------------

    async def commit_changes(
        self,
        session_id: str,
        changes: Sequence[Change],
        *,
        rev: int,
        node_count: int,
        change_set: int | None,
        new_set: ChangeSet | None = None,
        mark: tuple[int, bool] | None = None,
        drop_undone: bool = False,
        seq_ceiling: int | None = None,
        resolves: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """One transaction (shared with other sessions' writes): log rows (the changes up to `rev`,
        belonging to `change_set`), the change-set bookkeeping, the session's rev and node count, a
        new seq ceiling when one is due, and the outcome of the proposal these changes resolve.
        `drop_undone` discards the redo stack of `new_set`'s actor."""
        moment = now()
        dropper = new_set.actor.user_id if drop_undone and new_set is not None else None
        write = Write(
            before=(lambda conn: _drop_undone(conn, session_id, dropper)) if dropper else None, session_id=session_id
        )
        if new_set is not None:
            actor = new_set.actor
            write.ops.append(
                (
                    _INSERT_SET,
                    {
                        "session_id": session_id,
                        "number": new_set.number,
                        "origin": actor.origin,
                        "actor_user_id": actor.user_id,
                        "actor_via": actor.via,
                        "actor_name": actor.name,
                        "undone": False,
                        "created_at": moment,
                    },
                )
            )
        if mark is not None:
            write.ops.append((_MARK_SET, {"b_session": session_id, "b_number": mark[0], "b_undone": mark[1]}))
        first_rev = rev - len(changes) + 1
        write.ops.extend(
            (
                _INSERT_CHANGE,
                {
                    "session_id": session_id,
                    "rev": first_rev + i,
                    "change_set": change_set,
                    "delta": orjson.dumps(ch.delta).decode(),
                    "inverse": orjson.dumps(ch.inverse).decode(),
                },
            )
            for i, ch in enumerate(changes)
        )
        session_row = {"b_session": session_id, "b_rev": rev, "b_node_count": node_count, "b_updated_at": moment}
        if seq_ceiling is None:
            write.ops.append((_SET_REV, session_row))
        else:
            write.ops.append((_SET_REV_SEQ, {**session_row, "b_seq_ceiling": seq_ceiling}))
        if resolves is not None:
            write.ops.append((_RESOLVE_PROPOSAL, _resolution(session_id, *resolves)))
        await self.group.write(write)

    async def close(self) -> None:
        await self.group.close()

    def set_fence(self, fence: Fence | None) -> None:
        """Replicas: every write for a session is refused unless this replica holds its lease."""
        self.group.fence = fence

    async def _fence(self, conn: AsyncConnection, session_id: str) -> None:
        if self.group.fence is not None:
            await conn.run_sync(self.group.fence, [session_id])

    async def set_seq_ceiling(self, session_id: str, ceiling: int) -> None:
        async with self.engine.begin() as conn:
            await self._fence(conn, session_id)
            await conn.execute(update(db.sessions).where(db.sessions.c.id == session_id).values(seq_ceiling=ceiling))

    async def compact(self, session_id: str, snapshot: bytes, rev: int) -> None:
        """New snapshot at `rev`; log rows before it go unless an undoable change set still needs them."""
        s, c, cs = db.sessions, db.changes, db.change_sets
        async with self.engine.begin() as conn:
            await self._fence(conn, session_id)
            await conn.execute(
                update(s).where(s.c.id == session_id).values(snapshot=snapshot.decode(), snapshot_rev=rev)
            )
            keep_from = (
                await conn.execute(
                    select(cs.c.number)
                    .where(cs.c.session_id == session_id)
                    .order_by(cs.c.number.desc())
                    .offset(UNDO_DEPTH - 1)
                    .limit(1)
                )
            ).scalar()
            if keep_from is not None:
                await conn.execute(delete(cs).where(cs.c.session_id == session_id, cs.c.number < keep_from))
            kept = select(cs.c.number).where(cs.c.session_id == session_id)
            await conn.execute(
                delete(c).where(
                    and_(
                        c.c.session_id == session_id,
                        c.c.rev <= rev,
                        (c.c.change_set.is_(None)) | not_(c.c.change_set.in_(kept)),
                    )
                )
            )

    # --- messages -----------------------------------------------------------------

    async def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        meta: dict[str, Any] | None = None,
        seq_ceiling: int | None = None,
        author: Actor | None = None,
    ) -> StoredMessage:
        moment = now()
        touch: tuple[Any, dict[str, Any]] = (_TOUCH, {"b_session": session_id, "b_updated_at": moment})
        if seq_ceiling is not None:
            touch = (_TOUCH_SEQ, {**touch[1], "b_seq_ceiling": seq_ceiling})
        await self.group.write(
            Write(
                session_id=session_id,
                ops=[
                    (
                        _INSERT_MESSAGE,
                        {
                            "session_id": session_id,
                            "role": role,
                            "content": db_text(content),
                            "meta": orjson.dumps(meta).decode() if meta else None,
                            "created_at": moment,
                            # Always every key: a group commit runs one executemany over many writes' rows.
                            "author_user_id": author.user_id if author else None,
                            "author_via": author.via if author else None,
                            "author_name": author.name if author else None,
                        },
                    ),
                    touch,
                ],
            )
        )
        return StoredMessage(role, content, iso(moment), meta, author)


def _resolution(session_id: str, proposal_id: str, outcome: dict[str, Any]) -> dict[str, Any]:
    return {"b_session": session_id, "b_id": proposal_id, "b_outcome": orjson.dumps(outcome).decode()}


async def _names(conn: AsyncConnection, user_ids: set[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    u = db.users
    rows = await conn.execute(select(u.c.id, u.c.username).where(u.c.id.in_(list(user_ids))))
    return {r.id: r.username for r in rows}


async def _access(conn: AsyncConnection, session_id: str) -> Access | None:
    """Owner, members and their names in one statement (a row per member); None for an unknown session."""
    rows = (await conn.execute(_ACCESS, {"session_id": session_id})).all()
    if not rows:
        return None
    first = rows[0]
    access = Access(first.owner_id)
    if first.owner_name is not None:
        access.names[first.owner_id] = first.owner_name
    for r in rows:
        if r.member_id is not None:
            access.roles[r.member_id] = r.role
            if r.member_name is not None:
                access.names[r.member_id] = r.member_name
    return access


async def _changes(
    conn: AsyncConnection, session_id: str, snapshot_rev: int, sets: dict[int, ChangeSet]
) -> list[dict[str, Any]]:
    """One read of the change log for both of its uses: the deltas after the snapshot (returned, in rev
    order, to replay) and the changes of the change sets still kept (appended to `sets`, for undo)."""
    c = db.changes
    wanted = c.c.rev > snapshot_rev
    if sets:
        wanted = wanted | c.c.change_set.in_(list(sets))
    log: list[dict[str, Any]] = []
    query = select(c.c.change_set, c.c.rev, c.c.delta, c.c.inverse).where(c.c.session_id == session_id, wanted)
    for r in await conn.execute(query.order_by(c.c.rev)):
        if r.rev > snapshot_rev:
            log.append(orjson.loads(r.delta))
        owner = sets.get(r.change_set) if r.change_set is not None else None
        if owner is not None:  # parsed again: the replayed delta and the kept change share no objects
            owner.changes.append(Change(orjson.loads(r.delta), orjson.loads(r.inverse)))
    return log


async def _proposals(conn: AsyncConnection, session_id: str) -> tuple[list[StoredProposal], list[str]]:
    """The open proposals (oldest first) and the ids of the decided ones, in one statement."""
    open_ones: list[StoredProposal] = []
    decided: list[str] = []
    for r in await conn.execute(_PROPOSALS, {"session_id": session_id}):
        if r.status != "open":
            decided.append(r.id)
            continue
        open_ones.append(
            StoredProposal(
                r.id,
                r.base_rev,
                r.author_user_id,
                r.summary,
                orjson.loads(r.deltas),
                iso(r.created_at),
                author_via=r.author_via or "assistant",  # NULL in rows stored before schema 8
                author_name=r.author_name,
            )
        )
    return open_ones, decided
