"""Protocol fuzzing against the live app: whatever a client sends, the socket answers with a valid
frame or an error code from the contract, stays usable, and the tree keeps its invariants."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from canopy.main import create_app
from canopy.protocol import server_frames
from canopy.tree import Tree
from tests.conftest import make_settings
from tests.support.ws import init, login

LONG = os.environ.get("CANOPY_FUZZ") == "long"
EXAMPLES = int(os.environ.get("CANOPY_FUZZ_EXAMPLES", 200_000 if LONG else 10_000))
ALLOWED_ERRORS = {400, 404, 409, 413, 429, 500}

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(3600 if LONG else 600)]


class Live:
    def __init__(self, tc: TestClient, token: str) -> None:
        self.tc = tc
        self.token = token
        self.pings = 0
        self.ws: Any = None
        self.connect()

    def connect(self) -> None:
        self.ctx = self.tc.websocket_connect("/ws/session")
        self.ws = self.ctx.__enter__()
        ready = init(self.ws, self.token)
        self.rev = ready["data"]["rev"]
        self.ids = [n for n in Tree.from_dict(ready["data"]["initial_tree"], ready["data"]["rev"]).iter_ids()]

    def settle(self) -> list[dict[str, Any]]:
        """Sends a ping with a fresh id and returns every frame received before its pong."""
        self.pings += 1
        marker = f"fuzz-{self.pings}"
        self.ws.send_json({"type": "ping", "data": {}, "id": marker})
        seen: list[dict[str, Any]] = []
        while True:
            frame = self.ws.receive_json()
            server_frames.validate_python(frame)
            if frame["type"] == "pong" and frame.get("id") == marker:
                return seen
            seen.append(frame)
            if frame["type"] == "tree_update":
                self.rev = frame["data"]["rev"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    s = make_settings(
        tmp,
        offline_chunk_delay_ms=0,
        rate_limit_frames_per_second=1e9,
        rate_limit_frame_burst=10**9,
        rate_limit_prompts_per_minute=10**9,
        tree_max_nodes=2000,
        access_token_minutes=24 * 60,  # the long run (200,000 frames) may outlive the default 30 minutes
    )
    with TestClient(create_app(s)) as tc:
        live = Live(tc, login(tc, "fuzzer"))
        yield live
        live.ws.send_json({"type": "close_session", "data": {}})
        live.ctx.__exit__(None, None, None)


ids = st.sampled_from(["root", "n1", "n2", "x", "", "a/b", "../root", "é", "n-" + "9" * 70])
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
paths = st.builds(lambda parts: "/" + "/".join(parts), st.lists(ids, min_size=0, max_size=4)) | st.text(max_size=20)
nodes = st.fixed_dictionaries(
    {"id": ids | st.text(max_size=10), "value": st.text(max_size=30)},
    optional={"children": st.just([]), "props": st.dictionaries(st.text(max_size=5), json_scalars, max_size=3)},
)
deltas = st.one_of(
    st.fixed_dictionaries(
        {"action": st.just("add"), "path": paths.map(lambda p: p + "/children"), "node": nodes},
        optional={"index": st.integers(-5, 50)},
    ),
    st.fixed_dictionaries(
        {
            "action": st.just("update"),
            "path": paths,
            "fields": st.fixed_dictionaries(
                {},
                optional={"value": st.text(max_size=20), "props": st.dictionaries(st.text(max_size=5), json_scalars)},
            ),
        }
    ),
    st.fixed_dictionaries({"action": st.just("remove"), "path": paths}),
    st.fixed_dictionaries(
        {"action": st.just("move"), "path": paths, "to": paths.map(lambda p: p + "/children")},
        optional={"index": st.integers(-5, 50)},
    ),
    json_values,
)
client_types = st.sampled_from(["user_prompt", "tree_op", "cancel", "undo", "redo", "resync", "ping", "bogus", ""])
valid_shaped = st.builds(
    lambda t, data, fid: {"type": t, "data": data, **({"id": fid} if fid else {})},
    client_types,
    st.one_of(
        st.fixed_dictionaries(
            {
                "prompt": st.text(max_size=60)
                | st.sampled_from(
                    ["add A to root", "Add 'x', 'y' and 'z' under root", "delete A", "undo", "clear", "move A under x"]
                )
            }
        ),
        st.fixed_dictionaries({"delta": deltas, "base_rev": st.integers(-2, 40)}),
        st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    ),
    st.none() | st.text(max_size=10),
)
frames = st.one_of(
    valid_shaped.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=100),
    st.integers(1, 40).map(lambda depth: '{"type": "ping", "data": ' + "[" * depth * 50 + "]" * depth * 50 + "}"),
    st.sampled_from(
        [
            json.dumps({"type": "ping", "data": {"pad": "\U0001f333" * 17_000}}),
            '{"type": "ping", "data": {}, "id": "\\ud800"}',
            "\x00",
            "{}",
            "null",
        ]
    ),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(raw=frames)
def test_any_frame_gets_a_contract_answer_and_the_socket_lives(live: Live, raw: str | bytes) -> None:
    if isinstance(raw, bytes):
        live.ws.send_bytes(raw)
    else:
        live.ws.send_text(raw)
    for frame in live.settle():
        if frame["type"] == "error":
            assert frame["error"]["code"] in ALLOWED_ERRORS, frame


def test_tree_invariants_hold_after_fuzzing(live: Live) -> None:
    live.ws.send_json({"type": "resync", "data": {}, "id": "final"})
    while True:
        frame = live.ws.receive_json()
        if frame["type"] == "tree_snapshot":
            break
    tree = Tree.from_dict(frame["data"]["tree"], frame["data"]["rev"])  # validates every node, id and limit
    assert tree.rev == frame["data"]["rev"]
    state = live.tc.get("/api/sessions", headers={"Authorization": f"Bearer {live.token}"}).json()
    assert state[0]["node_count"] == len(tree)
