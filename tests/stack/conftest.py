"""The `stack` fixture: the real gunicorn (scripts/api.sh) behind the real nginx (the
rendered template) with TLS, on free ports, for the whole test session.

It builds nothing: the web bundle must already be in services/web/dist (make test builds
it first). Output of both processes goes to files (`stack.log_paths`) for log checks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running
