"""Soak: simulated users against the real stack for a bounded time; the API worker's memory must plateau.

The load engine, its pass criteria and its report are bench/loadclient.py (see its docstring); this test runs
it as its own process (`python -m bench.loadclient`), as `make fuzz` sizes it (tests/support/soak.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.soak import HARD_TIMEOUT
from tests.support.stack import ROOT, WEB_DIST

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(int(HARD_TIMEOUT) + 180)]


def test_soak(tmp_path: Path) -> None:
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail(f"No web bundle in {WEB_DIST}: run `make web-build` first (`make test` does).", pytrace=False)
    result = tmp_path / "result.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.loadclient", str(tmp_path / "stack"), "--result", str(result)],
        cwd=ROOT,
        timeout=HARD_TIMEOUT + 120,
        check=False,
    )
    assert result.is_file(), f"the load engine ended (exit {run.returncode}) without a result"
    failures = json.loads(result.read_text())["failures"]
    assert not failures, "\n\n".join(failures)
    assert run.returncode == 0
