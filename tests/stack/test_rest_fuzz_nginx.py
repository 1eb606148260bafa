"""REST fuzzing with Schemathesis through the real stack: nginx (TLS) in front of gunicorn.

The same idea as tests/api/test_rest_fuzz.py, but the schema is loaded from nginx over https and every
generated request goes through nginx: no 5xx, a documented status code and content type, a body that
matches the response schema, negative data rejected, and (beyond the schema) a JSON body on every answer
under /api/, whoever sends it. Every 2xx of a secured operation is replayed with no token and with a
forged one and must get 401 (done here: Schemathesis' `ignored_auth` does not handle OAuth2 schemes).

Generated requests never reach nginx's own limits (1 MiB bodies, 8 KiB request lines and headers, NUL
in a path, the auth rate limit, paths that decode out of /api/), so those are sent on purpose, for every
operation, after the fuzz: each must be a documented status with a JSON body. The login throttle is
checked to key on the real client address behind nginx. The last test stops the API: 502 everywhere.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given
from requests.adapters import HTTPAdapter
from schemathesis import GenerationMode
from schemathesis.core.transport import Response

from canopy.main import create_app
from canopy.security import create_access_token
from tests.api.test_agui import run_input
from tests.api.test_rest_fuzz import (
    FuzzerToken,
    _cases,
    assert_password_policy,
    excluded_checks,
    fuzz_settings,
    next_case,
)
from tests.conftest import make_settings
from tests.support.stack import TEST_SECRET, Stack

LONG = os.environ.get("CANOPY_FUZZ") == "long"
EXAMPLES = int(os.environ.get("CANOPY_REST_FUZZ_EXAMPLES", 2000 if LONG else 25))

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.timeout(3600 if LONG else 300),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

PASSWORD = "fuzzer-password"
# Requests to /api/auth/ come from this many client addresses in turn, each far below nginx's auth limit
# (10 r/s, burst 20, per address; ~200 auth requests/s in all were measured), so the generated requests
# reach the API rather than nginx's 429.
AUTH_CLIENTS = 128
MIB = 1024 * 1024

# ---- clients -------------------------------------------------------------------------------------


class SourceAddressAdapter(HTTPAdapter):
    """Connects from a given local address: on Linux every 127.x.y.z is a distinct client to nginx."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def https_session(client_address: str = "127.0.0.1") -> requests.Session:
    """Keep-alive over TLS to the self-signed nginx from `client_address`; no proxies from the environment,
    and no cookie jar: the refresh cookie of the fuzzer's own login must not ride along on generated requests."""
    s = requests.Session()
    s.mount("https://", SourceAddressAdapter(client_address))
    s.verify = False
    s.trust_env = False
    s.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return s


class Fuzz(FuzzerToken):
    def __init__(self, stack: Stack, schema: Any, session: requests.Session, token: str, user_id: str) -> None:
        super().__init__(token, user_id, TEST_SECRET)
        self.stack = stack
        self.schema = schema
        self.session = session
        self.auth_sessions = [https_session(f"127.0.1.{i}") for i in range(1, AUTH_CLIENTS + 1)]
        # The fuzzer's own user id, well formed and unexpired, but signed with another key.
        forged, _ = create_access_token(user_id, "not-the-" + TEST_SECRET, 30)
        self.forged_headers = {"Authorization": f"Bearer {forged}"}
        self.replays = 0
        self.cases = 0
        self.statuses: Counter[int] = Counter()
        self.edge_answers: dict[str, list[tuple[str, int, requests.Response]]] = {}

    def session_for(self, path: str) -> requests.Session:
        if path.startswith("/api/auth/"):
            return self.auth_sessions[self.cases % len(self.auth_sessions)]
        return self.session

    def own_session(self) -> str:
        """A fresh session of the fuzzer's, so `{session_id}` routes get past the 404 too."""
        r = self.session.post(
            self.stack.base_url + "/api/sessions", json={"title": "seed"}, headers=self.headers, timeout=10
        )
        assert r.status_code == 201, r.text
        return str(r.json()["session_id"])

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(METHOD, path, operation) of every operation in the schema nginx served."""
        for path, item in self.schema.raw_schema["paths"].items():
            for method, op in item.items():
                yield method.upper(), path, op

    def close(self) -> None:
        for s in (self.session, *self.auth_sessions):
            s.close()


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    # A stack of its own: the fuzz fills the database, and the last test stops the API.
    # The long run outlasts the default 30-minute access token: one token serves the whole run.
    stack = Stack(
        tmp_path_factory.mktemp("rest-fuzz-nginx"),
        env_overrides={
            # a session per case: the session quotas (tested in tests/api/test_quotas.py) are lifted
            "ACCESS_TOKEN_MINUTES": "1440",
            "MAX_SESSIONS_PER_USER": "1000000000",
            "SESSIONS_CREATED_PER_MINUTE": "1000000000",
        },
    )
    try:
        stack.start()
        session = https_session()
        schema = schemathesis.openapi.from_url(stack.base_url + "/api/openapi.json", verify=False, timeout=10)
        schema.config.update(base_url=stack.base_url, tls_verify=False)
        username = f"fuzzer{uuid.uuid4().hex[:8]}"
        r = session.post(
            stack.base_url + "/api/auth/register", json={"username": username, "password": PASSWORD}, timeout=10
        )
        assert r.status_code == 201, r.text
        r = session.post(
            stack.base_url + "/api/auth/login", data={"username": username, "password": PASSWORD}, timeout=10
        )
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        me = session.get(stack.base_url + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200, me.text
        state = Fuzz(stack, schema, session, token, me.json()["id"])
        state.own_session()  # so `GET /api/sessions` is not empty
        yield state
        state.close()
        print(
            f"through nginx: {state.cases} generated cases, statuses {dict(sorted(state.statuses.items()))}, "
            f"{state.replays} replays without a valid token"
        )
    except BaseException:
        print(stack.all_logs()[-5000:])
        raise
    finally:
        stack.stop()


# ---- checks on any answer under /api/ -------------------------------------------------------------


def content_type(response: Response | requests.Response) -> str | None:
    value = response.headers.get("content-type")
    return value[0] if isinstance(value, list) else value


def media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def documented_non_json(operation: Any, response: Response | requests.Response) -> bool:
    """A 2xx in a media type other than JSON that the operation documents for it (an AG-UI run's
    `text/event-stream`). Found by `make fuzz`: a generated run that started got its 200 stream."""
    if not 200 <= response.status_code < 300:
        return False
    content = operation.definition.raw.get("responses", {}).get(str(response.status_code), {}).get("content", {})
    got = media_type(content_type(response))
    return got != "application/json" and got in {media_type(documented) for documented in content}


def assert_api_json(response: Response | requests.Response) -> None:
    """Every answer under /api/ is JSON (or an empty 204), whoever sends it. The schema checks alone let nginx's
    HTML pages through wherever a status is documented without a body (400, 401, 404, 409, 429)."""
    what = f"{response.status_code} {content_type(response)}: {response.text[:200]!r}"
    if response.status_code == 204:
        assert not response.content, what
        return
    assert content_type(response) == "application/json", what
    body = response.json()
    assert isinstance(body, (dict, list)), what
    if response.status_code >= 400:
        assert isinstance(body, dict) and isinstance(body.get("detail"), (str, list)), what


def assert_auth_enforced(fuzz: Fuzz, case: Any, session: requests.Session, response: Response) -> None:
    """A secured operation that answered 2xx answers the same request with no token, or a forged one, with 401.

    Schemathesis' own `ignored_auth` check (in the default set) only knows apiKey, http and basic security
    schemes. This API declares OAuth2 (password flow, FastAPI's OAuth2PasswordBearer), for which Schemathesis
    finds no security parameters, so that check passes without sending anything: it is done here instead.
    """
    if not case.operation.definition.raw.get("security") or not 200 <= response.status_code < 300:
        return
    for headers in ({}, fuzz.forged_headers):
        fuzz.replays += 1
        replay = case.call(session=session, headers=headers, verify=False)
        sent = {k.lower(): v for k, v in replay.request.headers.items()}
        assert sent.get("authorization") == headers.get("Authorization"), "the replay must carry only `headers`"
        what = f"{case.operation.label} replayed with {'a forged' if headers else 'no'} token"
        assert replay.status_code == 401, f"{what}: {replay.status_code} {replay.text[:200]!r}"
        assert replay.headers.get("www-authenticate") == ["Bearer"], what
        assert_api_json(replay)


# ---- the fuzz --------------------------------------------------------------------------------------


def test_schema_through_nginx_is_the_apps(fuzz: Fuzz) -> None:
    assert fuzz.schema.raw_schema == create_app(make_settings(Path("/nonexistent"))).openapi()


@pytest.mark.parametrize(("label", "mode"), _cases(), ids=lambda v: str(v))
def test_operation_conforms_to_its_schema_through_nginx(fuzz: Fuzz, label: str, mode: GenerationMode) -> None:
    method, path = label.split(" ", 1)
    operation = fuzz.schema[path][method]
    started = time.monotonic()
    excluded = excluded_checks(operation, mode)  # as in-process

    @given(case=operation.as_strategy(generation_mode=mode))
    @fuzz_settings(EXAMPLES)
    def check(case: Any) -> None:
        next_case(fuzz, case, mode)
        session = fuzz.session_for(path)
        response = case.call(session=session, headers=fuzz.headers, verify=False)
        sent_headers = dict(fuzz.headers)
        fuzz.after(label, response.status_code)
        fuzz.statuses[response.status_code] += 1
        # Every default check: no 5xx, documented status and content type, body matches the response schema,
        # negative data rejected...
        case.validate_response(
            response,
            headers=sent_headers,
            excluded_checks=excluded,
            transport_kwargs={"session": session, "headers": sent_headers, "verify": False},
        )
        if not (path.endswith("/export") and response.status_code == 200) and not documented_non_json(
            operation, response
        ):  # an export is the file itself, an AG-UI run its event stream
            assert_api_json(response)  # ...JSON, from nginx as well...
        assert_password_policy(label, mode, response)  # ...a 422 to valid data only from the password policy...
        assert_auth_enforced(fuzz, case, session, response)  # ...and a 401 without a valid token

    check()
    print(
        f"{label} [{mode}]: {fuzz.cases} cases so far, {time.monotonic() - started:.1f}s, "
        f"statuses {dict(sorted(fuzz.statuses.items()))}"
    )


# ---- nginx's own limits, on every operation ---------------------------------------------------------


def body_type(op: dict[str, Any]) -> str | None:
    return next(iter(op["requestBody"]["content"]), None) if "requestBody" in op else None


def concrete(path: str, session_id: str = "00000000-0000-0000-0000-000000000000") -> str:
    return path.replace("{session_id}", session_id)


def send(
    fuzz: Fuzz, method: str, path: str, session: requests.Session | None = None, **kwargs: Any
) -> requests.Response:
    kwargs.setdefault("headers", {}).update(fuzz.headers)
    response = (session or fuzz.session).request(method, fuzz.stack.base_url + path, timeout=30, **kwargs)
    # e.g. the auth rate-limit test's bodiless POST /api/auth/logout-all: it ends the fuzzer's token too
    fuzz.after(f"{method} {path}", response.status_code)
    return response


EDGE_KINDS = ("body_over_1_mib", "uri_over_8_kib", "nul_in_path", "header_over_8_kib", "api_path_decoded_out_of_api")


def edge_answers(fuzz: Fuzz, kind: str) -> list[tuple[str, int, requests.Response]]:
    if kind not in fuzz.edge_answers:
        fuzz.edge_answers[kind] = list(edge_requests(fuzz, kind))
    assert fuzz.edge_answers[kind], kind
    return fuzz.edge_answers[kind]


def edge_requests(fuzz: Fuzz, kind: str) -> Iterator[tuple[str, int, requests.Response]]:
    """(operation, expected status, answer) for each operation an edge request of `kind` applies to."""
    for method, path, op in fuzz.operations():
        label = f"{method} {path}"
        if kind == "body_over_1_mib" and body_type(op):
            # Declared up front (Content-Length), as clients do: nginx refuses before reading it.
            yield (
                label,
                413,
                send(
                    fuzz, method, concrete(path), data=b"x" * (MIB + 1), headers={"Content-Type": body_type(op) or ""}
                ),
            )
        elif kind == "uri_over_8_kib":  # large_client_header_buffers: 8 KiB for the request line
            yield label, 414, send(fuzz, method, concrete(path) + "?pad=" + "a" * 9000)
        elif kind == "nul_in_path" and "{session_id}" in path:
            # A NUL byte is no part of any path: nginx refuses it. (A bad escape such as `%zz` is too, but
            # requests and urllib3 re-quote that to `%25zz` before sending.)
            yield label, 400, send(fuzz, method, concrete(path, "%00"))
        elif kind == "header_over_8_kib":
            yield label, 400, send(fuzz, method, concrete(path), headers={"Cookie": "pad=" + "a" * 9000})
        elif kind == "api_path_decoded_out_of_api" and "{session_id}" in path:
            yield label, 404, send(fuzz, method, concrete(path, "..%2F..%2Findex.html"))


@pytest.mark.parametrize("kind", EDGE_KINDS)
def test_nginx_limits_status_on_every_operation(fuzz: Fuzz, kind: str) -> None:
    answers = edge_answers(fuzz, kind)
    seen = {label: (r.status_code, content_type(r)) for label, _, r in answers}
    assert all(r.status_code == expected for _, expected, r in answers), seen
    assert all(r.headers["strict-transport-security"] for _, _, r in answers), kind


@pytest.mark.parametrize("kind", EDGE_KINDS)
def test_nginx_limits_answer_api_paths_in_json(fuzz: Fuzz, kind: str) -> None:
    for label, _, r in edge_answers(fuzz, kind):
        try:
            assert_api_json(r)
        except AssertionError as e:
            raise AssertionError(f"{label}: {e}") from None


@pytest.mark.parametrize("path", ["/api/metrics"])
def test_hidden_api_paths_are_a_json_404(fuzz: Fuzz, path: str) -> None:
    r = send(fuzz, "GET", path)
    assert r.status_code == 404
    assert_api_json(r)


@pytest.mark.parametrize("status", ["413"])
def test_body_limit_is_documented(fuzz: Fuzz, status: str) -> None:
    """Every operation with a body can get nginx's 413 (client_max_body_size 1m): the schema must say so."""
    missing = [f"{m} {p}" for m, p, op in fuzz.operations() if body_type(op) and status not in op["responses"]]
    assert not missing, f"{status} not documented on {missing}"


@pytest.mark.parametrize("status", ["429"])
def test_auth_rate_limit_is_json_and_documented(fuzz: Fuzz, status: str) -> None:
    """nginx's limit_req answers every /api/auth/ operation with a JSON 429; the schema must list it."""
    missing = []
    for number, (method, path, op) in enumerate(fuzz.operations()):
        if not path.startswith("/api/auth/"):
            continue
        client = https_session(f"127.0.3.{number + 1}")  # a bucket of its own
        # A body the API refuses quickly (no password hashing), the same for every request.
        body: dict[str, Any] = {"data": {}} if body_type(op) == "application/x-www-form-urlencoded" else {"json": {}}
        for _ in range(60):
            r = send(fuzz, method, path, session=client, **(body if body_type(op) else {}))
            if r.status_code == 429:
                break
        client.close()
        assert r.status_code == 429, (method, path, r.status_code)
        assert r.json() == {"detail": "Too many requests"}, (method, path)
        assert_api_json(r)
        if status not in op["responses"]:
            missing.append(f"{method} {path}")
    assert not missing, f"{status} not documented on {missing}"


# ---- the API's login throttle sees the real client address ------------------------------------------


def test_login_throttle_is_per_client_address_behind_nginx(fuzz: Fuzz) -> None:
    """Throttling is keyed by username + client address. Behind nginx the API must see the client's address
    (nginx's X-Forwarded-For), not nginx's own, and a client cannot choose it by sending X-Forwarded-For."""
    username = f"throttled{uuid.uuid4().hex[:8]}"
    r = send(fuzz, "POST", "/api/auth/register", json={"username": username, "password": PASSWORD})
    assert r.status_code == 201, r.text
    attacker, other = https_session("127.0.4.1"), https_session("127.0.4.2")
    try:

        def login(client: requests.Session, password: str, **headers: str) -> requests.Response:
            return client.post(
                fuzz.stack.base_url + "/api/auth/login",
                timeout=30,
                headers=headers,
                data={"username": username, "password": password},
            )

        for _ in range(5):  # LOGIN_FAILURES_PER_MINUTE
            assert login(attacker, "wrong-password").status_code == 401
        throttled = login(attacker, PASSWORD)
        assert throttled.status_code == 429, throttled.text
        assert throttled.json()["detail"] == "Too many failed logins; try again later"  # the API's, not nginx's
        assert int(throttled.headers["retry-after"]) > 0
        spoofed = login(attacker, PASSWORD, **{"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"})
        assert spoofed.status_code == 429, spoofed.text
        assert login(other, PASSWORD).status_code == 200  # another client is not locked out
    finally:
        attacker.close()
        other.close()


def test_an_agui_run_is_its_documented_event_stream(fuzz: Fuzz) -> None:
    """Regression (`make fuzz`, 2026-11-26): a generated AG-UI run that started got its documented 200
    `text/event-stream`, and the JSON check above failed it. That answer is exempt, and only that one."""
    operation = fuzz.schema["/api/agui/sessions/{session_id}"]["POST"]
    r = fuzz.session.post(
        f"{fuzz.stack.base_url}/api/agui/sessions/{fuzz.own_session()}",
        json=run_input("add 'Streamed' to root"),
        headers={**fuzz.headers, "Accept": "text/event-stream"},
        timeout=30,
    )
    assert r.status_code == 200 and media_type(content_type(r)) == "text/event-stream", r.text[:200]
    assert "RUN_FINISHED" in r.text
    assert documented_non_json(operation, r)
    with pytest.raises(AssertionError):
        assert_api_json(r)
    refused = fuzz.session.post(
        f"{fuzz.stack.base_url}/api/agui/sessions/{fuzz.own_session()}", json={}, headers=fuzz.headers, timeout=30
    )
    assert refused.status_code == 422 and not documented_non_json(operation, refused)


# ---- last: the API goes away behind nginx --------------------------------------------------------------


def test_every_operation_is_a_json_502_while_the_api_is_down(fuzz: Fuzz) -> None:
    fuzz.stack.stop_api()
    try:
        for number, (method, path, op) in enumerate(fuzz.operations()):
            client = https_session(f"127.0.5.{number + 1}")
            body = {"data": b"{}", "headers": {"Content-Type": body_type(op) or ""}} if body_type(op) else {}
            r = send(fuzz, method, concrete(path), session=client, **body)
            client.close()
            assert r.status_code == 502, (method, path, r.status_code)
            assert r.json() == {"detail": "The API is not reachable"}, (method, path)
            assert_api_json(r)
    finally:
        fuzz.stack.start_api()
    fuzz.stack.wait_ready()
