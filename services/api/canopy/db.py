"""Database engine, schema and versioned migrations.

Everything goes through SQLAlchemy Core so the same code runs on SQLite (the
default, a file in DATA_DIR, WAL mode) and on PostgreSQL (asyncpg) by URL alone; the
API tests run the store on both. Migrations are numbered functions applied in order at
start inside one transaction each;
`schema_version` records the last one applied, so an upgrade never drops data.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    false,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Access tokens carry it (claim `gen`); logout-all and a password change bump it, refusing older tokens.
    Column("token_generation", Integer, nullable=False, server_default="0"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("family_id", String(36), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("revoked", Boolean, nullable=False, default=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("rev", Integer, nullable=False),
    Column("seq_ceiling", Integer, nullable=False),
    Column("node_count", Integer, nullable=False),
    Column("snapshot", Text, nullable=False),
    Column("snapshot_rev", Integer, nullable=False),
    Column("review_mode", Boolean, nullable=False, default=False, server_default=false()),  # schema 6
    Index("ix_sessions_user_updated", "user_id", "updated_at"),
)

changes = Table(
    "changes",
    metadata,
    Column("session_id", String(36), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("rev", Integer, primary_key=True),
    Column("change_set", Integer, nullable=True),
    Column("delta", Text, nullable=False),
    Column("inverse", Text, nullable=False),
)

change_sets = Table(
    "change_sets",
    metadata,
    Column("session_id", String(36), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("origin", String(16), nullable=False),  # "user" | "assistant": the actor's tree_update origin
    Column("undone", Boolean, nullable=False, default=False),
    # Who made it (schema 3); NULL in older rows, read as the session's owner and `origin`.
    Column("actor_user_id", String(36), nullable=True),
    Column("actor_via", String(16), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=True),  # schema 6; NULL in older rows
    Column("actor_name", String(100), nullable=True),  # schema 7: an agent's token name, an import's format
)

# Who else may open a session (schema 6): the owner is sessions.user_id, never a row here.
session_members = Table(
    "session_members",
    metadata,
    Column("session_id", String(36), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False),  # "editor" | "viewer"
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_session_members_user", "user_id"),
)

# Review-mode proposals (schema 6): the deltas an assistant turn proposed, open until decided once.
proposals = Table(
    "proposals",
    metadata,
    Column("session_id", String(36), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(16), primary_key=True),
    Column("base_rev", Integer, nullable=False),
    Column("author_user_id", String(36), nullable=False),
    Column("summary", Text, nullable=False),
    Column("deltas", Text, nullable=False),
    Column("status", String(16), nullable=False),  # "open" | "resolved"
    Column("outcome", Text, nullable=True),  # the proposal_resolved data, once decided
    Column("created_at", DateTime(timezone=True), nullable=False),
    # schema 8: how it came ("assistant" | "agent" | "import"; NULL in older rows: assistant) and what acted
    Column("author_via", String(16), nullable=True),
    Column("author_name", String(100), nullable=True),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(36), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("meta", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_messages_session", "session_id", "id"),
    # Who wrote it (schema 10; NULL in older rows, which show no author): a prompt's user and how it
    # came ("user" from a tab, "agent" with `author_name` the token's name); an answer's prompter, "assistant".
    Column("author_user_id", String(36), nullable=True),
    Column("author_via", String(16), nullable=True),
    Column("author_name", String(100), nullable=True),
)


# Who serves a session (replicas on PostgreSQL; canopy/cluster/lease.py). The epoch only grows:
# a release expires the row instead of deleting it, so an old holder's epoch never comes back.
session_leases = Table(
    "session_leases",
    metadata,
    Column("session_id", String(36), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # Where the other replicas reach the holder's API (REPLICA_URL): MCP tool calls are forwarded there. Schema 9.
    Column("address", String(200), nullable=True),
)


# Personal access tokens (`cnp_…`) for outside agents: only a SHA-256 of the secret is stored.
personal_tokens = Table(
    "personal_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("scope", String(8), nullable=False),  # "read" | "write"
    # Limited to one session when set; the session's deletion deletes the token with it.
    Column("session_id", String(36), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),  # the first characters, to tell tokens apart in a list
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    # The user's token generation at creation: logging out everywhere or a password change ends PATs too.
    Column("generation", Integer, nullable=False, server_default="0"),
)


def _v1_auth(conn: Connection) -> None:
    for table in (users, refresh_tokens):
        table.create(conn)


def _v2_sessions(conn: Connection) -> None:
    for table in (sessions, changes, change_sets, messages):
        table.create(conn)


def _v3_change_set_actors(conn: Connection) -> None:
    # A database created at schema 2 by this code's `_v2_sessions` already has the columns (it creates
    # the current table definition); one created by an older release gets them added, NULL in old rows.
    present = {c["name"] for c in inspect(conn).get_columns("change_sets")}
    for column in ("actor_user_id VARCHAR(36)", "actor_via VARCHAR(16)"):
        if column.split()[0] not in present:
            conn.execute(text(f"ALTER TABLE change_sets ADD COLUMN {column}"))


def _v4_token_generation(conn: Connection) -> None:
    # A database made by v1 before the column existed gets it here; v1 today creates it already.
    if "token_generation" not in {c["name"] for c in inspect(conn).get_columns("users")}:
        conn.execute(text("ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0"))


def _v5_leases(conn: Connection) -> None:
    session_leases.create(conn)


def _v6_collaboration(conn: Connection) -> None:
    # As in v3: a database created by this code's `_v2_sessions` already has the new columns.
    for table, column in (
        ("sessions", "review_mode BOOLEAN NOT NULL DEFAULT FALSE"),
        ("change_sets", "created_at TIMESTAMP"),
    ):
        present = {c["name"] for c in inspect(conn).get_columns(table)}
        if column.split()[0] not in present:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column}"))
    for new in (session_members, proposals):
        new.create(conn, checkfirst=True)


def _v7_personal_tokens(conn: Connection) -> None:
    personal_tokens.create(conn)
    # As in v3: a change_sets table created by this code's `_v2_sessions` already has the column.
    if "actor_name" not in {c["name"] for c in inspect(conn).get_columns("change_sets")}:
        conn.execute(text("ALTER TABLE change_sets ADD COLUMN actor_name VARCHAR(100)"))


def _v8_proposal_authors(conn: Connection) -> None:
    # As in v3: a proposals table created by this code's `_v6_collaboration` already has the columns.
    present = {c["name"] for c in inspect(conn).get_columns("proposals")}
    for column in ("author_via VARCHAR(16)", "author_name VARCHAR(100)"):
        if column.split()[0] not in present:
            conn.execute(text(f"ALTER TABLE proposals ADD COLUMN {column}"))


def _v9_lease_addresses(conn: Connection) -> None:
    # As in v3: a session_leases table created by this code's `_v5_leases` already has the column.
    if "address" not in {c["name"] for c in inspect(conn).get_columns("session_leases")}:
        conn.execute(text("ALTER TABLE session_leases ADD COLUMN address VARCHAR(200)"))


def _v10_message_authors(conn: Connection) -> None:
    # As in v3: a messages table created by this code's `_v2_sessions` already has the columns.
    present = {c["name"] for c in inspect(conn).get_columns("messages")}
    for column in ("author_user_id VARCHAR(36)", "author_via VARCHAR(16)", "author_name VARCHAR(100)"):
        if column.split()[0] not in present:
            conn.execute(text(f"ALTER TABLE messages ADD COLUMN {column}"))


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_auth,
    _v2_sessions,
    _v3_change_set_actors,
    _v4_token_generation,
    _v5_leases,
    _v6_collaboration,
    _v7_personal_tokens,
    _v8_proposal_authors,
    _v9_lease_addresses,
    _v10_message_authors,
]


MIGRATION_LOCK = 0x63616E6F7079  # "canopy": the advisory lock that serialises replicas' migrations


def migrate(conn: Connection) -> int:
    """Apply every migration newer than the recorded version; returns the version reached.
    On PostgreSQL, replicas starting together take turns (a transaction-scoped advisory lock);
    SQLite has one writer anyway."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(select(schema_version.c.version)).scalar()
    if current is None:
        conn.execute(insert(schema_version).values(version=0))
        current = 0
    for number, step in enumerate(MIGRATIONS, start=1):
        if number > current:
            step(conn)
            conn.execute(schema_version.update().values(version=number))
    return len(MIGRATIONS)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash (kill -9); only power loss may drop the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def prepare_sqlite_file(path: Path) -> None:
    """DATA_DIR is made 0700 when it is created here, and the database file 0600: SQLite gives its
    -wal and -shm files the database file's mode, so they are private too."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        sibling = path.with_name(name)
        if sibling.exists() and sibling.stat().st_mode & 0o077:
            sibling.chmod(0o600)  # made by an older version, 0644


def create_engine(url: str, idle_in_transaction_seconds: float = 5.0) -> AsyncEngine:
    """On PostgreSQL, a transaction left idle for `idle_in_transaction_seconds` is ended by the server:
    a replica stopped mid-transaction (SIGSTOP, a frozen VM) would otherwise hold its row locks, the
    lease row's among them, and the replica taking over would wait on them until it woke up."""
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        prepare_sqlite_file(Path(parsed.database))
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        timeout_ms = str(int(idle_in_transaction_seconds * 1000))
        connect_args["server_settings"] = {"idle_in_transaction_session_timeout": timeout_ms}
    # hide_parameters: SQLAlchemy's error messages (and so any traceback) leave out the values, which hold user text.
    engine = create_async_engine(url, pool_pre_ping=not is_sqlite, hide_parameters=True, connect_args=connect_args)
    if is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


async def init_database(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        return await conn.run_sync(migrate)


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def storage_cause(exc: BaseException) -> str:
    """What went wrong in the database, for logs: the driver's error, never the SQL parameters
    (SQLAlchemy's own message lists them, and they hold prompts and node values)."""
    orig = getattr(exc, "orig", None)
    return repr(orig) if orig is not None else type(exc).__name__


# Driver errors the deployment causes and an operator fixes (disk full, locked, I/O, read-only, connection lost):
# their one-line cause says it all. SQLite's extended names (SQLITE_IOERR_WRITE, ...) match by prefix.
_EXPECTED_SQLITE = (
    "SQLITE_FULL",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_READONLY",
    "SQLITE_CANTOPEN",
    "SQLITE_NOMEM",
)
# Postgres SQLSTATE: connection (08), resources (53), operator intervention (57P), system/I-O (58),
# serialization failure, deadlock and lock not available.
_EXPECTED_SQLSTATE = ("08", "53", "57P", "58", "40001", "40P01", "55P03")


def expected_storage_error(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        return name.startswith(_EXPECTED_SQLITE)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return isinstance(state, str) and state.startswith(_EXPECTED_SQLSTATE)


def log_storage_failure(logger: logging.Logger, message: str, *args: object, exc: BaseException) -> None:
    """Logs a failed database call: an expected driver error as one line, anything else with its traceback.

    The traceback is the frames and the driver's error only: SQLAlchemy's own message would list the SQL
    parameters (engines are made with hide_parameters, this holds for any other exception too)."""
    if expected_storage_error(exc):
        logger.error(f"{message}: %s", *args, storage_cause(exc))
        return
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error(
        f"{message}: %s %s\nTraceback (most recent call last):\n%s",
        *args,
        type(exc).__name__,
        storage_cause(exc),
        frames.rstrip("\n"),
    )
