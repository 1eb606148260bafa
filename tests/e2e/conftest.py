"""Fixtures of the browser tests. They use the same `stack` fixture as the stack tests (real gunicorn
behind real nginx with TLS, on free ports); pytest does not load tests/stack/conftest.py for this folder.

Module-scoped: the tests of one module run in order on one browser, one context and one tab, each
step building on the previous one. A module may define its own `context` or `page` instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.stack.conftest import stack  # noqa: F401 - the session-wide stack fixture
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, BrowserLog
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser_log() -> BrowserLog:
    return BrowserLog()


@pytest.fixture(scope="module")
def context(browser: Browser, browser_log: BrowserLog, stack: Stack) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=VIEWPORT, ignore_https_errors=True, base_url=stack.base_url)
    ctx.set_default_timeout(15_000)
    ctx.on("page", browser_log.watch)
    # Reports every CSP violation as a console error too (Chromium already logs most of them).
    ctx.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) => console.error("
        "'CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')))"
    )
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def page(context: BrowserContext) -> Page:
    """The first tab; it stays open (and logged in) for the whole module."""
    return context.new_page()
