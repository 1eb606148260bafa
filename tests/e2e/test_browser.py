"""Browser end-to-end tests: Chromium (Playwright, sync API) against the real stack
(gunicorn + nginx with TLS, the built web bundle, the offline assistant).

The tests of this module run in order and share one browser, one context (so one login)
and one user: each step builds on the tree the previous one left, so run the module
as a whole (a test picked alone with -k fails for want of its predecessors). They never sleep; they
wait with Playwright's auto-waiting `expect` assertions.
"""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.app_page import (
    RECONNECT_TIMEOUT,
    TURN_TIMEOUT,
    badge,
    expect_connected,
    node,
    send_prompt,
    sign_up,
    tree,
)
from tests.support.browser import BrowserLog
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.timeout(180)

SCREENSHOT = ROOT / "docs" / "screenshot.png"

USERNAME = f"e2e_{secrets.token_hex(4)}"
PASSWORD = f"Pw-{secrets.token_hex(8)}-e2e!"


# ------------------------------------------------------------------ tests


def test_create_account_and_log_in(page: Page) -> None:
    response = page.goto("/")
    assert response is not None and response.ok
    # The CSP the last test relies on is really sent.
    assert "script-src 'self'" in (response.header_value("content-security-policy") or "")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()

    sign_up(page, USERNAME, PASSWORD)

    expect(page).not_to_have_url(re.compile(r"/login"))
    expect(tree(page)).to_be_visible()
    expect(page.get_by_label("Message")).to_be_visible()
    expect_connected(page)


def test_prompt_adds_a_node(page: Page) -> None:
    send_prompt(page, "Add a new node with value 'Task 1' under root")
    expect(node(page, "Task 1")).to_be_visible(timeout=TURN_TIMEOUT)
    expect(node(page, "Task 1")).to_have_count(1)


def test_reload_keeps_the_tree(page: Page) -> None:
    page.reload()
    expect(page).not_to_have_url(re.compile(r"/login"))  # the silent refresh logs back in
    expect_connected(page)
    expect(node(page, "Task 1")).to_be_visible()


def test_second_tab_sees_changes_from_the_first(page: Page, context: BrowserContext) -> None:
    second = context.new_page()
    try:
        second.goto(page.url)
        expect_connected(second)
        expect(node(second, "Task 1")).to_be_visible()
        expect(node(second, "Shared")).to_have_count(0)

        send_prompt(page, "add Shared to root")
        expect(node(page, "Shared")).to_be_visible(timeout=TURN_TIMEOUT)
        expect(node(second, "Shared")).to_be_visible(timeout=TURN_TIMEOUT)
        # The other tab's prompt shows in this tab's conversation as well.
        expect(second.get_by_label("Conversation").get_by_text("add Shared to root").first).to_be_visible()
    finally:
        second.close()


def test_reconnects_after_the_api_restarts_without_losing_anything(page: Page, stack: Stack) -> None:
    expect_connected(page)
    stack.stop_api()
    try:
        expect(badge(page)).to_have_text("Reconnecting\u2026", timeout=RECONNECT_TIMEOUT)
    finally:
        stack.start_api()
        stack.wait_ready()

    expect_connected(page, timeout=RECONNECT_TIMEOUT)
    expect(node(page, "Task 1")).to_be_visible()
    expect(node(page, "Shared")).to_be_visible()

    send_prompt(page, "add 'After restart' to root")
    expect(node(page, "After restart")).to_be_visible(timeout=TURN_TIMEOUT)
    expect(node(page, "Task 1")).to_be_visible()
    expect(node(page, "Shared")).to_be_visible()


def test_undo_and_redo_buttons(page: Page) -> None:
    expect(node(page, "After restart")).to_be_visible()

    page.get_by_role("button", name="Undo").click()
    expect(node(page, "After restart")).to_have_count(0, timeout=TURN_TIMEOUT)
    expect(node(page, "Task 1")).to_be_visible()
    expect(node(page, "Shared")).to_be_visible()

    page.get_by_role("button", name="Redo").click()
    expect(node(page, "After restart")).to_be_visible(timeout=TURN_TIMEOUT)

    page.get_by_role("button", name="Undo").click()
    expect(node(page, "After restart")).to_have_count(0, timeout=TURN_TIMEOUT)

    # Undone for good: a reload shows the server's tree, not a stale one.
    page.reload()
    expect_connected(page)
    expect(node(page, "Task 1")).to_be_visible()
    expect(node(page, "After restart")).to_have_count(0)


def test_dashboard_screenshot(page: Page) -> None:
    send_prompt(page, "add 'Write the report', 'Review pull requests' and 'Book the venue' under 'Task 1'")
    send_prompt(page, "set priority of 'Write the report' to high")
    send_prompt(page, "add 'Groceries' to root")
    send_prompt(page, "add 'Milk', 'Bread' and 'Coffee' under Groceries")
    expand_all = page.get_by_role("button", name="Expand all")
    if expand_all.count():
        expand_all.click()
    for value in ("Task 1", "Shared", "Write the report", "Book the venue", "Groceries", "Coffee"):
        expect(node(page, value)).to_be_visible(timeout=TURN_TIMEOUT)
    expect_connected(page)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000


# Expected while the API is down: the WebSocket handshake and API calls fail (nginx answers
# 502); before login the silent refresh answers 401.
EXPECTED_ERRORS = re.compile(
    r"WebSocket connection to .* failed"
    r"|Failed to load resource: the server responded with a status of (401|502|503|504)",
    re.I,
)
CSP_ERRORS = re.compile(
    r"CSP violation|Content Security Policy|Content-Security-Policy|Refused to (load|execute|apply|connect|frame)",
    re.I,
)


def test_no_csp_violations_or_javascript_errors(browser_log: BrowserLog) -> None:
    csp = [e for e in browser_log.console_errors if CSP_ERRORS.search(e)]
    assert not csp, "CSP violations:\n" + "\n".join(csp)
    assert not browser_log.page_errors, "uncaught page errors:\n" + "\n".join(browser_log.page_errors)
    print("console errors seen (expected ones included):", *browser_log.console_errors, sep="\n  ")
    unexpected = [e for e in browser_log.console_errors if not EXPECTED_ERRORS.search(e)]
    assert not unexpected, "unexpected console errors:\n" + "\n".join(unexpected)
