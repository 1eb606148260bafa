"""Browser end-to-end (Chromium against the real stack): the account page (issue #12). A refused new
password is shown; a change logs this tab out and every other tab of the user follows; signing out of
all devices does the same to a login on another device (another browser context)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.app_page import TURN_TIMEOUT, expect_connected
from tests.support.browser import VIEWPORT
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(180)

USERNAME = f"acct_{secrets.token_hex(4)}"
PASSWORD = f"Pw-{secrets.token_hex(8)}-old!"
NEW_PASSWORD = f"Pw-{secrets.token_hex(8)}-new!"


def new_context(browser: Browser, stack: Stack) -> BrowserContext:
    context = browser.new_context(viewport=VIEWPORT, ignore_https_errors=True, base_url=stack.base_url)
    context.set_default_timeout(15_000)
    return context


@pytest.fixture(scope="module")
def context(browser: Browser, stack: Stack) -> Iterator[BrowserContext]:
    context = new_context(browser, stack)
    try:
        yield context
    finally:
        context.close()


def log_in(page: Page, password: str, register: bool = False) -> None:
    page.goto("/")
    if register:
        page.get_by_role("button", name="Create account").click()
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account" if register else "Log in").click()
    expect_connected(page)


def change_password(page: Page, current: str, new: str) -> None:
    page.get_by_label("Current password").fill(current)
    page.get_by_label("New password").fill(new)
    page.get_by_role("button", name="Change password").click()


def test_a_password_change_logs_out_this_tab_and_the_others(context: BrowserContext) -> None:
    page, other = context.new_page(), context.new_page()
    log_in(page, PASSWORD, register=True)
    other.goto("/")
    expect_connected(other)

    page.get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Account", level=1)).to_be_visible()
    change_password(page, PASSWORD, "password123")  # among the most common: refused by the server
    expect(page.get_by_role("alert")).to_have_text("Password is one of the most common passwords; choose another")
    change_password(page, "not-" + PASSWORD, NEW_PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("The current password is wrong.")
    expect(page).to_have_url(re.compile(r"/settings/account$"))  # nothing changed: still logged in

    change_password(page, PASSWORD, NEW_PASSWORD)
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_text("Password changed. Log in with your new password.")).to_be_visible()
    # The other tab's socket was closed and its refresh refused: it is at the login page too.
    expect(other).to_have_url(re.compile(r"/login"), timeout=TURN_TIMEOUT)

    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")  # the old one no longer works
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/settings/account$"))  # back where it was
    other.close()


def test_signing_out_of_all_devices_ends_the_login_on_another_device(
    context: BrowserContext, browser: Browser, stack: Stack
) -> None:
    page = context.pages[0]
    device = new_context(browser, stack)
    try:
        elsewhere = device.new_page()
        log_in(elsewhere, NEW_PASSWORD)
        opener = page.get_by_role("button", name="Sign out of all devices")
        opener.click()
        confirm = page.get_by_role("alertdialog", name="Sign out of all devices?")
        expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()  # backing out is the default
        confirm.get_by_role("button", name="Cancel").click()
        expect(confirm).to_be_hidden()
        expect(opener).to_be_focused()
        opener.click()
        confirm.get_by_role("button", name="Sign out everywhere").click()
        expect(page).to_have_url(re.compile(r"/login"))
        expect(page.get_by_text("Signed out of all devices.")).to_be_visible()
        expect(elsewhere).to_have_url(re.compile(r"/login"), timeout=TURN_TIMEOUT)
        elsewhere.reload()  # and it stays logged out
        expect(elsewhere.get_by_role("button", name="Log in")).to_be_visible()
    finally:
        device.close()
