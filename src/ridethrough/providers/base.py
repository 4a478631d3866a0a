"""The provider interface: what the executor needs from any upstream.

A provider is a small object behind a Protocol — complete, stream, forward, declared
capabilities, close — that owns one pooled HTTP client (or an in-process model) for its
whole life. Errors leave it already classified as ``UpstreamError`` with an ``ErrorClass``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ridethrough.config import Capabilities, Format, Timeouts
from ridethrough.errors import UpstreamError
from ridethrough.protocols.sse import SSEEvent


@dataclass(frozen=True, slots=True)
class ResolvedCapabilities:
    tools: bool = True
    images: bool = True
    streaming: bool = True
    json_mode: bool = True
    context_window: int = 200_000
    system_messages: bool = False  # mid-conversation {"role": "system"} (config.Capabilities)
    prefill: bool = False          # continues a trailing assistant message (config.Capabilities)

    def merged(self, *overrides: Capabilities) -> ResolvedCapabilities:
        """These capabilities with each override's declared (non-null) values on top."""
        values: dict[str, Any] = {}
        for o in overrides:
            values.update(o.model_dump(exclude_none=True))
        return dataclasses.replace(self, **values)


class CallDeadline(Protocol):
    """The request's deadline as an adapter sees it (routing.deadline.Deadline is one):
    adapters only ask how much time is left, never how it is kept."""

    def remaining(self) -> float: ...

    def cap(self, seconds: float) -> float:
        """``seconds``, or what is left of the deadline if that is less."""
        ...


@dataclass(slots=True)
class UpstreamCall:
    """One request to one target, already in the target's wire format."""

    model: str
    body: bytes
    stream: bool
    deadline: CallDeadline
    timeouts: Timeouts
    headers: dict[str, str] = field(default_factory=dict)  # forwarded (anthropic-beta, …)


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    body: bytes
    headers: dict[str, str]        # already filtered for the client
    request_id: str | None = None


class UpstreamStream(Protocol):
    request_id: str | None
    headers: dict[str, str]

    async def read(self, timeout: float) -> list[SSEEvent] | None:
        """The next parsed frames; None at the end of the stream. Raises UpstreamError
        (IDLE_TIMEOUT, CONNECT, TRUNCATED…) on failure."""
        ...

    async def aclose(self) -> None: ...


class Provider(Protocol):
    name: str
    kind: str
    format: Format
    unavailable_reason: str | None  # e.g. "ANTHROPIC_API_KEY is not set"
    counts_tokens: bool             # has the model's own tokenizer: ``fits`` gives an answer

    def capabilities(self, model: str) -> ResolvedCapabilities: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def complete(self, call: UpstreamCall) -> UpstreamResponse: ...

    async def open_stream(self, call: UpstreamCall) -> UpstreamStream: ...

    async def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes, timeout: float
    ) -> UpstreamResponse:
        """Send any other /v1/* request as-is (no failover), with our key injected."""
        ...

    def classify(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        """An error answer (any status, or a 200 whose body is an error) in this provider's
        dialect, as an ``UpstreamError`` with its class."""
        ...

    def classify_stream_error(self, data: dict[str, Any]) -> UpstreamError:
        """An in-band error inside a 200 stream (Anthropic's ``error`` event, an OpenAI
        ``{"error": …}`` chunk)."""
        ...

    def fits(self, messages: str | Sequence[Any], max_output: int) -> bool | None:
        """Whether the prompt plus ``max_output`` tokens fits the context window, counted by
        the model's own tokenizer; None where the provider has none (the planner's estimate
        decides)."""
        ...
