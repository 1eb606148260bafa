"""Server frames as bytes: what a session keeps for resume must cost what it holds."""

from __future__ import annotations

import tracemalloc

import orjson

from canopy.realtime.frames import encode, timestamp


def test_encoded_frames_hold_no_spare_buffer() -> None:
    # orjson 3.13 hands back bytes with ~4 KiB allocated; a replay buffer of 1000 frames per session
    # made that ~4 MiB a session.
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [encode("pong", {}, session_id="s" * 36, frame_id=f"f{i}", seq=i) for i in range(1000)]
        per_frame = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert per_frame < 4 * len(kept[0]), per_frame


def test_frames_carry_a_utc_millisecond_timestamp() -> None:
    frame = orjson.loads(encode("pong", {}, frame_id="x"))
    stamp = frame["timestamp"]
    assert len(stamp) == len("2026-11-26T00:41:09.123Z") and stamp.endswith("Z") and stamp[10] == "T"
    assert stamp[:19] <= timestamp()[:19]
