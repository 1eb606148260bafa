"""Building server frames: plain dicts serialised once with orjson."""

from __future__ import annotations

import time
from typing import Any

import orjson

_second: list[Any] = [-1, ""]  # the last whole second formatted: most frames share it
_milli: list[Any] = [-1, ""]  # the last millisecond's timestamp: a turn's frames often share it


# Every frame `encode` builds starts with its type: a queued snapshot is recognised by this prefix.
SNAPSHOT_PREFIX = b'{"type":"tree_snapshot"'


def timestamp() -> str:
    """UTC, ISO 8601 with milliseconds: 2026-11-26T00:41:09.123Z."""
    milli = int(time.time() * 1000)
    if milli == _milli[0]:
        text: str = _milli[1]
        return text
    whole = milli // 1000
    if whole != _second[0]:
        _second[0], _second[1] = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    text = f"{_second[1]}.{milli % 1000:03d}Z"
    _milli[0], _milli[1] = milli, text
    return text


def encode(
    frame_type: str,
    data: dict[str, Any],
    *,
    session_id: str | None = None,
    frame_id: str | None = None,
    seq: int | None = None,
    error: tuple[int, str] | None = None,
) -> bytes:
    frame: dict[str, Any] = {"type": frame_type, "data": data, "timestamp": timestamp()}
    if session_id is not None:
        frame["session_id"] = session_id
    if frame_id is not None:
        frame["id"] = frame_id
    if seq is not None:
        frame["seq"] = seq
    if error is not None:
        frame["error"] = {"code": error[0], "message": error[1]}
    # orjson 3.13 returns bytes with ~4 KiB allocated whatever their length; a session keeps up to
    # REPLAY_BUFFER_FRAMES of them for resume, so each is copied to its own size (measured: 4 KiB -> 80 B).
    return bytes(memoryview(orjson.dumps(frame)))
