"""Storage failures in the log: unexpected ones with their traceback, expected driver errors as one line;
never the SQL parameters, which hold what users type."""

from __future__ import annotations

import io
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from canopy.main import create_app
from tests.conftest import make_settings
from tests.support.ws import login, recv, session_socket

pytestmark = pytest.mark.timeout(60)

SECRET_TEXT = "zebra-lullaby-7731"  # what a user typed: must never reach the log


@pytest.fixture
def canopy_log() -> Iterator[io.StringIO]:
    """The `canopy` logger's output (it does not propagate to the root, so caplog would miss it)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("canopy")
    logger.addHandler(handler)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


def first_error(ws: object) -> dict[str, object]:
    while True:
        frame = recv(ws)
        if frame["type"] == "error":
            return frame


def test_an_unexpected_storage_failure_is_logged_with_its_traceback_and_no_parameters(
    tmp_path: Path, canopy_log: io.StringIO
) -> None:
    settings = make_settings(tmp_path, offline_chunk_delay_ms=0)
    with TestClient(create_app(settings)) as tc:
        token = login(tc)
        with session_socket(tc, token) as (ws, _):
            with sqlite3.connect(tmp_path / "canopy.db") as db:  # a failure no operator causes: a bug's stand-in
                db.execute("CREATE TRIGGER refuse BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'refused'); END")
            ws.send_json({"type": "user_prompt", "id": "p", "data": {"prompt": f"add '{SECRET_TEXT}' under root"}})
            assert first_error(ws)["id"] == "p"
    log = canopy_log.getvalue()
    assert "could not store a message" in log and "IntegrityError" in log and "refused" in log
    assert "Traceback (most recent call last)" in log and "store.py" in log  # the frames, down to the store
    assert SECRET_TEXT not in log


def test_an_expected_driver_error_is_one_line_without_parameters(tmp_path: Path, canopy_log: io.StringIO) -> None:
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings)) as tc:
        token = login(tc)
        with session_socket(tc, token) as (ws, _):
            blocker = sqlite3.connect(tmp_path / "canopy.db", timeout=0)
            blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock past busy_timeout
            try:
                node = {"id": "a", "value": SECRET_TEXT, "children": []}
                ws.send_json(
                    {
                        "type": "tree_op",
                        "id": "op",
                        "data": {"delta": {"action": "add", "path": "/root/children", "node": node}, "base_rev": 0},
                    }
                )
                assert first_error(ws)["id"] == "op"
            finally:
                blocker.rollback()
                blocker.close()
    lines = [line for line in canopy_log.getvalue().splitlines() if "commit failed" in line]
    assert len(lines) == 1 and "database is locked" in lines[0]
    assert "Traceback" not in canopy_log.getvalue() and SECRET_TEXT not in canopy_log.getvalue()
