"""The protocol docs agree with `canopy.protocol`, so they cannot drift from the code.

- docs/protocol.schema.json and the generated schemas in docs/asyncapi.yaml are fresh
  (regenerate with `.venv/bin/python scripts/export-schema.py`);
- every client and server message type is documented in docs/protocol.md and docs/asyncapi.yaml;
- every ```json example in docs/protocol.md that is a frame (has "type"), a delta (has "action")
  or a node (has "id" and "value"), and every message example in docs/asyncapi.yaml, validates
  against the models and survives a round trip unchanged (so a misspelt field, which the models
  would silently ignore, fails too);
- docs/asyncapi.yaml parses, declares AsyncAPI 3.x, and its local `$ref`s resolve.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from canopy import protocol

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL_MD = ROOT / "docs" / "protocol.md"
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"
SCHEMA = ROOT / "docs" / "protocol.schema.json"
EXPORTER = ROOT / "scripts" / "export-schema.py"
REGENERATE = "run `.venv/bin/python scripts/export-schema.py` and commit the result"

CLIENT_TYPES = sorted(protocol.client_frames.json_schema()["discriminator"]["mapping"])
SERVER_TYPES = sorted(protocol.server_frames.json_schema()["discriminator"]["mapping"])
DELTAS: TypeAdapter[Any] = TypeAdapter(protocol.Delta)
NODES: TypeAdapter[protocol.Node] = TypeAdapter(protocol.Node)

_JSON_FENCE = re.compile(r"^```json[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _exporter() -> ModuleType:
    spec = importlib.util.spec_from_file_location("export_schema", EXPORTER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _asyncapi() -> dict[str, Any]:
    doc = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _json_examples() -> list[tuple[str, Any]]:
    """(where, parsed value) for every ```json block of docs/protocol.md."""
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    out = []
    for match in _JSON_FENCE.finditer(text):
        where = f"protocol.md:{text.count(chr(10), 0, match.start()) + 1}"
        try:
            out.append((where, json.loads(match.group(1))))
        except json.JSONDecodeError as exc:  # a ```json block must be JSON; use ```jsonc or ```text otherwise
            pytest.fail(f"{where}: not valid JSON: {exc}")
    return out


def _adapter_for(example: dict[str, Any]) -> TypeAdapter[Any] | None:
    if "type" in example:
        if example["type"] in CLIENT_TYPES:
            return protocol.client_frames
        if example["type"] in SERVER_TYPES:
            return protocol.server_frames
        pytest.fail(f"example of unknown frame type {example['type']!r}")
    if "action" in example:
        return DELTAS
    if "id" in example and "value" in example:
        return NODES
    return None


def _checked_items(value: Any) -> list[dict[str, Any]]:
    """The frames, deltas and nodes an example holds (one object, or a list of them)."""
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict) and _adapter_for(item) is not None]


def _assert_exact(adapter: TypeAdapter[Any], example: dict[str, Any], where: str) -> None:
    parsed = adapter.validate_python(example)
    again = adapter.dump_python(parsed, mode="json", exclude_unset=True)
    assert again == example, f"{where}: fields the models do not know or reshape:\n{example}\nvs\n{again}"


# --- (a) generated files are fresh ----------------------------------------------------------


def test_schema_file_is_fresh() -> None:
    assert SCHEMA.exists(), f"docs/protocol.schema.json is missing: {REGENERATE}"
    assert json.loads(SCHEMA.read_text(encoding="utf-8")) == protocol.json_schema(), f"stale schema: {REGENERATE}"
    assert SCHEMA.read_text(encoding="utf-8") == _exporter().schema_text(), f"not pretty/sorted: {REGENERATE}"


def test_asyncapi_schemas_are_fresh() -> None:
    schemas = _asyncapi()["components"]["schemas"]
    assert schemas == _exporter().asyncapi_schemas(), f"stale components.schemas in asyncapi.yaml: {REGENERATE}"


# --- (b) every message type is documented -------------------------------------------------


def test_protocol_types_are_the_declared_ones() -> None:
    assert set(CLIENT_TYPES) == set(protocol.CLIENT_TYPES)
    assert not set(CLIENT_TYPES) & set(SERVER_TYPES)


@pytest.mark.parametrize("frame_type", CLIENT_TYPES + SERVER_TYPES)
def test_every_type_is_in_protocol_md_with_an_example(frame_type: str) -> None:
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    assert f"`{frame_type}`" in text, f"docs/protocol.md does not mention `{frame_type}`"
    headings = [line for line in text.splitlines() if line.startswith("#") and f"`{frame_type}`" in line]
    assert headings, f"docs/protocol.md has no heading for `{frame_type}`"
    examples = [item for _, value in _json_examples() for item in _checked_items(value)]
    assert any(item.get("type") == frame_type for item in examples), (
        f"docs/protocol.md has no ```json example of a `{frame_type}` frame"
    )


def test_every_type_is_in_asyncapi() -> None:
    doc = _asyncapi()
    messages = doc["components"]["messages"]
    schemas = doc["components"]["schemas"]
    assert sorted(messages) == sorted(CLIENT_TYPES + SERVER_TYPES)
    for name, message in messages.items():
        assert message["name"] == name
        schema_name = message["payload"]["$ref"].removeprefix("#/components/schemas/")
        assert schemas[schema_name]["properties"]["type"]["const"] == name, f"{name}: payload is {schema_name}"
    channel = doc["channels"]["session"]
    assert channel["address"] == "/ws/session"
    assert sorted(channel["messages"]) == sorted(messages)

    def names(refs: list[dict[str, str]]) -> set[str]:
        return {ref["$ref"].removeprefix("#/channels/session/messages/") for ref in refs}

    sent = [names(op["messages"]) for op in doc["operations"].values() if op["action"] == "send"]
    received = [names(op["messages"]) for op in doc["operations"].values() if op["action"] == "receive"]
    assert set().union(*sent) == set(CLIENT_TYPES)
    assert set().union(*received) == set(SERVER_TYPES)


# --- (c) the examples match the models ----------------------------------------------------


def _md_cases() -> list[Any]:
    cases = []
    for where, value in _json_examples():
        for i, item in enumerate(_checked_items(value)):
            cases.append(pytest.param(item, id=f"{where}#{i}" if isinstance(value, list) else where))
    return cases


@pytest.mark.parametrize("example", _md_cases())
def test_protocol_md_example_matches_the_models(example: dict[str, Any], request: pytest.FixtureRequest) -> None:
    adapter = _adapter_for(example)
    assert adapter is not None
    _assert_exact(adapter, example, request.node.callspec.id)


def test_protocol_md_has_examples() -> None:
    assert len(_md_cases()) >= len(CLIENT_TYPES) + len(SERVER_TYPES)


def test_asyncapi_examples_match_the_models() -> None:
    for name, message in _asyncapi()["components"]["messages"].items():
        examples = message.get("examples") or []
        assert examples, f"asyncapi.yaml: message {name} has no example"
        for example in examples:
            payload = example["payload"]
            assert payload["type"] == name
            adapter = protocol.client_frames if name in CLIENT_TYPES else protocol.server_frames
            _assert_exact(adapter, payload, f"asyncapi.yaml {name}")


# --- (d) asyncapi.yaml is a well-formed AsyncAPI 3 document ----------------------------------


def test_asyncapi_parses_and_is_version_3() -> None:
    doc = _asyncapi()
    assert isinstance(doc.get("asyncapi"), str) and doc["asyncapi"].startswith("3."), doc.get("asyncapi")
    assert {"info", "servers", "channels", "operations", "components"} <= set(doc)
    assert doc["servers"]["local"] == {**doc["servers"]["local"], "host": "localhost:8443", "protocol": "wss"}
    assert set(doc["components"]["securitySchemes"]) == {"firstMessageToken", "queryToken"}


def test_asyncapi_local_refs_resolve() -> None:
    doc = _asyncapi()

    def resolve(ref: str) -> None:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
            node = node[part]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                resolve(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
