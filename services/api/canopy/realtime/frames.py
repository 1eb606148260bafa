"""Building server frames: plain dicts serialised once with orjson."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(
    frame_type: str, data: dict[str, Any], *, session_id: str | None = None, frame_id: str | None = None,
    seq: int | None = None, error: tuple[int, str] | None = None,
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
    return orjson.dumps(frame)
