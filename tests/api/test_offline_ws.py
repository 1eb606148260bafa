"""The offline assistant through the real app and session (TestClient, real SQLite): issue #14's server side."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from canopy.assistant.offline import CHEAT_SHEET
from tests.support.ws import collect_turn, login, recv, session_socket

pytestmark = pytest.mark.timeout(60)
Frame = dict[str, Any]


def prompt(ws: Any, text: str) -> tuple[str, list[Frame]]:
    """Sends a prompt; returns the final reply and the tree updates of the turn."""
    ws.send_json({"type": "user_prompt", "data": {"prompt": text}})
    frames = collect_turn(ws)
    updates = [f for f in frames if f["type"] == "tree_update"]
    return frames[-1]["data"]["text"], updates


def tree(ws: Any) -> Frame:
    ws.send_json({"type": "resync", "data": {}})
    frame = recv(ws)
    assert frame["type"] == "tree_snapshot"
    snapshot: Frame = frame["data"]["tree"]
    return snapshot


def outline(node: Frame) -> list[Any]:
    return [c["value"] if not c["children"] else {c["value"]: outline(c)} for c in node["children"]]


def test_session_ready_names_the_offline_assistant_and_its_cheat_sheet(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (_, ready):
        assert ready["data"]["assistant"] == {"name": "offline", "examples": list(CHEAT_SHEET)}


def test_the_readme_example_works_on_a_new_account_and_one_undo_removes_it_all(tc: TestClient) -> None:
    with session_socket(tc, login(tc, "newcomer")) as (ws, ready):
        assert ready["data"]["initial_tree"]["children"] == []
        reply, updates = prompt(ws, "Add 'Design', 'Build' and 'Launch' under Project")
        assert "no 'Project', so I created it under the root" in reply
        assert len(updates) == 4
        assert outline(tree(ws)) == [{"Project": ["Design", "Build", "Launch"]}]
        ws.send_json({"type": "undo", "data": {}})
        undone = [recv(ws) for _ in range(4)]  # one change set: the parent and its three children
        assert all(u["type"] == "tree_update" and u["data"]["origin"] == "undo" for u in undone)
        assert outline(tree(ws)) == []


def test_it_refers_to_the_previous_turns_node(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        prompt(ws, "create a list called Groceries with eggs and milk")
        reply, _ = prompt(ws, "rename it to Shopping")
        assert reply == "Renamed 'Groceries' to 'Shopping'."
        prompt(ws, "add Bread under Shopping")
        prompt(ws, "mark it as done")
        snapshot = tree(ws)
        assert outline(snapshot) == [{"Shopping": ["eggs", "milk", "Bread"]}]
        assert snapshot["children"][0]["children"][2]["props"] == {"status": "done"}


def test_undo_several_and_redo_from_the_chat(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        for value in ("A", "B", "C"):
            prompt(ws, f"add {value}")
        reply, updates = prompt(ws, "undo the last 2 changes")
        assert reply == "Undid the last 2 changes." and [u["data"]["origin"] for u in updates] == ["undo"] * 2
        assert outline(tree(ws)) == ["A"]
        reply, _ = prompt(ws, "redo")
        assert reply == "Redid the last change." and outline(tree(ws)) == ["A", "B"]
        reply, _ = prompt(ws, "undo the last 5 changes")
        assert reply == "Undid 2 changes; there was nothing more to undo." and outline(tree(ws)) == []


def test_a_command_not_understood_changes_nothing(tc: TestClient) -> None:
    with session_socket(tc, login(tc)) as (ws, _):
        prompt(ws, "add Design, Build and Launch under Project")
        reply, updates = prompt(ws, "add Testing after Lanch")
        assert updates == [] and "did you mean 'Launch'" in reply
        reply, updates = prompt(ws, "add Research under Project and frobnicate it")
        assert updates == [] and "frobnicate it" in reply and "Nothing was changed" in reply
        assert outline(tree(ws)) == [{"Project": ["Design", "Build", "Launch"]}]
