"""Server-sent events: an incremental parser and encoders.

Both providers stream SSE. The gateway parses every frame it forwards because the commit
point, in-band error detection and usage accounting all need the event, while passthrough
still forwards each frame's original bytes (``SSEEvent.raw``) untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["DONE", "SSEEvent", "SSEParser", "encode_comment", "encode_data", "encode_event"]

DONE = "[DONE]"


@dataclass(slots=True)
class SSEEvent:
    """One SSE frame. ``data`` is the joined data lines; ``raw`` the frame as received."""

    event: str | None
    data: str
    raw: bytes = b""
    _json: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    def json(self) -> Any:
        """The data parsed as JSON (cached). Raises ``orjson.JSONDecodeError`` if malformed."""
        if not self._parsed:
            self._json = orjson.loads(self.data)
            self._parsed = True
        return self._json

    @property
    def is_done(self) -> bool:
        return self.data == DONE


class SSEParser:
    """Feed bytes as they arrive; get back complete frames.

    Frames are separated by a blank line (``\\n\\n``, ``\\r\\n\\r\\n``). Comment-only frames
    (``: keep-alive``) are returned with ``event="comment"`` so a proxy can forward them.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            frame = buf[start : end + 2]
            start = end + 2
            ev = _parse_frame(frame)
            if ev is not None:
                events.append(ev)
        self._buf = buf[start:]
        return events

    def flush(self) -> list[SSEEvent]:
        """Whatever is left when the stream ends (a frame without its blank line)."""
        rest, self._buf = self._buf, b""
        if rest.strip():
            ev = _parse_frame(rest if rest.endswith(b"\n") else rest + b"\n")
            return [ev] if ev is not None else []
        return []

    @property
    def pending(self) -> bool:
        return bool(self._buf.strip())


def _parse_frame(frame: bytes) -> SSEEvent | None:
    event: str | None = None
    data_lines: list[str] = []
    comment = False
    for line in frame.decode("utf-8", errors="replace").split("\n"):
        if not line:
            continue
        if line.startswith(":"):
            comment = True
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data_lines.append(value)
    if not data_lines and event is None:
        return SSEEvent("comment", "", frame) if comment else None
    return SSEEvent(event, "\n".join(data_lines), frame)


def encode_event(event: str, data: Any) -> bytes:
    """An Anthropic-style frame: ``event: name`` then one ``data:`` line of JSON."""
    payload = data if isinstance(data, (bytes, str)) else orjson.dumps(data)
    if isinstance(payload, str):
        payload = payload.encode()
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def encode_data(data: Any) -> bytes:
    """An OpenAI-style frame: a ``data:`` line only (``encode_data(DONE)`` ends a stream)."""
    payload = data if isinstance(data, (bytes, str)) else orjson.dumps(data)
    if isinstance(payload, str):
        payload = payload.encode()
    return b"data: " + payload + b"\n\n"


def encode_comment(text: str) -> bytes:
    return b": " + text.replace("\n", " ").encode() + b"\n\n"


def in_band_error_frame(client_fmt: str, error_type: str, message: str) -> bytes:
    """How a failure after commit reaches the client: a proper in-band error event."""
    if client_fmt == "anthropic":
        return encode_event("error", {"type": "error", "error": {"type": error_type, "message": message}})
    return encode_data({"error": {"message": message, "type": error_type, "param": None,
                                  "code": error_type}})
