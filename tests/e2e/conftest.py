"""The browser tests use the same `stack` fixture as the stack tests (real gunicorn behind real
nginx with TLS, on free ports); pytest does not load tests/stack/conftest.py for this folder."""

from tests.stack.conftest import stack  # noqa: F401 - the session-wide stack fixture
