"""nginx's per-address connection limits, really exceeded (issue #12, findings 3 and 4).

A stack of its own with small limits (the settings scripts/render-nginx.sh takes): at most
AUTH_LIMIT requests in progress under /api/auth/ and WS_LIMIT WebSockets per client address.
The test holds that many open, checks that nginx answers the next one as docs/reliability.md
("Budgets") says, then lets one go and checks that a new one gets through again: the limit is
on what is in progress, not a rate. Nothing sleeps: each step waits for what it can observe.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.helpers import wait_until
from tests.support.stack import Stack, insecure_ssl_context, running_stack

pytestmark = pytest.mark.timeout(120)

AUTH_LIMIT = 2
WS_LIMIT = 3
# Below nginx's auth rate (10 r/s): the probes alone never reach limit_req, so a 429 is limit_conn's.
PROBE_INTERVAL = 0.2


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = {
        "NGINX_AUTH_CONN_PER_IP": str(AUTH_LIMIT),
        "NGINX_WS_CONN_PER_IP": str(WS_LIMIT),
        # The held sockets never authenticate: the API must not close them first.
        "WS_AUTH_TIMEOUT_SECONDS": "300",
    }
    with running_stack(tmp_path_factory.mktemp("nginx-limits"), env_overrides=settings) as running:
        yield running


class HeldLogin:
    """A `POST /api/auth/login` whose body is only partly sent: nginx has the request in progress
    (and, as it does not buffer request bodies, has passed it on to the API) until the rest comes."""

    def __init__(self, stack: Stack, n: int) -> None:
        self.body = f"username=held{n:02d}&password=wrong-password-{n:02d}".encode()
        raw = socket.create_connection(("127.0.0.1", stack.https_port), timeout=30)
        self.sock: ssl.SSLSocket = insecure_ssl_context().wrap_socket(raw, server_hostname="localhost")
        head = (
            "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        )
        self.sock.sendall(head.encode() + self.body[:9])

    def finish(self) -> int:
        """Sends the rest of the body; returns the status of the answer."""
        self.sock.sendall(self.body[9:])
        answer = b""
        while b"\r\n" not in answer:
            chunk = self.sock.recv(4096)
            assert chunk, f"connection closed before a status line: {answer!r}"
            answer += chunk
        return int(answer.split(b" ", 2)[1])

    def close(self) -> None:
        self.sock.close()


def first_answer(probe: httpx.Client, status: int, what: str) -> httpx.Response:
    """Probes GET /api/auth/me (no token: the API's answer is 401 at once) until one answers `status`."""
    seen: list[httpx.Response] = []

    def answered() -> bool:
        seen.append(probe.get("/api/auth/me"))
        return seen[-1].status_code == status

    wait_until(answered, 30, what, PROBE_INTERVAL)
    return seen[-1]


def test_auth_requests_in_progress_per_address_are_limited(limited: Stack) -> None:
    held = [HeldLogin(limited, n) for n in range(AUTH_LIMIT)]
    try:
        with httpx.Client(base_url=limited.base_url, verify=False, timeout=10, trust_env=False) as probe:
            refused = first_answer(probe, 429, f"an auth request past {AUTH_LIMIT} in progress refused")
            assert refused.json() == {"detail": "Too many requests"}
            assert refused.headers["strict-transport-security"]
            wait_until(
                lambda: 'limiting connections by zone "canopy_auth_conn"' in limited.nginx.logs(),
                10,
                "nginx's log naming the auth connection limit",
            )
            assert probe.get("/api/healthz").status_code == 200  # other routes are not limited

            # The held requests were in progress, not refused: finished, one gets the API's own answer ...
            assert held.pop().finish() == 401
            # ... and, one place free again, a new request reaches the API.
            first_answer(probe, 401, "an auth request after one finished")
    finally:
        for login in held:
            login.close()


def open_socket(stack: Stack) -> ClientConnection:
    """An unauthenticated WebSocket through nginx (the API waits for its `init_session`)."""
    return connect(stack.ws_url, ssl=insecure_ssl_context(), proxy=None, open_timeout=10)


def test_websockets_per_address_are_limited(limited: Stack) -> None:
    sockets = [open_socket(limited) for _ in range(WS_LIMIT)]
    try:
        with pytest.raises(InvalidStatus) as refused:
            sockets.append(open_socket(limited))
        assert refused.value.response.status_code == 503

        sockets.pop().close()

        def reopened() -> bool:
            try:
                sockets.append(open_socket(limited))
            except InvalidStatus as exc:
                assert exc.response.status_code == 503
                return False
            return True

        wait_until(reopened, 30, "a WebSocket after one of the held ones closed", PROBE_INTERVAL)
        assert len(sockets) == WS_LIMIT
    finally:
        for ws in sockets:
            ws.close()
