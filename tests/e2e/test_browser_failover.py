"""A browser tab rides out the crash of its API replica (three replicas on PostgreSQL behind
nginx): kill -9 of the replica serving its session, and the tab reconnects by itself to the
next replica, which takes the session over; nothing acknowledged is lost."""

from __future__ import annotations

import re
import secrets
import signal

import pytest
from playwright.sync_api import Page, expect

from tests.pg import LocalPostgres
from tests.stack.test_replicas import serving_replica, stack  # noqa: F401 - three replicas on PostgreSQL
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
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(240)


def test_a_tab_survives_the_crash_of_its_replica(page: Page, stack: Stack, postgres: LocalPostgres) -> None:
    page.goto("/")
    sign_up(page, f"fo_{secrets.token_hex(4)}", f"Pw-{secrets.token_hex(8)}!")
    expect(tree(page)).to_be_visible()
    send_prompt(page, "add 'Before crash' to root")
    expect(node(page, "Before crash")).to_be_visible(timeout=TURN_TIMEOUT)
    expect(page).to_have_url(re.compile(r"/sessions/[^/]+$"))
    sid = page.url.rsplit("/", 1)[1]

    victim = serving_replica(stack, postgres, sid)
    stack.apis[victim].stop(signal.SIGKILL)
    try:
        expect(badge(page)).to_have_text("Reconnecting\u2026", timeout=RECONNECT_TIMEOUT)
        expect_connected(page, timeout=RECONNECT_TIMEOUT)  # on another replica, by itself
        expect(node(page, "Before crash")).to_be_visible()
        assert serving_replica(stack, postgres, sid) != victim
        send_prompt(page, "add 'After crash' to root")
        expect(node(page, "After crash")).to_be_visible(timeout=TURN_TIMEOUT)
        expect(node(page, "Before crash")).to_be_visible()
    finally:
        stack.start_replica(victim)
        stack.wait_ready()
