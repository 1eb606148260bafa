"""The `stack` fixture: the real gunicorn (scripts/api.sh) behind the real nginx (the
rendered template) with TLS, on free ports, for the whole test session.

It builds nothing: the web bundle must already be in services/web/dist (make test builds
it first). Output of both processes goes to files (`stack.log_paths`) for log checks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import WEB_DIST, Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail(f"No web bundle in {WEB_DIST}: run `make web-build` first (`make test` does).", pytrace=False)
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
