"""What a cache hit hands the gateway: the stored answer, its format, its age, how it matched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ridethrough.protocols.translate import (
    anthropic_to_openai_response,
    openai_to_anthropic_response,
)

__all__ = ["CacheEntry"]


@dataclass
class CacheEntry:
    obj: dict[str, Any]          # the stored final response (a Message or a chat.completion)
    fmt: str                     # "anthropic" | "openai": the format ``obj`` is in
    stored_at: float             # wall-clock seconds
    kind: str                    # "exact" | "semantic"
    similarity: float | None = None
    stale: bool = False          # older than ttl_s: served only because allow_stale was set
    question: str | None = None  # semantic: the (redacted) question it answered, if showable

    def age(self, now: float) -> float:
        return max(0.0, now - self.stored_at)

    def in_format(self, fmt: str) -> dict[str, Any]:
        """The answer in the client's format. An entry stored from one protocol serves the
        other, since keys are cross-format; ids are the caller's to refresh."""
        if fmt == self.fmt:
            return self.obj
        if fmt == "openai":
            return anthropic_to_openai_response(self.obj)
        return openai_to_anthropic_response(self.obj)
