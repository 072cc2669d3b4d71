"""Server-Sent Events, sans-IO: an incremental parser and an encoder.

The parser follows the WHATWG ``text/event-stream`` rules. Feed it byte chunks split
anywhere (even inside a ``\\r\\n`` pair or a multi-byte character) and it returns the events
completed so far; call :meth:`SSEParser.close` when the stream ends to flush a final event
that had no trailing blank line.

Two deliberate choices for model streams:

* ``SSEEvent.id`` and ``SSEEvent.retry`` are the fields given in *that* event's block
  (``None`` when absent). The persistent "last event id" the spec keeps for reconnection
  is :attr:`SSEParser.last_event_id`.
* A block without any ``data`` line dispatches nothing (as the spec says), but a final
  event is flushed by :meth:`SSEParser.close` instead of being dropped, because model
  servers do end streams without the last blank line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NEWLINE = re.compile(r"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. ``data`` joins multi-line data with ``\\n``."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None

    def encode(self) -> bytes:
        """The event as wire bytes (``\\n`` line endings), ending with a blank line.

        Raises ``ValueError`` when a field cannot be represented: ``event`` and ``id`` may
        not contain line breaks, ``id`` may not contain NUL, ``retry`` must be >= 0.
        """
        lines: list[str] = []
        if self.event != "message":
            _check_single_line("event", self.event)
            lines.append(f"event: {self.event}")
        if self.id is not None:
            _check_single_line("id", self.id)
            if "\0" in self.id:
                raise ValueError("an SSE id cannot contain NUL")
            lines.append(f"id: {self.id}")
        if self.retry is not None:
            if self.retry < 0:
                raise ValueError("an SSE retry must be a non-negative integer")
            lines.append(f"retry: {self.retry}")
        lines.extend(f"data: {line}" for line in _NEWLINE.split(self.data))
        lines.append("\n")
        return "\n".join(lines).encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    """A comment line (``: text``), used as a keep-alive; parsers ignore it."""
    return b"".join(f": {line}\n".encode() for line in _NEWLINE.split(text)) + b"\n"


def _check_single_line(field: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise ValueError(f"an SSE {field} cannot contain a line break")


class SSEParser:
    """Incremental ``text/event-stream`` parser. Not thread-safe; one per stream."""

    __slots__ = (
        "_buffer",
        "_data",
        "_event",
        "_id",
        "_retry",
        "_skip_lf",
        "_started",
        "last_event_id",
    )

    def __init__(self) -> None:
        self._buffer = b""  # bytes of an incomplete line
        self._skip_lf = False  # the previous chunk ended with "\r"; a leading "\n" pairs with it
        self._started = False  # the byte-order mark check has run
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self.last_event_id = ""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk``; return the events it completed, in order."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buffer = self._buffer + chunk if self._buffer else chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        lines = buffer.splitlines(keepends=True)
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            self._buffer = lines.pop()
        else:
            self._buffer = b""
            self._skip_lf = buffer.endswith(b"\r")
        events: list[SSEEvent] = []
        data = self._data
        for raw in lines:
            if raw.startswith(b"data: "):  # most lines of a model stream: no call, no split
                data.append(raw[6:].rstrip(b"\r\n").decode("utf-8", "replace"))
                continue
            line = raw.rstrip(b"\r\n")
            event = self._dispatch() if not line else self._line(line.decode("utf-8", "replace"))
            data = self._data  # a dispatch starts a new list
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """The stream ended: flush an unterminated last line and a pending event."""
        events: list[SSEEvent] = []
        if self._buffer:
            buffer, self._buffer = self._buffer, b""
            if not self._started and buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
            event = self._line(buffer.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        self._started = False
        self._skip_lf = False
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event, id_, retry = self._data, self._event, self._id, self._retry
        self._data, self._event, self._id, self._retry = [], "", None, None
        if not data:
            return None
        return SSEEvent("\n".join(data), event or "message", id_, retry)
