"""Three API replicas on PostgreSQL behind nginx's session hash (docs/scaling.md).

The whole stack suite runs again here through three replicas (imported below: this
module's `stack` fixture overrides the one-replica fixture for them), then the cluster's
own promises: affinity, failover after kill -9, fencing after a pause (SIGSTOP) past the
lease, REST changes on one replica reaching the replica that serves the session, and ended
access (logout everywhere, a revoked personal access token, a removed member) reaching the
sockets and agent streams on every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy.engine import make_url
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.helpers import wait_until
from tests.pg import LocalPostgres
from tests.stack.test_mcp import listen_until_ended
from tests.stack.test_stack import (  # noqa: F401 - re-run here through three replicas
    client,
    new_user,
    test_api_down_is_a_json_502_and_recovers,
    test_api_json_is_gzipped_too,
    test_api_sees_the_forwarded_client_and_scheme,
    test_auth_flow_through_nginx,
    test_auth_routes_are_rate_limited_by_nginx,
    test_deep_links_get_index_html_revalidated,
    test_hashed_assets_are_immutable_and_gzipped,
    test_http_redirects_to_https_with_301,
    test_large_request_bodies_are_refused_by_nginx,
    test_logs_hold_no_token_password_or_query_string,
    test_metrics_hidden_from_the_public_side_but_on_the_api_port,
    test_security_headers,
    test_sessions_rest_through_nginx,
    test_streamed_chunks_are_not_buffered_by_nginx,
    test_tls_12_and_13_only,
    test_websocket_over_wss_with_query_token,
    test_websocket_with_a_bad_token_is_closed_1008,
    wait_logged,
)
from tests.support.metrics import scrape
from tests.support.stack import Stack, insecure_ssl_context, running_stack

REPLICAS = 3
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres: LocalPostgres) -> Iterator[Stack]:
    database = postgres.create_database()
    try:
        with running_stack(
            tmp_path_factory.mktemp("replicas"),
            replicas=REPLICAS,
            database_url=postgres.url_for(database),
            env_overrides={"LEASE_SECONDS": "3", "OFFLINE_CHUNK_DELAY_MS": "40"},
        ) as running:
            yield running
    finally:
        postgres.drop_database(database)


def upstreams_by_agent(stack: Stack) -> dict[str, set[str]]:
    """nginx's access log: which replica (upstream address) served each User-Agent's requests."""
    found: dict[str, set[str]] = {}
    for line in stack.nginx.stdout_path.read_text(errors="replace").splitlines():
        m = re.search(r'upstream=([0-9.:]+)/\S* "([^"]*)"$', line)
        if m:
            found.setdefault(m.group(2), set()).add(m.group(1))
    return found


def test_a_sessions_requests_share_a_replica_and_sessions_spread(stack: Stack) -> None:
    with client(stack) as c:
        _, token = new_user(c)
        auth = {"Authorization": f"Bearer {token}"}
        sessions = [
            c.post("/api/sessions", json={"title": f"s{i}"}, headers=auth).json()["session_id"] for i in range(12)
        ]
    agents = {}
    for sid in sessions:
        agent = f"affinity-{uuid.uuid4().hex}"
        agents[sid] = agent
        with client(stack, headers={"User-Agent": agent, **auth}) as c:
            for _ in range(3):
                assert c.get(f"/api/sessions/{sid}").status_code == 200
            assert c.patch(f"/api/sessions/{sid}", json={"title": "renamed"}).status_code == 200
        wait_logged(stack, agent, count=4)
    served = upstreams_by_agent(stack)
    replicas = [served[agent] for agent in agents.values()]
    assert all(len(r) == 1 for r in replicas), replicas
    assert len(set().union(*replicas)) >= 2, "twelve sessions all hashed to one replica"


def test_every_replica_answers_and_refuses_nothing(stack: Stack) -> None:
    for index in range(REPLICAS):
        r = httpx.get(stack.replica_url(index) + "/api/readyz", trust_env=False, timeout=5)
        assert r.status_code == 200


# ---- helpers for the cluster's own tests ------------------------------------------------------


def recv(ws: ClientConnection, timeout: float = 20) -> dict[str, Any]:
    while True:  # presence and undo_state frames (unnumbered, on their own schedule) are not what these tests read
        frame: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
        if frame.get("type") not in ("presence", "undo_state"):
            return frame


def close_code(ws: ClientConnection, timeout: float = 20) -> int | None:
    """Reads until the server closes the socket; its close code."""
    return closed_with(ws, timeout)[0]


def closed_with(ws: ClientConnection, timeout: float = 20) -> tuple[int | None, str | None]:
    """Reads until the server closes the socket; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=timeout)
    received = closed.value.rcvd
    return (received.code, received.reason) if received else (None, None)


def session_for(stack: Stack) -> tuple[str, str]:
    """A fresh user's token and a new session of theirs."""
    with client(stack) as c:
        _, token = new_user(c)
        created = c.post("/api/sessions", json={"title": "cluster"}, headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201, created.text
        return token, created.json()["session_id"]


def open_tab(
    url: str, token: str, sid: str, last_seq: int | None = None, agent: str = "cluster-test"
) -> tuple[ClientConnection, dict[str, Any]]:
    """A tab on `url` (nginx's wss:// or a replica's own ws://), attached to the session."""
    ssl_context = insecure_ssl_context() if url.startswith("wss") else None
    ws = connect(f"{url}?session={sid}", ssl=ssl_context, open_timeout=30, user_agent_header=agent, proxy=None)
    data: dict[str, Any] = {"token": token, "session_id": sid}
    if last_seq is not None:
        data["last_seq"] = last_seq
    ws.send(json.dumps({"type": "init_session", "data": data}))
    ready = recv(ws, 30)
    if ready["type"] != "session_ready":
        ws.close()
        raise RuntimeError(f"init_session answered {ready}")
    if not ready["data"]["replay"]:
        assert recv(ws)["type"] == "chat_history"
    return ws, ready


def replica_ws(stack: Stack, index: int) -> str:
    return f"ws://127.0.0.1:{stack.api_ports[index]}/ws/session"


def serving_replica(stack: Stack, postgres: LocalPostgres, sid: str) -> int:
    """The replica whose worker holds the session's lease (lease owners are `host:pid:nonce`)."""
    owner = postgres.sql(f"SELECT owner FROM session_leases WHERE session_id = '{sid}'", database_of(stack))
    pid = owner.split(":")[1]
    for index, api in enumerate(stack.apis):
        if api.running and api.proc is not None:
            workers = Path(f"/proc/{api.proc.pid}/task/{api.proc.pid}/children").read_text().split()
            if pid in workers:
                return index
    raise AssertionError(f"no running replica holds the lease of {sid} (owner {owner!r})")


def database_of(stack: Stack) -> str:
    return str(make_url(stack.database_url).database)


def add_op(node_id: str, base_rev: int) -> str:
    node = {"id": node_id, "value": node_id, "children": []}
    return json.dumps(
        {
            "type": "tree_op",
            "id": node_id,
            "data": {"delta": {"action": "add", "path": "/root/children", "node": node}, "base_rev": base_rev},
        }
    )


def stored_log(postgres: LocalPostgres, stack: Stack, sid: str) -> list[tuple[int, str]]:
    """The change log as PostgreSQL holds it: (rev, added node id) in rev order."""
    out = postgres.sql(f"SELECT rev, delta FROM changes WHERE session_id = '{sid}' ORDER BY rev", database_of(stack))
    rows = [line.split("|", 1) for line in out.splitlines() if line]
    return [(int(rev), json.loads(delta).get("node", {}).get("id", "")) for rev, delta in rows]


def resume_through_nginx(stack: Stack, token: str, sid: str, last_seq: int) -> tuple[ClientConnection, dict[str, Any]]:
    """Reconnects the way a tab does after its replica died: retried until a replica serves it."""
    result: list[tuple[ClientConnection, dict[str, Any]]] = []

    def attempt() -> bool:
        try:
            result.append(open_tab(stack.ws_url, token, sid, last_seq, agent=f"resume-{uuid.uuid4().hex}"))
        except (OSError, InvalidStatus, ConnectionClosed, RuntimeError, TimeoutError):
            return False
        return True

    wait_until(attempt, 60, "the session resumed on another replica", interval=0.25)
    return result[0]


# ---- affinity, failover, fencing, events --------------------------------------------------------


def test_tabs_of_a_session_share_a_replica(stack: Stack) -> None:
    token, sid = session_for(stack)
    agents: list[str] = []

    def three_tabs_in_step() -> bool:
        """False when the session moved meanwhile (1012): a replica restarted by an earlier test comes
        back into nginx's ring after its fail_timeout, and its sessions move back to it. Then again."""
        agent = f"tabs-{uuid.uuid4().hex}"
        agents.append(agent)
        tabs = [open_tab(stack.ws_url, token, sid, agent=agent)[0] for _ in range(3)]
        try:
            tabs[0].send(add_op(f"shared-{len(agents)}", 0))
            for tab in tabs:  # one replica holds the session: every tab sees the change
                assert recv(tab)["type"] == "tree_update"
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1012, closed
            return False
        finally:
            for tab in tabs:
                tab.close()
        return True

    wait_until(three_tabs_in_step, 60, "three tabs in step on one replica", interval=0.5)
    wait_logged(stack, agents[-1], count=3)
    assert len(upstreams_by_agent(stack)[agents[-1]]) == 1


def test_kill_9_during_a_turn_loses_nothing_acknowledged(stack: Stack, postgres: LocalPostgres) -> None:
    token, sid = session_for(stack)
    agent = f"victim-{uuid.uuid4().hex}"
    ws, ready = open_tab(stack.ws_url, token, sid, agent=agent)
    victim = serving_replica(stack, postgres, sid)
    acknowledged: list[str] = []
    seqs = [ready["data"]["seq"]]
    for i in range(3):
        ws.send(add_op(f"ack{i}", i))
        frame = recv(ws)
        assert frame["type"] == "tree_update"
        acknowledged.append(frame["data"]["delta"]["node"]["id"])
        seqs.append(frame["seq"])
    ws.send(json.dumps({"type": "user_prompt", "data": {"prompt": "Add 'X1', 'X2', 'X3' and 'X4' under root"}}))
    while True:  # kill while the turn streams: after its first stored change
        frame = recv(ws)
        seqs.append(frame.get("seq", seqs[-1]))
        if frame["type"] == "tree_update":
            acknowledged.append(frame["data"]["delta"]["node"]["id"])
            break
    stack.apis[victim].stop(signal.SIGKILL)
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        while True:  # frames already in flight still count as acknowledged
            frame = recv(ws, 5)
            seqs.append(frame.get("seq", seqs[-1]))
            if frame["type"] == "tree_update":
                acknowledged.append(frame["data"]["delta"]["node"]["id"])
    ws.close()
    try:
        resumed, again = resume_through_nginx(stack, token, sid, max(seqs))
        try:
            tree_ids = [n["id"] for n in again["data"]["initial_tree"]["children"]]
            assert set(acknowledged) <= set(tree_ids), (acknowledged, tree_ids)
            assert again["data"]["seq"] >= max(seqs)  # seq never goes back
            resumed.send(add_op("after", again["data"]["rev"]))
            frame = recv(resumed)
            assert frame["type"] == "tree_update" and frame["seq"] > max(seqs)
        finally:
            resumed.close()
        revs = [rev for rev, _ in stored_log(postgres, stack, sid)]
        assert revs == sorted(set(revs))
    finally:
        stack.start_replica(victim)
    stack.wait_ready()


def test_a_paused_replica_cannot_commit_after_losing_its_lease(stack: Stack, postgres: LocalPostgres) -> None:
    token, sid = session_for(stack)
    paused_index = 0
    other = 1
    tab_a, ready = open_tab(replica_ws(stack, paused_index), token, sid)
    tab_a.send(add_op("before", ready["data"]["rev"]))
    assert recv(tab_a)["type"] == "tree_update"
    proc = stack.apis[paused_index].proc
    assert proc is not None
    group = proc.pid
    os.killpg(group, signal.SIGSTOP)
    try:
        tab_a.send(add_op("from-paused", 1))  # waits in the socket: the paused replica's pending commit
        tab_b, ready_b = open_tab(replica_ws(stack, other), token, sid)  # takes over once the lease ran out
        tab_b.send(add_op("from-new-owner", ready_b["data"]["rev"]))
        assert recv(tab_b)["type"] == "tree_update"
    finally:
        os.killpg(group, signal.SIGCONT)
    assert close_code(tab_a) == 1012
    tab_b.send(json.dumps({"type": "resync", "data": {}}))
    snapshot = recv(tab_b)
    tab_b.close()
    assert [n["id"] for n in snapshot["data"]["tree"]["children"]] == ["before", "from-new-owner"]
    assert [node for _, node in stored_log(postgres, stack, sid)] == ["before", "from-new-owner"]
    assert [rev for rev, _ in stored_log(postgres, stack, sid)] == [1, 2]  # one line of history, no fork


def test_a_rest_delete_on_one_replica_closes_the_tabs_on_another(stack: Stack) -> None:
    token, sid = session_for(stack)
    tab, _ = open_tab(replica_ws(stack, 2), token, sid)
    r = httpx.delete(
        stack.replica_url(0) + f"/api/sessions/{sid}",
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
        timeout=10,
    )
    assert r.status_code == 204
    assert close_code(tab, timeout=10) == 1000
    tab.close()


def test_a_rest_rename_on_one_replica_reaches_the_owner(stack: Stack) -> None:
    token, sid = session_for(stack)
    tab, _ = open_tab(replica_ws(stack, 2), token, sid)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        r = httpx.patch(
            stack.replica_url(1) + f"/api/sessions/{sid}",
            json={"title": "Renamed elsewhere"},
            headers=auth,
            trust_env=False,
            timeout=10,
        )
        assert r.status_code == 200

        def owner_view() -> bool:
            r = httpx.get(stack.replica_url(2) + f"/api/sessions/{sid}", headers=auth, trust_env=False, timeout=10)
            return bool(r.json()["title"] == "Renamed elsewhere")

        wait_until(owner_view, 10, "the owner's live title")
    finally:
        tab.close()


# ---- ended access reaches every replica -------------------------------------------------------


def on_replica(stack: Stack, index: int, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    """A request sent to one replica directly, not where nginx would send it."""
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(
        method, stack.replica_url(index) + path, headers=headers, trust_env=False, timeout=10, **kwargs
    )


def test_logout_all_on_one_replica_closes_the_users_sockets_on_another(stack: Stack) -> None:
    token, sid = session_for(stack)
    bystander_token, bystander_sid = session_for(stack)
    tab, _ = open_tab(replica_ws(stack, 2), token, sid)
    bystander, _ = open_tab(replica_ws(stack, 2), bystander_token, bystander_sid)
    try:
        assert on_replica(stack, 0, "POST", "/api/auth/logout-all", token).status_code == 204
        assert closed_with(tab, timeout=10) == (1008, "logged out")  # as on the replica that handled it
        bystander.send(json.dumps({"type": "ping", "id": "p", "data": {}}))
        assert recv(bystander)["type"] == "pong"  # another user's socket on that replica stays
    finally:
        tab.close()
        bystander.close()


def test_removing_a_member_on_one_replica_closes_their_tab_on_another(stack: Stack) -> None:
    owner_token, sid = session_for(stack)
    with client(stack) as c:
        member, member_token = new_user(c)
    added = on_replica(
        stack, 0, "POST", f"/api/sessions/{sid}/members", owner_token, json={"username": member, "role": "editor"}
    )
    assert added.status_code == 201, added.text
    owner_tab, _ = open_tab(replica_ws(stack, 2), owner_token, sid)
    member_tab, _ = open_tab(replica_ws(stack, 2), member_token, sid)
    try:
        assert on_replica(stack, 0, "DELETE", f"/api/sessions/{sid}/members/{member}", owner_token).status_code == 204
        assert closed_with(member_tab, timeout=10) == (1008, "access revoked")
        owner_tab.send(json.dumps({"type": "ping", "id": "p", "data": {}}))
        assert recv(owner_tab)["type"] == "pong"  # the owner's tab stays
    finally:
        owner_tab.close()
        member_tab.close()


MCP_STREAMS = 'canopy_agent_streams{kind="mcp"}'


def replica_metric(stack: Stack, index: int, name: str) -> float:
    return scrape(stack.replica_url(index), name)


async def test_revoking_a_token_on_one_replica_ends_its_mcp_stream_on_another(stack: Stack) -> None:
    access, sid = session_for(stack)
    created = on_replica(stack, 0, "POST", "/api/tokens", access, json={"name": "Agent", "scope": "read"})
    assert created.status_code == 201, created.text
    pat = created.json()
    uri = f"canopy://sessions/{sid}/tree"
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {pat['token']}"}, trust_env=False, timeout=30)
    transport = streamable_http_client(stack.replica_url(1) + "/mcp", http_client=http)
    async with http, Client(transport, cache=None) as mcp, mcp.listen(resource_subscriptions=[uri]) as listening:

        def stream_open() -> bool:
            return replica_metric(stack, 1, MCP_STREAMS) == 1

        await asyncio.to_thread(wait_until, stream_open, 20, "the listen stream open on replica 1")
        revoked = await asyncio.to_thread(on_replica, stack, 0, "DELETE", f"/api/tokens/{pat['id']}", access)
        assert revoked.status_code == 204
        assert await asyncio.wait_for(listen_until_ended(listening), 10) in ("closed", "lost")

    def stream_gone() -> bool:
        return replica_metric(stack, 1, MCP_STREAMS) == 0

    await asyncio.to_thread(wait_until, stream_gone, 20, "no MCP stream left on replica 1")


# ---- agents on a session held by another replica ----------------------------------------------


def lease_of(stack: Stack, postgres: LocalPostgres, sid: str) -> tuple[str, int]:
    """The session's lease row: (owner, epoch). A hand-over changes the owner and bumps the epoch."""
    row = postgres.sql(f"SELECT owner, epoch FROM session_leases WHERE session_id = '{sid}'", database_of(stack))
    owner, epoch = row.split("|")
    return owner, int(epoch)


def agui_run(url: str, token: str, sid: str, prompt: str, agent: str) -> list[dict[str, Any]]:
    """One AG-UI run (`POST /api/agui/sessions/{id}`, answered as SSE): its events, in order."""
    body = {
        "threadId": "t",
        "runId": uuid.uuid4().hex,
        "state": {},
        "tools": [],
        "context": [],
        "forwardedProps": {},
        "messages": [{"id": "u", "role": "user", "content": prompt}],
    }
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", "User-Agent": agent}
    events = []
    with httpx.stream("POST", url, json=body, headers=headers, verify=False, timeout=60, trust_env=False) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    return events


def added_ids(tab: ClientConnection, count: int) -> list[str]:
    """Reads the tab until it saw `count` added nodes; a close (1012: the session moved) fails the test."""
    ids: list[str] = []
    while len(ids) < count:
        frame = recv(tab)
        if frame["type"] == "tree_update" and frame["data"]["delta"]["action"] == "add":
            ids.append(frame["data"]["delta"]["node"]["id"])
    return ids


def still_open(tab: ClientConnection) -> bool:
    """A ping answered: the tab was never closed (the turns' other frames may come first)."""
    tab.send(json.dumps({"type": "ping", "id": "still-open", "data": {}}))
    while recv(tab).get("type") != "pong":
        pass
    return True


def make_pat(stack: Stack, access: str) -> str:
    created = on_replica(stack, 0, "POST", "/api/tokens", access, json={"name": "Agent", "scope": "write"})
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


def tool_payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return dict(result.structured_content or json.loads(result.content[0].text))


def test_an_agui_run_through_nginx_reaches_the_sessions_replica(stack: Stack, postgres: LocalPostgres) -> None:
    access, sid = session_for(stack)
    pat = make_pat(stack, access)
    tab, _ = open_tab(stack.ws_url, access, sid)
    try:
        lease = lease_of(stack, postgres, sid)
        agent = f"agui-{uuid.uuid4().hex}"
        for i in range(3):  # were they routed like /api/ (round robin), one of three would land elsewhere
            events = agui_run(f"{stack.base_url}/api/agui/sessions/{sid}", pat, sid, f"Add 'G{i}' under root", agent)
            assert events[-1]["type"] == "RUN_FINISHED", events[-1]
            assert added_ids(tab, 1) and lease_of(stack, postgres, sid) == lease
        assert still_open(tab)  # never closed with 1012
        wait_logged(stack, agent, count=3)
        assert len(upstreams_by_agent(stack)[agent]) == 1
    finally:
        tab.close()


async def test_mcp_writes_on_any_replica_leave_the_session_where_it_is(stack: Stack, postgres: LocalPostgres) -> None:
    access, sid = session_for(stack)
    pat = make_pat(stack, access)
    tab, _ = await asyncio.to_thread(open_tab, stack.ws_url, access, sid)
    try:
        lease = lease_of(stack, postgres, sid)
        urls = [stack.base_url + "/mcp"] + [stack.replica_url(i) + "/mcp" for i in range(REPLICAS)]
        for n, url in enumerate(urls):  # nginx, then every replica directly: two of them do not hold the session
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {pat}"}, verify=False, trust_env=False)
            async with http, Client(streamable_http_client(url, http_client=http), cache=None) as mcp:
                added = tool_payload(
                    await mcp.call_tool("add_nodes", {"session_id": sid, "parent_id": "root", "values": [f"M{n}"]})
                )
                assert added["status"] == "applied"
                assert await asyncio.to_thread(added_ids, tab, 1) == added["ids"]
                read = tool_payload(await mcp.call_tool("get_tree", {"session_id": sid}))
                assert [c["value"] for c in read["tree"]["children"]] == [f"M{i}" for i in range(n + 1)]
            assert lease_of(stack, postgres, sid) == lease
        assert await asyncio.to_thread(still_open, tab)  # never closed with 1012
    finally:
        tab.close()


async def test_a_2025_era_mcp_session_through_nginx_stays_on_one_replica(stack: Stack) -> None:
    """The 2025 era keeps an `Mcp-Session-Id` session in the replica that answered `initialize`: nginx sends
    every request of one personal access token to one replica (hashed), or the next request, landing on
    another replica, would be refused as an unknown session."""
    access, sid = session_for(stack)
    pat = make_pat(stack, access)
    agent = f"mcp-2025-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {pat}", "User-Agent": agent}
    http = httpx2.AsyncClient(headers=headers, verify=False, trust_env=False, timeout=30)
    async with (
        http,
        Client(streamable_http_client(stack.base_url + "/mcp", http_client=http), cache=None, mode="legacy") as mcp,
    ):
        for n in range(6):  # round robin over three replicas would have sent some of these elsewhere
            added = tool_payload(
                await mcp.call_tool("add_nodes", {"session_id": sid, "parent_id": "root", "values": [f"L{n}"]})
            )
            assert added["status"] == "applied"
        read = tool_payload(await mcp.call_tool("get_tree", {"session_id": sid}))
        assert [c["value"] for c in read["tree"]["children"]] == [f"L{n}" for n in range(6)]
    wait_logged(stack, agent, count=8)
    assert len(upstreams_by_agent(stack)[agent]) == 1


async def test_an_mcp_subscription_on_another_replica_hears_changes_and_leaves_the_session(
    stack: Stack, postgres: LocalPostgres
) -> None:
    access, sid = session_for(stack)
    pat = make_pat(stack, access)
    tab, ready = await asyncio.to_thread(open_tab, stack.ws_url, access, sid)
    try:
        lease = lease_of(stack, postgres, sid)
        other = (await asyncio.to_thread(serving_replica, stack, postgres, sid) + 1) % REPLICAS
        uri = f"canopy://sessions/{sid}/tree"
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {pat}"}, trust_env=False, timeout=30)
        transport = streamable_http_client(stack.replica_url(other) + "/mcp", http_client=http)
        async with http, Client(transport, cache=None) as mcp, mcp.listen(resource_subscriptions=[uri]) as listening:
            assert list(listening.honored.resource_subscriptions or []) == [uri]
            tab.send(add_op("heard", ready["data"]["rev"]))
            assert (await asyncio.to_thread(recv, tab))["type"] == "tree_update"
            event = await asyncio.wait_for(anext(aiter(listening)), 20)  # from the stored rev: within ~1 s
            assert getattr(event, "uri", None) == uri
            contents = (await mcp.read_resource(uri)).contents  # forwarded to the holder
            tree = json.loads(contents[0].text)["tree"]  # type: ignore[union-attr]
            assert [c["id"] for c in tree["children"]] == ["heard"]
        assert lease_of(stack, postgres, sid) == lease
        assert await asyncio.to_thread(still_open, tab)
    finally:
        tab.close()


def test_the_replicas_internal_endpoint_is_not_reachable_through_nginx(stack: Stack) -> None:
    with client(stack) as c:
        for method in ("POST", "GET"):
            r = c.request(method, "/api/internal/agent-call", content=b"{}")
            assert (r.status_code, r.json()) == (404, {"detail": "Not Found"})
        assert c.post("/api/%69nternal/agent-call", content=b"{}").status_code == 404  # nginx decodes first
    unsigned = httpx.post(stack.replica_url(0) + "/api/internal/agent-call", content=b"{}", trust_env=False, timeout=10)
    assert unsigned.status_code == 401  # on the API port: there, and refused unsigned
