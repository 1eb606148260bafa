"""Leases, fencing and cross-replica events on a real PostgreSQL (canopy/cluster)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from canopy import accounts, db, tokens, users
from canopy.agents.streams import AgentStream
from canopy.agents.tools import AgentError, Caller
from canopy.cluster.calls import CALL_PATH, SIGNATURE_HEADER, TIMESTAMP_HEADER, CallSigner, ReplicaClient
from canopy.cluster.lease import LeaseLostError, Leases
from canopy.cluster.notify import ClusterBus
from canopy.cluster.ownership import Host, Ownership
from canopy.config import Settings
from canopy.main import create_app
from canopy.realtime.store import INITIAL_TREE, SessionStore
from canopy.services import Services
from canopy.tree import Change
from canopy.users import create_user
from tests.conftest import register_and_login
from tests.helpers import wait_until
from tests.support.ws import init, login, recv

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


def change(rev: int) -> Change:
    node = {"id": f"n{rev}", "value": "v", "children": []}
    return Change(
        {"action": "add", "path": "/root/children", "node": node}, {"action": "remove", "path": f"/root/n{rev}"}
    )


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
            await store_a.commit_changes(sid, [change(1)], rev=1, node_count=2, change_set=None)
        await a.acquire(sid)
        await store_a.commit_changes(sid, [change(1)], rev=1, node_count=2, change_set=None)
        await eventually(lambda: b.acquire(sid))
        await store_b.commit_changes(sid, [change(2)], rev=2, node_count=3, change_set=None)
        with pytest.raises(LeaseLostError) as refused:  # the paused replica's pending commit
            await store_a.commit_changes(sid, [change(2)], rev=2, node_count=3, change_set=None)
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
        await bus_a.publish("deleted", session="s1")
        await bus_a.publish("unknown-type", session="s1")
        await eventually(lambda: seen_b)
        assert seen_b == [{"type": "deleted", "session": "s1", "from": "replica-a"}]
        await bus_b.publish("deleted", session="s2")
        await eventually(lambda: seen_a)
        assert seen_a[0]["session"] == "s2" and len(seen_b) == 1
        with pytest.raises(ValueError, match="too large"):
            await bus_a.publish("renamed", session="s1", title="x" * 8000)
        for reserved in ("type", "from"):  # the bus's own fields cannot be overwritten by an event's
            with pytest.raises(ValueError, match="may not be named"):
                await bus_a.publish("deleted", **{reserved: "forged"})
    finally:
        await bus_a.close()
        await bus_b.close()


async def test_an_account_event_names_a_user_and_no_session(engine: AsyncEngine) -> None:
    bus_a, bus_b = ClusterBus(engine, "replica-a"), ClusterBus(engine, "replica-b")
    seen: list[dict[str, Any]] = []

    async def record(event: dict[str, Any]) -> None:
        seen.append(event)

    bus_b.on("logged_out", record)
    bus_b.on("token_revoked", record)
    await bus_a.start()
    await bus_b.start()
    try:
        await bus_a.publish("logged_out", user="u1")
        await bus_a.publish("token_revoked", user="u1", token_id="t1")
        await eventually(lambda: len(seen) == 2)
        assert seen == [
            {"type": "logged_out", "from": "replica-a", "user": "u1"},
            {"type": "token_revoked", "from": "replica-a", "user": "u1", "token_id": "t1"},
        ]
    finally:
        await bus_a.close()
        await bus_b.close()


class Recorder:
    """The manager's side, as plain records: what the cluster asked this replica to do."""

    def __init__(self) -> None:
        self.dropped: list[tuple[str, int]] = []
        self.handed_over: list[str] = []
        self.titles: dict[str, str] = {}
        self.members: list[tuple[str, str]] = []

    async def drop(self, session_id: str, code: int, _reason: str) -> None:
        self.dropped.append((session_id, code))

    def retitle(self, session_id: str, title: str) -> None:
        self.titles[session_id] = title

    async def hand_over(self, session_id: str) -> None:
        self.handed_over.append(session_id)

    async def membership(self, session_id: str, user_id: str) -> None:
        self.members.append((session_id, user_id))

    def host(self) -> Host:
        return Host(drop=self.drop, retitle=self.retitle, hand_over=self.hand_over, membership=self.membership)


# Longer than any test here: between two live replicas, a lease changes hands only by a hand-over.
HELD_LEASE_SECONDS = 600
HANG_GUARD = 30.0  # seconds; far above what a hand-over takes, not a timing assertion


@pytest.fixture
async def two_replicas(engine: AsyncEngine) -> AsyncIterator[tuple[Ownership, Recorder, Ownership, Recorder]]:
    rec_a, rec_b = Recorder(), Recorder()
    a = Ownership(engine, HELD_LEASE_SECONDS, rec_a.host(), name="replica-a")
    b = Ownership(engine, HELD_LEASE_SECONDS, rec_b.host(), name="replica-b")
    await a.start()
    await b.start()
    yield a, rec_a, b, rec_b
    await a.close()
    await b.close()


async def test_claiming_a_held_session_asks_its_holder_to_hand_it_over(two_replicas: Any) -> None:
    a, rec_a, b, _ = two_replicas
    first = await a.claim("s1")
    try:  # A's lease would last 600 s: B can only get it by a hand-over
        taken = await asyncio.wait_for(b.claim("s1"), HANG_GUARD)
    except TimeoutError:
        pytest.fail(
            f"hung: B's claim waited {HANG_GUARD:g} s and A never let s1 go (asked to hand over: {rec_a.handed_over})"
        )
    assert rec_a.handed_over == ["s1"] and not a.holds("s1") and b.holds("s1")
    assert taken.epoch == first.epoch + 1 and taken.owner == "replica-b"
    holder = await b.leases.holder("s1")  # the database agrees
    assert holder is not None and holder.owner == "replica-b" and holder.epoch == taken.epoch


async def test_a_dead_holders_lease_runs_out_and_is_taken(engine: AsyncEngine) -> None:
    dead = Leases(engine, "replica-dead", 0.5)  # no bus, no renewal: a killed process
    await dead.acquire("s1")
    rec = Recorder()
    alive = Ownership(engine, 0.5, rec.host(), name="replica-b")
    await alive.start()
    try:
        lease = await alive.claim("s1")
        assert lease.epoch == 2 and lease.owner == "replica-b"
    finally:
        await alive.close()


async def test_delete_rename_and_membership_reach_the_holder(two_replicas: Any) -> None:
    a, rec_a, b, rec_b = two_replicas
    await a.claim("s1")
    await b.renamed("s1", "New title")
    await eventually(lambda: rec_a.titles)
    assert rec_a.titles == {"s1": "New title"} and rec_b.titles == {}
    await b.membership_changed("s1", "member-1")
    await b.membership_changed("s2", "member-1")  # held by nobody: nobody acts
    await eventually(lambda: rec_a.members)
    assert rec_a.members == [("s1", "member-1")] and rec_b.members == []
    await b.deleted("s1")
    await eventually(lambda: rec_a.dropped)
    assert rec_a.dropped == [("s1", 1000)] and not a.holds("s1")


async def test_a_lost_lease_drops_the_session_with_1012(engine: AsyncEngine) -> None:
    rec = Recorder()
    a = Ownership(engine, 0.5, rec.host(), name="replica-a")
    await a.leases.acquire("s1")  # not started: no renewal, like a paused process
    other = Leases(engine, "replica-b", 30)
    await eventually(lambda: other.acquire("s1"))
    assert await a.leases.renew() == ["s1"]
    await eventually(lambda: rec.dropped)
    assert rec.dropped == [("s1", 1012)]
    await a.close()


def test_ending_access_on_one_replica_reaches_the_others_sockets_and_streams(settings: Settings) -> None:
    """Two apps on one database, as two replicas: a revoked token ends its agent stream on the other,
    and a deleted account's socket there closes as it would on the replica that deleted it."""
    app_a, app_b = create_app(settings), create_app(settings)
    with (
        TestClient(app_a, base_url="https://testserver") as a,
        TestClient(app_b, base_url="https://testserver") as b,
    ):
        token = login(a, "leaving", "leaving-pass-1")
        auth = {"Authorization": f"Bearer {token}"}
        user_id = a.get("/api/auth/me", headers=auth).json()["id"]
        pat = a.post("/api/tokens", headers=auth, json={"name": "agent", "scope": "read"}).json()
        services_a: Services = app_a.state.services
        services_b: Services = app_b.state.services
        assert services_b.agent_streams is not None and services_b.sessions is not None
        ended: list[str] = []  # what replica B's open streams were told (the streams are stand-ins)
        services_b.agent_streams.add(AgentStream("mcp", user_id, pat["id"], lambda why: ended.append(f"pat: {why}")))
        services_b.agent_streams.add(AgentStream("agui", user_id, None, lambda why: ended.append(f"run: {why}")))

        assert a.delete(f"/api/tokens/{pat['id']}", headers=auth).status_code == 204
        wait_until(lambda: ended == ["pat: token revoked"], 10, "the token's stream on B ended")
        with b.websocket_connect("/ws/session") as ws:
            init(ws, token)
            assert len(services_b.sessions) == 1
            assert a.portal is not None
            assert a.portal.call(accounts.delete_account, services_a, user_id)
            with pytest.raises(WebSocketDisconnect) as closed:
                while True:
                    ws.receive_json()
            assert (closed.value.code, closed.value.reason) == accounts.CLOSE_DELETED
        wait_until(lambda: ended == ["pat: token revoked", "run: account deleted"], 10, "the user's run on B ended")
        assert len(services_b.sessions) == 0  # evicted on B too, not left for the idle timer


async def _drop_listeners(engine: AsyncEngine) -> int:
    """Ends the cluster listeners' database connections, as a network blip or a PostgreSQL restart would."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        )
        return len(rows.all())


def test_a_replica_that_missed_events_rechecks_what_it_holds_open(settings: Settings) -> None:
    """Access ended while a replica was not listening (here: changed in the database with no event at all)
    is found when its listener comes back: every socket and agent stream it holds is checked there."""
    application = create_app(settings)
    with TestClient(application, base_url="https://testserver") as tc:
        services: Services = application.state.services
        streams, portal = services.agent_streams, tc.portal
        assert streams is not None and portal is not None
        token = login(tc, "missed", "missed-pass-1")
        auth = {"Authorization": f"Bearer {token}"}
        user_id = tc.get("/api/auth/me", headers=auth).json()["id"]
        ended: list[str] = []

        def ends_as(name: str) -> Callable[[str], None]:
            return lambda why: ended.append(f"{name}: {why}")

        pats = {}
        for name in ("first", "second"):
            pats[name] = tc.post("/api/tokens", headers=auth, json={"name": name, "scope": "read"}).json()["id"]
            streams.add(AgentStream("mcp", user_id, pats[name], ends_as(name)))
        with tc.websocket_connect("/ws/session") as ws:
            init(ws, token)
            assert portal.call(tokens.delete_token, services.engine, user_id, pats["first"])  # no event sent
            assert portal.call(_drop_listeners, services.engine) == 1
            wait_until(lambda: ended == ["first: token revoked"], 10, "the revoked token's stream ended")
            ws.send_json({"type": "ping", "id": "p", "data": {}})
            assert recv(ws)["type"] == "pong"  # the user's login did not end: their socket stays

            portal.call(users.end_all_tokens, services.engine, user_id)  # logout everywhere, no event sent
            assert portal.call(_drop_listeners, services.engine) == 1
            with pytest.raises(WebSocketDisconnect) as closed:
                while True:
                    ws.receive_json()
            assert (closed.value.code, closed.value.reason) == accounts.CLOSE_LOGGED_OUT
        wait_until(lambda: ended == ["first: token revoked", "second: token revoked"], 10, "the other PAT's stream")


# ---- MCP tool calls forwarded to the session's holder (canopy/agents/forwarding.py) ------------------


async def agent_setup(client: httpx.AsyncClient, app: FastAPI) -> tuple[str, Caller]:
    """A user's new session and a write token of theirs, as the caller the MCP server would see."""
    access = await register_and_login(client, "agent-owner", "agent-owner-pass")
    auth = {"Authorization": f"Bearer {access}"}
    pat = (await client.post("/api/tokens", json={"name": "Agent", "scope": "write"}, headers=auth)).json()
    verified = await tokens.verify_token(app.state.services.engine, pat["token"])
    assert verified is not None
    store: SessionStore = app.state.services.sessions.store
    session = await store.create(verified.user_id, "fwd")  # stored, not loaded: no replica holds it yet
    return session.id, Caller(verified)


def forwarded(sid: str, caller: Caller, tool: str = "get_tree", **args: Any) -> bytes:
    token = caller.token
    who = {"token_id": token.id, "user_id": token.user_id, "name": token.name, "scope": token.scope}
    return orjson.dumps({"tool": tool, "args": {"session_id": sid, **args}, "caller": who})


async def test_the_replica_call_endpoint_runs_signed_calls_only(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    sid, caller = await agent_setup(client, app)
    signer = CallSigner(settings.secret_key.get_secret_value())

    async def post(body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await client.post(CALL_PATH, content=body, headers={"Content-Type": "application/json", **headers})

    body = forwarded(sid, caller, "add_nodes", parent_id="root", values=["Forwarded"])
    assert (await post(body, {})).status_code == 401  # unsigned
    assert (await post(body, CallSigner("another-secret-key-of-another-cluster").headers(body))).status_code == 401
    stale = {TIMESTAMP_HEADER: str(int(time.time()) - 600)}
    stale[SIGNATURE_HEADER] = signer.headers(body)[SIGNATURE_HEADER]
    assert (await post(body, stale)).status_code == 401
    tampered = forwarded(sid, caller, "add_nodes", parent_id="root", values=["Tampered"])
    assert (await post(tampered, signer.headers(body))).status_code == 401
    assert len(app.state.services.sessions) == 0  # nothing ran: the session was not even loaded

    signed = signer.headers(body)
    answer = await post(body, signed)
    assert answer.status_code == 200 and answer.json()["result"]["status"] == "applied", answer.text
    assert (await post(body, signed)).status_code == 401  # the same call again: a replay
    tree = (await post(forwarded(sid, caller), signer.headers(forwarded(sid, caller)))).json()["result"]["tree"]
    assert [c["value"] for c in tree["children"]] == ["Forwarded"]
    assert await app.state.services.sessions.store.stored_rev(sid) == 1  # one change, stored

    unknown = forwarded(sid, caller, "drop_database")
    assert (await post(unknown, signer.headers(unknown))).json() == {"error": "Unknown tool 'drop_database' (400)"}
    bad = forwarded(sid, caller, "add_nodes", parent="root")
    assert (await post(bad, signer.headers(bad))).json() == {"error": "Bad arguments for add_nodes (400)"}
    garbage = b'{"tool": 1}'
    assert (await post(garbage, signer.headers(garbage))).status_code == 422


async def test_a_holder_that_does_not_answer_fails_the_call_and_keeps_the_session(
    app: FastAPI, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The holder's lease is live but it never answers (paused, overloaded): the tool call fails with a
    clear error after the bound, and the receiving replica neither claims nor loads the session."""
    sid, caller = await agent_setup(client, app)
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # a real socket that accepts the request and says nothing

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    hung = Leases(engine, "replica-hung", HELD_LEASE_SECONDS, address=f"http://127.0.0.1:{port}")
    assert await hung.acquire(sid) is not None
    mcp = app.state.mcp
    forwarding = mcp.forwarding
    assert forwarding is not None and forwarding.signer is not None
    await forwarding.client.aclose()
    forwarding.client = ReplicaClient(forwarding.signer, timeout=0.5)
    try:
        with pytest.raises(AgentError, match=r"did not answer in time; try again in a few seconds \(503\)"):
            await forwarding.run("add_nodes", caller, {"session_id": sid, "parent_id": "root", "values": ["X"]})
        assert accepted  # it was asked
        holder = await hung.holder(sid)
        assert holder is not None and holder.owner == "replica-hung" and holder.epoch == 1
        assert len(app.state.services.sessions) == 0  # not loaded here either
    finally:
        silent.close()
        for writer in accepted:
            writer.close()
        await silent.wait_closed()


async def test_a_forwarded_call_for_a_session_that_moved_on_is_refused_not_served(
    app: FastAPI, client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    """Between the receiver's look-up and the call, a third replica took the session: serving it here
    would take it back from there. The call is a tool error to retry; the session stays put."""
    sid, caller = await agent_setup(client, app)
    third = Leases(engine, "replica-third", HELD_LEASE_SECONDS, address="http://replica-third.invalid:8000")
    assert await third.acquire(sid) is not None
    body = forwarded(sid, caller, "add_nodes", parent_id="root", values=["Bounced"])
    signed = CallSigner(settings.secret_key.get_secret_value()).headers(body)
    answer = await client.post(CALL_PATH, content=body, headers={"Content-Type": "application/json", **signed})
    assert answer.json() == {"error": "The session just moved to another server; try again (503)"}
    holder = await third.holder(sid)
    assert holder is not None and (holder.owner, holder.epoch) == ("replica-third", 1)
    assert await app.state.services.sessions.store.stored_rev(sid) == 0
