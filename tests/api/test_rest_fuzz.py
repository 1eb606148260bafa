"""REST fuzzing with Schemathesis against the app's own OpenAPI schema, in-process (ASGI).

Every operation in `/api/openapi.json` gets generated requests, valid and invalid; each answer must be no
5xx, a documented status code, a documented content type and a body that matches the response schema.
Authenticated routes are called with a real bearer token, so the sessions routes are exercised past auth
(Schemathesis also replays them without it and expects a 401).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from canopy.main import create_app
from canopy.security import create_access_token
from tests.conftest import make_settings
from tests.helpers import TEST_SECRET

LONG = os.environ.get("CANOPY_FUZZ") == "long"
EXAMPLES = int(os.environ.get("CANOPY_REST_FUZZ_EXAMPLES", 2000 if LONG else 40))

# Operations that end every token of the caller when they succeed.
ENDS_LOGINS = frozenset({"POST /api/auth/logout-all", "POST /api/auth/password"})

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(3600 if LONG else 300)]


def _cases() -> list[tuple[str, GenerationMode]]:
    """`METHOD /path` of every documented operation (from the schema the app serves), positive and negative.

    Negative data needs something to violate: operations with no parameters and no body get positive only.
    """
    spec = create_app(make_settings(Path("/nonexistent"))).openapi()  # building the schema starts nothing
    out = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            label = f"{method.upper()} {path}"
            out.append((label, GenerationMode.POSITIVE))
            if op.get("parameters") or op.get("requestBody"):
                out.append((label, GenerationMode.NEGATIVE))
    return sorted(out)


def assert_password_policy(label: str, mode: GenerationMode, response: Any) -> None:
    """Where `excluded_checks` lets a 422 to schema-valid data pass for the password policy, that 422 must be
    a refusal by the policy: every error names one of its rules."""
    if mode is GenerationMode.POSITIVE and label in PASSWORD_POLICY and response.status_code == 422:
        detail = response.json()["detail"]
        assert detail and all(any(rule in item["msg"] for rule in POLICY_RULES) for item in detail), detail


def _cookie_params(operation: Any) -> bool:
    return any(p.get("in") == "cookie" for p in operation.definition.raw.get("parameters", []))


# Bodies whose meaning no schema can state: a file the import parses (422 naming its line), an AG-UI
# RunAgentInput whose last user message is the prompt. A schema-valid body may still be refused there.
SEMANTIC_BODIES = {
    "POST /api/sessions/import",
    "POST /api/sessions/{session_id}/import",
    "POST /api/agui/sessions/{session_id}",
}


# A new password the schema allows may still be refused by the password policy (one of the most common
# passwords, only whitespace, the username): a documented 422. `assert_password_policy` checks that such a
# 422 names the policy and nothing else. (Found by `make fuzz`: Hypothesis generated a common password.)
PASSWORD_POLICY = {"POST /api/auth/register", "POST /api/auth/password"}
POLICY_RULES = ("most common passwords", "only whitespace", "the username")


def excluded_checks(operation: Any, mode: GenerationMode) -> list[Any] | None:
    """A negative cookie value holding `;` reaches the app cut at the `;` (how Cookie headers parse), so an
    over-long value can arrive valid: "invalid data accepted" there is an artefact of the transport.
    For SEMANTIC_BODIES a 422 to schema-valid data is the documented answer, not a rejected valid request;
    for PASSWORD_POLICY too, when it names the policy (`assert_password_policy`)."""
    label = f"{operation.method.upper()} {operation.path}"
    if mode is GenerationMode.POSITIVE and label in PASSWORD_POLICY:
        return [positive_data_acceptance]
    if mode is GenerationMode.NEGATIVE and _cookie_params(operation):
        return [negative_data_rejection]
    if mode is GenerationMode.NEGATIVE and f"{operation.method.upper()} {operation.path}" in SEMANTIC_BODIES:
        # An import's content may be longer than nginx's 1 MiB body limit: nginx answers 413 before the
        # app's 422, which schemathesis does not count as a rejection.
        return [negative_data_rejection]
    if mode is GenerationMode.POSITIVE and f"{operation.method.upper()} {operation.path}" in SEMANTIC_BODIES:
        return [positive_data_acceptance]
    return None


def next_case(fuzz: Any, case: Any, mode: GenerationMode) -> None:
    """Counts the case; half the positive ones on a session path target one of the caller's own sessions,
    so GET, PATCH and DELETE are exercised past the 404."""
    fuzz.cases += 1
    if mode is GenerationMode.POSITIVE and "session_id" in (case.path_parameters or {}) and fuzz.cases % 2:
        case.path_parameters["session_id"] = fuzz.own_session()


def fuzz_settings(examples: int) -> settings:
    """One fixed run per commit in `make test` (derandomised); fresh examples in the long run."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=not LONG,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )


class FuzzerToken:
    """The fuzzer's own bearer token (`headers`), which follows the user's token generation; `secret` is the
    API's SECRET_KEY."""

    def __init__(self, token: str, user_id: str, secret: str) -> None:
        self.headers = {"Authorization": f"Bearer {token}"}
        self.user_id = user_id
        self.generation = 0
        self.secret = secret

    def after(self, label: str, status: int) -> None:
        """A logout-all (or password change) that went through ends the fuzzer's token: it gets the next
        generation's, signed as the API would, so the fuzz goes on past authentication."""
        if label in ENDS_LOGINS and 200 <= status < 300:
            self.generation += 1
            token, _ = create_access_token(self.user_id, self.secret, 24 * 60, self.generation)
            self.headers = {"Authorization": f"Bearer {token}"}


class Fuzz(FuzzerToken):
    def __init__(self, schema: Any, client: Any, token: str, user_id: str) -> None:
        super().__init__(token, user_id, TEST_SECRET)
        self.schema = schema
        self.client = client
        # The fuzzer's own user id, well formed and unexpired, but signed with another key.
        self.forged_headers = {"Authorization": f"Bearer {create_access_token(user_id, 'x' + TEST_SECRET, 30)[0]}"}
        self.cases = 0
        self.statuses: dict[int, int] = {}

    def own_session(self) -> str:
        """A fresh session of the fuzzer's, so `{session_id}` routes get past the 404 too."""
        r = self.client.post("/api/sessions", json={"title": "seed"}, headers=self.headers)
        assert r.status_code == 201, r.text
        return str(r.json()["session_id"])


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    # The long run outlasts the default 30-minute access token: one token serves the whole run. It makes a
    # session per case: the session quotas (tested in test_quotas.py) are lifted.
    app = create_app(
        make_settings(
            tmp_path_factory.mktemp("rest-fuzz"),
            offline_chunk_delay_ms=0,
            access_token_minutes=24 * 60,
            max_sessions_per_user=10**9,
            sessions_created_per_minute=10**9,
        )
    )
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)  # also starts the app's lifespan
    with asgi.get_client(cast(Any, app)) as client:  # its ASGI type uses dict where Starlette says MutableMapping
        client.base_url = "https://testserver"
        r = client.post("/api/auth/register", json={"username": "fuzzer", "password": "fuzzer-password"})
        assert r.status_code == 201, r.text
        r = client.post("/api/auth/login", data={"username": "fuzzer", "password": "fuzzer-password"})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        state = Fuzz(schema, client, token, me.json()["id"])
        state.own_session()  # so `GET /api/sessions` is not empty
        yield state
    asgi.shutdown_lifespans()


@pytest.mark.parametrize(("label", "mode"), _cases(), ids=lambda v: str(v))
def test_operation_conforms_to_its_schema(fuzz: Fuzz, label: str, mode: GenerationMode) -> None:
    method, path = label.split(" ", 1)
    operation = fuzz.schema[path][method]
    started = time.monotonic()
    excluded = excluded_checks(operation, mode)

    @given(case=operation.as_strategy(generation_mode=mode))
    @fuzz_settings(EXAMPLES)
    def check(case: Any) -> None:
        next_case(fuzz, case, mode)
        # Every default check: no 5xx, documented status and content type, body matches the response schema...
        sent_headers = dict(fuzz.headers)
        response = case.call_and_validate(headers=sent_headers, excluded_checks=excluded)
        assert_password_policy(label, mode, response)
        fuzz.after(label, response.status_code)
        fuzz.statuses[response.status_code] = fuzz.statuses.get(response.status_code, 0) + 1
        # ...and a 401 without a valid token. Schemathesis' own `ignored_auth` check does nothing here: it only
        # knows apiKey, http and basic schemes, and this API declares OAuth2 (password flow).
        if operation.definition.raw.get("security") and 200 <= response.status_code < 300:
            for headers in ({}, fuzz.forged_headers):
                replay = case.call(headers=headers)
                assert replay.status_code == 401, (label, bool(headers), replay.status_code, replay.text[:200])

    check()
    print(f"{label} [{mode}]: {fuzz.cases} cases so far, {time.monotonic() - started:.1f}s, statuses {fuzz.statuses}")


@pytest.mark.parametrize("new_password", ["password123", "qwertyuiop"])
def test_a_common_new_password_is_the_documented_422_and_passes_the_checks(fuzz: Fuzz, new_password: str) -> None:
    """Regression (`make fuzz`, 2026-11-26): a schema-valid common password got the documented 422, which
    schemathesis' positive_data_acceptance took for a valid request rejected; the fuzz failed."""
    label, mode = "POST /api/auth/password", GenerationMode.POSITIVE
    operation = fuzz.schema["/api/auth/password"]["POST"]
    statuses = []

    @given(case=operation.as_strategy(generation_mode=mode))  # a generated case: the checks know its mode
    @fuzz_settings(1)
    def check(case: Any) -> None:
        case.body = {"current_password": "fuzzer-password", "new_password": new_password}
        response = case.call_and_validate(headers=fuzz.headers, excluded_checks=excluded_checks(operation, mode))
        assert_password_policy(label, mode, response)
        statuses.append(response.status_code)

    check()
    assert statuses == [422]
    # The own check is not a blank cheque: another 422 to the same operation fails it.
    other = type("Answer", (), {"status_code": 422, "json": lambda self: {"detail": [{"msg": "Field required"}]}})()
    with pytest.raises(AssertionError):
        assert_password_policy(label, mode, other)
