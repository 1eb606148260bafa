"""The first five minutes of a new user (issue #14), in headless Chromium against the real stack:
the README's example on a brand-new account, session titles, the chat's additions, the layout, and
axe-core (injected into every page) finding no serious or critical violation on the main screens.

The tests run in order on one brand-new account (one context, one tab), like test_browser.py.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.app_page import TURN_TIMEOUT, expect_connected, node, send_prompt, tree
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.timeout(180)

AXE = ROOT / "services" / "web" / "node_modules" / "axe-core" / "axe.min.js"
USERNAME = f"new_{secrets.token_hex(4)}"
PASSWORD = f"Pw-{secrets.token_hex(8)}-new!"
README_EXAMPLE = "Add 'Design', 'Build' and 'Launch' under Project"


def new_context(browser: Browser, stack: Stack, **options: Any) -> BrowserContext:
    assert AXE.is_file(), f"{AXE} is missing: npm ci in services/web installs axe-core"
    ctx = browser.new_context(ignore_https_errors=True, base_url=stack.base_url, **options)
    ctx.set_default_timeout(15_000)
    ctx.add_init_script(path=str(AXE))  # injected through the debugger protocol: the page's CSP stays on
    return ctx


@pytest.fixture(scope="module")
def context(browser: Browser, stack: Stack) -> Iterator[BrowserContext]:
    """Instead of conftest's: axe-core in every page (conftest's `page` is this context's first tab)."""
    ctx = new_context(browser, stack, viewport={"width": 1440, "height": 900})
    try:
        yield ctx
    finally:
        ctx.close()


def serious_violations(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await window.axe.run(document, { resultTypes: ['violations'] })
            return result.violations
              .filter((v) => v.impact === 'serious' || v.impact === 'critical')
              .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.slice(0, 4).map((n) => n.target.join(' ') + ' — ' + n.failureSummary) }))
        }"""
    )
    return found


def assert_accessible(page: Page, where: str) -> None:
    # Colours mid-transition (after a colour-scheme switch, a hover) are not what anyone reads: wait them out.
    page.wait_for_function(
        "() => document.getAnimations().every("
        "(a) => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity)"
    )
    found = serious_violations(page)
    assert not found, f"axe on {where}:\n" + json.dumps(found, indent=1)


def sessions_nav(page: Page) -> Any:
    return page.get_by_role("navigation", name="Sessions")


# ------------------------------------------------------------------ tests


def test_login_and_register_with_an_error_are_accessible(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert_accessible(page, "the login page")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "the login page (dark)")
    page.emulate_media(color_scheme="light")

    page.get_by_role("button", name="Create account").click()
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    assert_accessible(page, "register with an error")


def test_the_readme_example_works_on_a_brand_new_account(page: Page) -> None:
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).not_to_have_url(re.compile(r"/login"))
    expect(tree(page)).to_be_visible()
    expect_connected(page)
    # Nothing to undo or redo on a brand-new session: the server says so, the buttons show it.
    expect(page.get_by_role("button", name="Undo")).to_be_disabled()
    expect(page.get_by_role("button", name="Redo")).to_be_disabled()
    assert_accessible(page, "the empty dashboard")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "the empty dashboard (dark)")
    page.emulate_media(color_scheme="light")

    send_prompt(page, README_EXAMPLE)
    for value in ("Project", "Design", "Build", "Launch"):
        expect(node(page, value)).to_be_visible(timeout=TURN_TIMEOUT)
    expect(page.get_by_role("button", name="Undo")).to_be_enabled()  # that turn is this user's to undo
    expect(page.get_by_role("button", name="Redo")).to_be_disabled()
    answer = page.get_by_role("log", name="Conversation").locator("li[data-role=assistant]").last
    expect(answer).not_to_contain_text("couldn't find")
    # The session took its title from that first prompt.
    expect(sessions_nav(page).get_by_role("link", name=re.compile(re.escape(README_EXAMPLE)))).to_be_visible()


def test_the_dashboard_with_data_is_accessible_light_and_dark(page: Page) -> None:
    send_prompt(page, "set priority of Design to high")
    expect(node(page, "Design")).to_be_visible()
    expect(sessions_nav(page).get_by_text("5 nodes")).to_be_visible(timeout=TURN_TIMEOUT)  # counts stay live
    assert_accessible(page, "the dashboard with data")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "the dashboard with data (dark)")
    page.emulate_media(color_scheme="light")


def test_the_session_menu_open_is_accessible(page: Page) -> None:
    sessions_nav(page).get_by_role("button", name=re.compile(r"^Actions for ")).first.click()
    expect(page.get_by_role("menuitem", name="Rename")).to_be_visible()
    assert_accessible(page, "the dashboard with the session menu open")
    page.keyboard.press("Escape")
    expect(page.get_by_role("menu")).to_have_count(0)


def test_a_skip_link_leads_past_the_header_and_sessions(page: Page) -> None:
    page.reload()
    expect_connected(page)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the chat and tree")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    page.keyboard.press("Tab")  # the next stop is inside the chat, not the header or the sessions list
    assert page.evaluate("() => document.getElementById('main').contains(document.activeElement)")


def test_skip_links_lead_straight_to_the_message_box_and_the_tree(page: Page) -> None:
    # Past the conversation too: it has two or three stops per message (copy, reasoning).
    for name, target in (("Skip to the message box", page.get_by_label("Message")), ("Skip to the tree", tree(page))):
        page.reload()
        expect_connected(page)
        page.keyboard.press("Tab")
        while not page.get_by_role("link", name=name).evaluate("(a) => a === document.activeElement"):
            page.keyboard.press("Tab")
            assert page.evaluate("() => document.activeElement.tagName") == "A", f"{name} is not among the first links"
        expect(page.get_by_role("link", name=name)).to_be_in_viewport()
        page.keyboard.press("Enter")
        expect(target).to_be_focused()


def test_chat_and_tree_share_the_space_40_60_beside_the_sidebar(page: Page) -> None:
    chat = page.get_by_role("tablist", name="Chat views").locator("xpath=..")
    tree_section = page.get_by_role("region", name=re.compile(r"Object tree"))
    chat_box, tree_box = chat.bounding_box(), tree_section.bounding_box()
    assert chat_box and tree_box
    share = chat_box["width"] / (chat_box["width"] + tree_box["width"])
    assert 0.38 <= share <= 0.42, (chat_box, tree_box)


def test_the_sidebar_state_is_remembered(page: Page) -> None:
    page.get_by_role("button", name="Hide sessions").click()
    expect(sessions_nav(page)).to_have_count(0)
    page.reload()
    expect_connected(page)
    expect(page.get_by_role("button", name="Show sessions")).to_be_visible()
    expect(sessions_nav(page)).to_have_count(0)
    page.get_by_role("button", name="Show sessions").click()
    expect(sessions_nav(page)).to_be_visible()


def test_reasoning_is_shown_after_a_reload_and_up_recalls_the_last_prompt(page: Page) -> None:
    page.reload()
    expect_connected(page)
    log = page.get_by_role("log", name="Conversation")
    expect(log.get_by_text(re.compile(r"Reasoning \(\d+ steps?\)")).first).to_be_visible()
    box = page.get_by_label("Message")
    box.focus()
    page.keyboard.press("ArrowUp")
    expect(box).to_have_value("set priority of Design to high")
    box.fill("x" * 4001)
    expect(page.get_by_text(re.compile(r"4001 / 4000 — too long by 1"))).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(box).to_have_value("x" * 4001)  # refused, never cut
    box.fill("")


def outline(page: Page) -> list[tuple[str, int]]:
    """The tree as shown: (name, level) of every row, top to bottom."""
    items = tree(page).get_by_role("treeitem")
    return [(str(i.get_attribute("aria-label")), int(i.get_attribute("aria-level") or 0)) for i in items.all()]


def drag(page: Page, source: str, target: str, where: str) -> None:
    """Drags row `source` with the real mouse onto `target`: its top quarter (before), middle (inside) or bottom
    quarter (after), where the drop indicator shows."""
    src, dst = node(page, source).bounding_box(), node(page, target).bounding_box()
    assert src and dst
    y = {"before": 0.12, "inside": 0.5, "after": 0.88}[where]
    page.mouse.move(src["x"] + 40, src["y"] + src["height"] / 2)
    page.mouse.down()
    page.mouse.move(dst["x"] + 40, dst["y"] + dst["height"] * y, steps=8)
    page.mouse.move(dst["x"] + 41, dst["y"] + dst["height"] * y, steps=2)
    page.mouse.up()


def test_drag_and_drop_lands_where_the_indicator_shows(page: Page) -> None:
    expect(node(page, "Launch")).to_be_visible()
    start = outline(page)
    assert start[:5] == [("Root", 1), ("Project", 2), ("Design", 3), ("Build", 3), ("Launch", 3)], start
    drag(page, "Launch", "Design", "before")
    expect(tree(page).get_by_role("treeitem").nth(2)).to_have_attribute("aria-label", "Launch")
    assert outline(page)[:5] == [("Root", 1), ("Project", 2), ("Launch", 3), ("Design", 3), ("Build", 3)]
    drag(page, "Launch", "Build", "after")
    expect(tree(page).get_by_role("treeitem").nth(4)).to_have_attribute("aria-label", "Launch")
    assert outline(page)[:5] == [("Root", 1), ("Project", 2), ("Design", 3), ("Build", 3), ("Launch", 3)]
    drag(page, "Launch", "Build", "inside")
    expect(node(page, "Launch")).to_have_attribute("aria-level", "4")
    assert outline(page)[:5] == [("Root", 1), ("Project", 2), ("Design", 3), ("Build", 3), ("Launch", 4)]


def test_a_node_added_by_hand_is_one_undo_step(page: Page) -> None:
    rows_before = outline(page)
    node(page, "Project").hover()
    page.get_by_role("button", name="Add child to Project").click()
    editor = tree(page).get_by_role("textbox", name="Node value")
    editor.fill("Testing")
    editor.press("Enter")
    expect(node(page, "Testing")).to_be_visible()
    tree(page).get_by_role("textbox", name="Node value").press("Escape")  # the next sibling's draft: dropped
    expect(tree(page).get_by_role("textbox", name="Node value")).to_have_count(0)
    page.get_by_role("button", name="Undo").click()
    expect(node(page, "Testing")).to_have_count(0)
    assert outline(page) == rows_before


def test_enter_on_a_row_adds_a_sibling_and_edits_it_in_one_undo_step(page: Page) -> None:
    rows_before = outline(page)
    assert rows_before[:4] == [("Root", 1), ("Project", 2), ("Design", 3), ("Build", 3)], rows_before
    node(page, "Design").click()
    page.keyboard.press("Enter")  # not a rename: a new sibling after Design, its editor open
    editor = tree(page).get_by_role("textbox", name="Node value")
    expect(editor).to_have_value("")
    editor.fill("Review")
    editor.press("Enter")
    expect(node(page, "Review")).to_be_visible()
    tree(page).get_by_role("textbox", name="Node value").press("Escape")  # the next sibling's draft: dropped
    expect(tree(page).get_by_role("textbox", name="Node value")).to_have_count(0)
    assert outline(page)[:5] == [("Root", 1), ("Project", 2), ("Design", 3), ("Review", 3), ("Build", 3)]
    page.get_by_role("button", name="Undo").click()
    expect(node(page, "Review")).to_have_count(0)
    assert outline(page) == rows_before


def test_props_are_edited_by_hand_in_the_details_panel(page: Page) -> None:
    node(page, "Design").click()
    opener = page.get_by_role("button", name="Props", exact=True)
    opener.click()
    dialog = page.get_by_role("dialog", name="Props of “Design”")
    expect(dialog.get_by_role("textbox", name="Value of priority")).to_have_value("high")
    dialog.get_by_role("button", name="Add prop").click()
    dialog.get_by_role("textbox", name="Name of prop 2").fill("owner")
    dialog.get_by_role("textbox", name="Value of owner").fill("Ann")
    assert_accessible(page, "the node details panel")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()
    expect(node(page, "Design")).to_have_attribute("aria-describedby", re.compile(r".+"))
    description = page.evaluate(
        "() => { const row = [...document.querySelectorAll('[role=treeitem]')].find((r) => r.ariaLabel === 'Design');"
        " return document.getElementById(row.getAttribute('aria-describedby')).textContent }"
    )
    assert description == "priority: high, owner: Ann"


def test_a_phone_viewport_is_accessible(browser: Browser, stack: Stack) -> None:
    phone = new_context(browser, stack, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        tab = phone.new_page()
        tab.goto("/")
        tab.get_by_label("Username").fill(USERNAME)
        tab.get_by_label("Password").fill(PASSWORD)
        tab.get_by_role("button", name="Log in").click()
        expect(tab.get_by_label("Message")).to_be_visible()
        expect(node(tab, "Project")).to_be_attached()
        assert_accessible(tab, "the dashboard on a phone")
        # Every header control fits on the screen (the header wraps) and takes a tap: Log out does.
        widths = tab.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"the page is {widths[0]} px wide on a {widths[1]} px screen"
        # The parts stack and the page scrolls: chat, then the tree with room for its rows, then the history
        # (squeezed into the screen's height, the tree's column collapsed and the history was drawn over it).
        tab.get_by_role("button", name="History").tap()
        expect(tab.get_by_role("list", name="Change sets")).to_be_visible()
        tree_box = tab.get_by_role("region", name=re.compile(r"Object tree")).bounding_box()
        history_box = tab.get_by_role("heading", name="History").bounding_box()
        composer_box = tab.get_by_label("Message").bounding_box()
        assert tree_box and history_box and composer_box
        assert composer_box["y"] + composer_box["height"] <= tree_box["y"], (composer_box, tree_box)
        assert tree_box["height"] >= 300, tree_box
        assert tree_box["y"] + tree_box["height"] <= history_box["y"], (tree_box, history_box)
        tab.get_by_role("button", name="Log out").tap()
        expect(tab.get_by_role("button", name="Log in")).to_be_visible()
    finally:
        phone.close()
