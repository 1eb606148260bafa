"""The `stack` fixture for the browser tests: the real gunicorn (scripts/api.sh) behind the
real nginx with TLS, on free ports, once per session (same as tests/stack/conftest.py,
which pytest does not load for this folder).

The web bundle must be in services/web/dist (`make test` builds it first); if it is
missing it is built once here with `npm run build`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.stack.harness import ROOT, WEB_DIST, Stack


def _ensure_web_bundle() -> None:
    if (WEB_DIST / "index.html").is_file():
        return
    web = ROOT / "services" / "web"
    if web / "dist" != WEB_DIST:
        pytest.fail(f"No web bundle in {WEB_DIST} (CANOPY_STACK_WEB_ROOT)", pytrace=False)
    result = subprocess.run(["npm", "run", "build"], cwd=web, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 or not (WEB_DIST / "index.html").is_file():
        pytest.fail(f"`npm run build` failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}", pytrace=False)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _ensure_web_bundle()
    running = Stack(tmp_path_factory.mktemp("stack"))
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
