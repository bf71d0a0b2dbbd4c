"""Server-Sent Events framing (the WHATWG event-stream format), pure: lines in, events out.

A line starting with ``:`` is a comment (Hermes sends them as keep-alives and as "No update
available"); ``event:`` names the event (Hermes: none for data, ``error`` for errors);
``data:`` lines are joined with newlines; a blank line dispatches. An event larger than
``data_bytes_max`` is refused (``EventTooLarge``), never buffered without bound.
"""

from __future__ import annotations

from typing import NamedTuple

DATA_BYTES_MAX = 1 << 20  # one Hermes event for a handful of feeds is a few KiB


class SseEvent(NamedTuple):
    event: str  # "message" when unnamed
    data: str


class EventTooLarge(ValueError):
    pass


class SseParser:
    def __init__(self, data_bytes_max: int = DATA_BYTES_MAX):
        self.data_bytes_max = data_bytes_max
        self.comments = 0
        self._event = ""
        self._data: list[str] = []
        self._size = 0

    def feed_line(self, raw: bytes) -> SseEvent | None:
        """One line (with or without its line ending) -> the event it completes, if any."""
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._size += len(value) + 1
            if self._size > self.data_bytes_max:
                self._data, self._size, self._event = [], 0, ""
                raise EventTooLarge(f"an SSE event above {self.data_bytes_max} bytes")
            self._data.append(value)
        elif name == "event":
            self._event = value
        # id: and retry: are not used by Hermes; unknown fields are ignored (the standard)
        return None

    def _dispatch(self) -> SseEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SseEvent(self._event or "message", "\n".join(self._data))
        self._event, self._data, self._size = "", [], 0
        return event
