"""An incremental Server-Sent Events parser (the WHATWG event-stream format).

Bytes go in as they come off the network, in pieces of any size: a piece may hold
half a line (even half a UTF-8 character) or several whole events. Lines end with
LF, CRLF or a lone CR (a CR at the end of one piece whose LF starts the next is
one line ending, not two). Lines starting with ``:`` are comments (keep-alives);
``data`` lines accumulate, joined with ``\\n``; a blank line dispatches the event.

The parser is pure (no I/O), so any split of the same byte stream into pieces
yields the same events; ``close()`` flushes an event left unterminated at the end
of the stream (servers often omit the blank line after ``data: [DONE]``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

MAX_LINE_BYTES = 8 * 1024 * 1024
MAX_EVENT_CHARS = 16 * 1024 * 1024


class SSEError(ValueError):
    """The byte stream is not a usable event stream (too long a line or event, bad UTF-8)."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Feed bytes with ``feed``; each call returns the events completed by those bytes."""

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES, max_event_chars: int = MAX_EVENT_CHARS) -> None:
        self._max_line = max_line_bytes
        self._max_event = max_event_chars
        self._buf = bytearray()
        self._skip_lf = False  # the last piece ended with CR: a leading LF belongs to that line ending
        self._data: list[str] = []
        self._data_chars = 0
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self.comments = 0  # comment lines seen (keep-alives), for diagnostics

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        scan = len(self._buf)  # what is already buffered holds no line ending
        self._buf += chunk
        events: list[SSEEvent] = []
        buf = self._buf
        start = 0
        n = len(buf)
        while start < n:
            cr = buf.find(b"\r", max(start, scan))
            lf = buf.find(b"\n", max(start, scan))
            if cr == -1 and lf == -1:
                break
            if cr == -1 or (lf != -1 and lf < cr):
                end, nxt = lf, lf + 1
            elif cr + 1 < n:
                end, nxt = cr, cr + 2 if buf[cr + 1] == 0x0A else cr + 1
            else:  # CR is the last byte we have: the line ends here; an LF may follow in the next piece
                end, nxt = cr, cr + 1
                self._skip_lf = True
            self._line(bytes(buf[start:end]), events)
            start = nxt
        del buf[:start]
        if len(buf) > self._max_line:
            raise SSEError(f"event-stream line longer than {self._max_line} bytes")
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: process an unterminated last line, dispatch a pending event."""
        events: list[SSEEvent] = []
        if self._buf:
            line = bytes(self._buf)
            self._buf.clear()
            self._line(line, events)
        self._skip_lf = False
        self._dispatch(events)
        return events

    def _line(self, raw: bytes, events: list[SSEEvent]) -> None:
        if not raw:
            self._dispatch(events)
            return
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SSEError("event-stream line is not valid UTF-8") from exc
        if line.startswith("\ufeff"):
            line = line[1:]
        if line.startswith(":"):
            self.comments += 1
            return
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data_chars += len(value) + 1
            if self._data_chars > self._max_event:
                raise SSEError(f"event-stream event longer than {self._max_event} characters")
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._id = value
        elif field == "retry" and value.isdigit():
            self._retry = int(value)
        # any other field is ignored, as the format requires

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data:
            events.append(SSEEvent("\n".join(self._data), self._event or "message", self._id, self._retry))
        self._data = []
        self._data_chars = 0
        self._event = ""
        self._retry = None


async def aiter_sse(chunks: AsyncIterable[bytes], parser: SSEParser | None = None) -> AsyncIterator[SSEEvent]:
    """Events from an async stream of byte pieces, as soon as each is complete."""
    parser = parser or SSEParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.close():
        yield event
