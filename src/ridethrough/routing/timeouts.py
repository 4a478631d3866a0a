"""How long one attempt may take, and when it is late enough to ask another target too.

The configured per-target timeouts are ceilings (and the values used while a target is cold).
Once the latency model has seen enough calls, each per-attempt timeout becomes
``clamp(multiplier × p99, floor, ceiling)``: a provider whose stream headers normally come in
300 ms is not "slow" after 15 s, it is gone, and waiting the full ceiling is what turned the
2025-03-07 freeze into "Connection Timed Out" for users.

Three more questions are answered here, all from the same model:

- ``hedge_delay``: when a backup request goes out (a learned quantile of the commit phase —
  p99 by default, config.HedgeConfig says why not "The Tail at Scale"'s p95 — or a fixed delay);
- ``fair_wait``: how long a target needs, so an attempt leaves that much of the deadline for a
  later one (Envoy's per-try timeout idea: only the last eligible target may use all that is left);
- ``fair_wait`` / ``is_slow``: whether an attempt had a fair chance and used it badly, which is
  what the slow-call breaker counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ridethrough.config import AdaptiveTimeoutConfig, HedgeConfig, Timeouts
from ridethrough.routing.latency import LatencyModel, input_bucket, output_bucket


@dataclass(frozen=True, slots=True)
class CallShape:
    """What kind of call an attempt is: it picks the phase the latency model answers for."""

    stream: bool
    max_tokens: int | None = None
    input_tokens: int | None = None   # estimated prompt size (a stream's first token waits on it)

    @property
    def commit_phase(self) -> str:
        """The phase that ends at the commit point (the moment a hedge race is won)."""
        return input_bucket(self.input_tokens) if self.stream else output_bucket(self.max_tokens)


class TimeoutPolicy:
    def __init__(self, model: LatencyModel, adaptive: AdaptiveTimeoutConfig,
                 hedge: HedgeConfig) -> None:
        self.model = model
        self.cfg = adaptive
        self.hedge = hedge

    def _adapt(self, target: str, phase: str, ceiling: float, floor: float) -> float:
        if not self.cfg.enabled:
            return ceiling
        p99 = self.model.quantile(target, phase, 0.99)
        if p99 is None:
            return ceiling
        return min(ceiling, max(floor, self.cfg.multiplier * p99))

    def for_phase(self, target: str, ceilings: Timeouts, phase: str) -> float:
        """The timeout now applied to one phase (``headers``, ``first_token:*``, ``complete:*``)."""
        if phase == "headers":
            return self._adapt(target, phase, ceilings.first_byte, self.cfg.floor_first_byte_s)
        if phase.startswith("first_token"):
            return self._adapt(target, phase, ceilings.first_token, self.cfg.floor_first_token_s)
        return self._adapt(target, phase, ceilings.total, self.cfg.floor_complete_s)

    def for_attempt(self, target: str, ceilings: Timeouts, shape: CallShape) -> Timeouts:
        """The timeouts this attempt runs under (``connect`` and ``idle`` stay configured)."""
        if not self.cfg.enabled:
            return ceilings
        if shape.stream:
            first_byte = self.for_phase(target, ceilings, "headers")
            first_token = self.for_phase(target, ceilings, shape.commit_phase)
            if first_byte == ceilings.first_byte and first_token == ceilings.first_token:
                return ceilings
            return Timeouts.model_construct(connect=ceilings.connect, first_byte=first_byte,
                                            first_token=first_token, idle=ceilings.idle,
                                            total=ceilings.total)
        total = self.for_phase(target, ceilings, shape.commit_phase)
        if total == ceilings.total:
            return ceilings
        return Timeouts.model_construct(connect=ceilings.connect, first_byte=ceilings.first_byte,
                                        first_token=ceilings.first_token, idle=ceilings.idle,
                                        total=total)

    def fair_wait(self, target: str, ceilings: Timeouts, shape: CallShape) -> float:
        """How long this target may reasonably take to reach the commit point."""
        t = self.for_attempt(target, ceilings, shape)
        return t.first_token if shape.stream else t.total

    def is_slow(self, target: str, shape: CallShape, elapsed: float, factor: float) -> bool:
        """A success that took far longer than this target's normal (``factor`` × p99)."""
        p99 = self.model.quantile(target, shape.commit_phase, 0.99)
        return p99 is not None and elapsed > factor * p99

    def hedge_delay(self, target: str, shape: CallShape) -> float | None:
        """When to start a backup for an attempt at ``target`` that has not committed, or None
        (hedging off, or nothing learned yet and no fixed delay configured)."""
        if not self.hedge.enabled:
            return None
        if self.hedge.delay_s is not None:
            return self.hedge.delay_s
        q = self.model.quantile(target, shape.commit_phase, self.hedge.quantile)
        if q is None:
            return None
        return max(q, self.hedge.min_delay_s)
