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
    """The SDK's own timeout minus a margin, if it sent one (``x-stainless-timeout``).

    A header that does not hold a positive number is skipped, not trusted: the Anthropic SDK
    sends ``x-stainless-timeout: NOT_GIVEN`` (timeout set on the client, not the call) next to
    a valid ``x-stainless-read-timeout``.
    """
    for name in ("x-stainless-timeout", "x-stainless-read-timeout"):
        try:
            value = float(headers.get(name) or "nan")
        except ValueError:
            continue
        if value > 0:  # also false for NaN
            break
    else:
        return None
    # Keep at least half the client's budget even with a large margin on a short timeout.
    return max(value - margin_s, value * 0.5)
