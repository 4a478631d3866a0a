"""A retry budget: extra attempts on the same target stay under a fraction of requests.

Without it an outage becomes a retry storm: every request retries, multiplying load on a
provider that is already failing. Failover to a *different* target is not budgeted — the
breakers stop traffic to the dead target — but every same-target retry and every wait for
Retry-After spends from here. Token bucket: each request deposits ``ratio`` tokens, the
bucket also refills at ``min_per_s`` so a quiet gateway can still retry.
"""

from __future__ import annotations

from ridethrough.routing.clock import Clock


class RetryBudget:
    def __init__(self, ratio: float, min_per_s: float, clock: Clock, cap: float = 100.0,
                 initial: float | None = None) -> None:
        self.ratio = ratio
        self.min_per_s = min_per_s
        self.clock = clock
        self.cap = cap
        self.tokens = min(cap, min_per_s if initial is None else initial)
        self._last = clock()
        self.spent = 0
        self.refused = 0

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.cap, self.tokens + (now - self._last) * self.min_per_s)
        self._last = now

    def on_request(self) -> None:
        self._refill()
        self.tokens = min(self.cap, self.tokens + self.ratio)

    def try_spend(self) -> bool:
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.spent += 1
            return True
        self.refused += 1
        return False
