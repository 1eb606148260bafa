"""The app's screens as a user meets them, for the browser tests: user-facing queries (roles, labels)
and the few actions every story repeats. They wait with Playwright's `expect`, never with sleeps."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

# A turn of the offline assistant takes well under a second; the reconnect after the API
# comes back waits out a backoff of at most 30 s (see services/web/README.md).
TURN_TIMEOUT = 20_000
RECONNECT_TIMEOUT = 45_000


def tree(page: Page) -> Locator:
    return page.get_by_role("tree", name="Object tree")


def node(page: Page, value: str) -> Locator:
    return tree(page).get_by_role("treeitem", name=value, exact=True)


def badge(page: Page) -> Locator:
    return page.get_by_role("status", name="Connection status")


def expect_connected(page: Page, timeout: float = TURN_TIMEOUT) -> None:
    expect(badge(page)).to_have_text("Connected", timeout=timeout)


def send_prompt(page: Page, prompt: str) -> None:
    """Types a prompt and sends it, then waits for the turn to end (Stop gone, Send back)."""
    box = page.get_by_label("Message")
    box.fill(prompt)
    page.get_by_role("button", name="Send").click()  # waits until enabled (not busy)
    expect(box).to_have_value("", timeout=TURN_TIMEOUT)
    expect(page.get_by_role("button", name="Stop")).to_have_count(0, timeout=TURN_TIMEOUT)


def sign_up(page: Page, username: str, password: str) -> None:
    """Creates an account on the login page the tab shows (the app then logs it in)."""
    page.get_by_role("button", name="Create account").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
