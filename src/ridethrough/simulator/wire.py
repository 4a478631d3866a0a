"""The seam between the server and a provider's wire format.

The server decides *whether* and *how* an answer goes wrong (faults); a ``Wire`` decides
what the bytes look like. Streams are returned as a list of ``Frame`` tagged with what
the frame means (start, block open, content token, close, end), so a fault such as "stall
after 3 tokens" or "in-band error before the first token" is applied by the server the
same way for both providers, without either wire knowing about faults.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from ridethrough.errors import RidethroughError

from .answers import Answer, Conversation

__all__ = ["Frame", "FrameKind", "Wire", "WireError"]


class FrameKind(enum.Enum):
    START = "start"  # message_start / the role chunk: the stream is open, no content yet
    OPEN = "open"    # content_block_start, ping, tool-call header chunk
    TOKEN = "token"  # one content token (text or a tool-argument fragment)
    CLOSE = "close"  # block stop, message_delta, finish / usage chunks
    END = "end"      # message_stop / [DONE]: the terminator a truncated stream lacks


@dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameKind
    data: bytes


class WireError(RidethroughError):
    """A request the real API would reject, with the status and provider error type."""

    def __init__(self, status: int, message: str, *, error_type: str | None = None,
                 code: str | None = None, param: str | None = None,
                 outcome: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.error_code = code  # the provider's error code; ``code`` is RidethroughError's own
        self.param = param
        self.outcome = outcome


class Wire(Protocol):
    """One provider's chat API: parse, answer, stream, and fail in its own format."""

    format: str                # "anthropic" | "openai"
    preamble_with_tools: bool  # does a tool call come with a sentence of text first
    stream_content_type: str

    def parse(self, body: bytes) -> Conversation: ...

    def response_body(self, conv: Conversation, answer: Answer) -> dict[str, Any]: ...

    def stream_frames(self, conv: Conversation, answer: Answer) -> list[Frame]: ...

    def error_body(self, status: int, *, request_id: str, error_type: str | None = None,
                   code: str | None = None, message: str | None = None,
                   param: str | None = None) -> dict[str, Any]: ...

    def inband_error_frame(self, *, error_type: str | None, message: str | None) -> bytes: ...

    def malformed_frame(self) -> bytes: ...

    def malformed_body(self) -> bytes: ...

    def new_request_id(self) -> str: ...

    def response_headers(self, request_id: str, served: int, *,
                         limited: bool = False) -> dict[str, str]: ...
