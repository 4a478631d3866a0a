"""Whether to ask the same target again after a failed try, and after how long.

Shaped like stamina's retry predicates: one function looks at the error and the request's
situation and returns its own wait — the seconds to sleep before the next try on the same
target — or None, meaning move on (fail over, or give up if nothing is left). What an error
class allows is in ``errors.ACTIONS``; this adds what the moment allows: the configured
number of tries, the deadline, and the retry budget (every retry spends a token, so a
dying provider is not hit with multiplied load).

The two cases:

- ``backoff``: a class that may be retried (5xx, overload, a reset) gets one jittered
  backoff (``retry.backoff_s`` × 0.5–1.5) if the deadline can afford it plus a second to work.
- ``retry_after``: a 429 on the last target with a Retry-After the deadline can afford is
  waited out once — with other targets left, failing over is faster than waiting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ridethrough.config import RetryConfig
from ridethrough.errors import ACTIONS, ErrorClass, UpstreamError
from ridethrough.routing.budget import RetryBudget


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float
    retry_after: bool = False  # the upstream's own Retry-After, honoured once per target


class RetryPolicy:
    def __init__(self, cfg: RetryConfig, budget: RetryBudget, rng: random.Random) -> None:
        self.cfg = cfg
        self.budget = budget
        self.rng = rng

    def wait(self, err: UpstreamError, *, tries: int, remaining: float, others_left: bool,
             waited_retry_after: bool) -> Wait | None:
        """The wait before trying the same target again, or None to move on. ``tries``: the
        tries made on this target so far; ``remaining``: seconds left of the deadline."""
        if ACTIONS[err.error_class].retry_same and tries <= self.cfg.same_target_retries:
            backoff = self.cfg.backoff_s * (0.5 + self.rng.random())
            if remaining > backoff + 1.0 and self.budget.try_spend():
                return Wait(backoff)
        if (err.error_class is ErrorClass.RATE_LIMITED and not others_left
                and not waited_retry_after and err.retry_after is not None
                and err.retry_after <= self.cfg.max_retry_after_wait_s
                and err.retry_after + 1.0 < remaining and self.budget.try_spend()):
            return Wait(err.retry_after, retry_after=True)
        return None
