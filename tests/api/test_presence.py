"""`PresenceBoard`: who is here, and at most one `presence` frame per 100 ms per session."""

from __future__ import annotations

import asyncio

from canopy.realtime.presence import PresenceBoard


async def test_a_burst_of_changes_becomes_two_frames_carrying_the_latest_state() -> None:
    sent: list[list[dict[str, object]]] = []
    second = asyncio.Event()
    board: PresenceBoard

    def send() -> None:
        sent.append(board.users(lambda uid: "editor", lambda uid: uid))
        if len(sent) == 2:
            second.set()

    board = PresenceBoard(send)
    tab_a, tab_b = object(), object()
    board.join(tab_a, "ann")  # the first change goes out at once
    assert len(sent) == 1
    board.join(tab_b, "ann")
    for i in range(50):  # within the interval: held, merged
        board.update(tab_a, {"selected": f"n{i}", "typing": i % 2 == 0})
    assert len(sent) == 1
    await asyncio.wait_for(second.wait(), 5)
    assert sent[1] == [{"username": "ann", "role": "editor", "tabs": 2, "selected": "n49", "typing": False}]
    board.close()


async def test_users_merge_tabs_and_skip_revoked_ones() -> None:
    board = PresenceBoard(lambda: None)
    a1, a2, b = object(), object(), object()
    board.join(a1, "ann")
    board.join(a2, "ann")
    board.join(b, "bob")
    board.update(a1, {"selected": "x", "typing": True})
    board.update(a2, {"selected": "y"})
    roles = {"ann": "owner"}
    users = board.users(roles.get, lambda uid: uid)
    assert users == [{"username": "ann", "role": "owner", "tabs": 2, "selected": "y", "typing": True}]
    board.leave(a1)
    assert board.users(roles.get, lambda uid: uid)[0]["typing"] is False
    board.close()
