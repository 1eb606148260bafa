"""Three API replicas on PostgreSQL behind nginx's session hash (docs/scaling.md).

The whole stack suite runs again here through three replicas (imported below: this
module's `stack` fixture overrides the one-replica fixture for them), then the cluster's
own promises: affinity, failover after kill -9, fencing after a pause (SIGSTOP) past the
lease, and REST changes on one replica reaching the replica that serves the session.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.pg import LocalPostgres
from tests.stack.harness import WEB_DIST, Stack
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

REPLICAS = 3
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres: LocalPostgres) -> Iterator[Stack]:
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail(f"No web bundle in {WEB_DIST}: run `make web-build` first (`make test` does).", pytrace=False)
    database = postgres.create_database()
    running = Stack(tmp_path_factory.mktemp("replicas"), replicas=REPLICAS, database_url=postgres.url_for(database),
                    env_overrides={"LEASE_SECONDS": "3", "OFFLINE_CHUNK_DELAY_MS": "15"})
    try:
        running.start()
    except BaseException:
        running.stop()
        print(running.all_logs()[-5000:])
        raise
    try:
        yield running
    finally:
        running.stop()
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
        sessions = [c.post("/api/sessions", json={"title": f"s{i}"}, headers=auth).json()["session_id"]
                    for i in range(12)]
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
