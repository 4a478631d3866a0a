"""One end-to-end deadline per request, spent by retries, backoff and fallbacks alike.

The SDKs tell us their own timeout (``x-stainless-timeout``); answering after it fires is
useless, so the deadline is that minus a margin, else the route's default.
"""

from __future__ import annotations

from dataclasses import dataclass

from ridethrough.routing.clock import Clock


@dataclass(slots=True)
class Deadline:
    clock: Clock
    expires_at: float

    @classmethod
    def start(cls, clock: Clock, seconds: float) -> Deadline:
        return cls(clock, clock() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - self.clock())

    @property
    def expired(self) -> bool:
        return self.clock() >= self.expires_at

    def cap(self, seconds: float) -> float:
        """A per-step timeout, never past the deadline."""
        return min(seconds, self.remaining())


def client_timeout_from_headers(headers: dict[str, str], margin_s: float) -> float | None:
    """The SDK's own timeout minus a margin, if it sent one (``x-stainless-timeout``)."""
    raw = headers.get("x-stainless-timeout") or headers.get("x-stainless-read-timeout")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    if value <= 0:
        return None
    # Keep at least half the client's budget even with a large margin on a short timeout.
    return max(value - margin_s, value * 0.5)
