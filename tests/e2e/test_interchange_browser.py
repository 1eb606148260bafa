"""Browser end-to-end (Chromium against the real stack): import a Markdown file through the Import dialog,
see it in the tree, export it back as Markdown and OPML; create and revoke a personal access token."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.app_page import expect_connected, sign_up
from tests.support.browser import VIEWPORT
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(180)

OUTLINE = '# Plan\n\n- Design\n  owner:: "ann"\n  - Wireframes\n- Build\n- Launch\n'


@pytest.fixture(scope="module")
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(
        viewport=VIEWPORT, ignore_https_errors=True, base_url=stack.base_url, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.goto("/")
    sign_up(tab, f"io_{secrets.token_hex(4)}", f"Pw-{secrets.token_hex(8)}")
    expect_connected(tab)
    try:
        yield tab
    finally:
        context.close()


def item(page: Page, value: str) -> Locator:
    return page.get_by_role("tree", name="Object tree").get_by_role("treeitem", name=value, exact=True)


def test_import_a_file_then_export_it_back(page: Page, tmp_path: Path) -> None:
    upload = tmp_path / "plan.md"
    upload.write_text(OUTLINE)
    page.get_by_role("button", name="Import").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("File").set_input_files(str(upload))
    expect(dialog.get_by_role("status")).to_have_text("4 nodes to import.")
    dialog.get_by_role("button", name="Import").click()
    expect(dialog).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/sessions/"))
    for value in ("Design", "Build", "Launch"):
        expect(item(page, value)).to_be_visible()

    with page.expect_download() as markdown:
        page.get_by_role("button", name="Export", exact=True).click()
        page.get_by_role("menuitem", name=re.compile("Markdown")).click()
    assert markdown.value.suggested_filename == "plan.md"
    assert Path(markdown.value.path()).read_text() == OUTLINE

    with page.expect_download() as opml:
        page.get_by_role("button", name="Export", exact=True).click()
        page.get_by_role("menuitem", name=re.compile("OPML")).click()
    text = Path(opml.value.path()).read_text()
    assert '<outline text="Design" owner="ann">' in text and '<outline text="Wireframes" />' in text


def test_create_and_revoke_a_token(page: Page) -> None:
    page.get_by_role("link", name="Access tokens").click()
    # the settings route is loaded on demand: until it renders, the dashboard's rows ("Rename …") are on screen
    expect(page.get_by_role("heading", name="Personal access tokens")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Claude Desktop")
    page.get_by_role("button", name="Create token").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Token")).to_have_value(re.compile(r"^cnp_"))
    dialog.get_by_role("button", name="Done").click()
    expect(page.get_by_label("Name", exact=True)).to_be_focused()  # back to the form, not lost
    row = page.get_by_role("row", name=re.compile("Claude Desktop"))
    expect(row).to_contain_text("Read and write")
    row.get_by_role("button", name="Revoke Claude Desktop").click()
    ask = page.get_by_role("alertdialog", name="Revoke “Claude Desktop”?")
    expect(ask.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice is the default
    ask.get_by_role("button", name="Revoke", exact=True).click()
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
    expect(page.get_by_role("heading", name="Your tokens")).to_be_focused()


def test_the_settings_pages_have_a_main_landmark_and_link_each_other(page: Page) -> None:
    expect(page.get_by_role("main")).to_contain_text("Your tokens")
    page.get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Account", level=1)).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("Sign out of all devices")
    page.get_by_role("link", name="Access tokens").click()
    expect(page.get_by_role("heading", name="Personal access tokens", level=1)).to_be_visible()
