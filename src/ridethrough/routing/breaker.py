"""Circuit breakers, one per target, so a dead target is skipped in microseconds.

Closed → open on N consecutive failures, an error rate over a sliding window, or a rate of
*slow* calls over the last few outcomes (timeouts, lost hedges, answers far past the learned
p99: resilience4j's slowCallRateThreshold), so a freezing target is skipped after a handful of
requests instead of after five full timeouts. Open → half-open after a cool-down; half-open
lets exactly one probe request through (a real request, which fails over invisibly); its
success closes the breaker. The cool-down doubles only when the probe failed *slowly*: a
probe refused in a millisecond costs nothing, so the target is asked again after the base
cool-down and a recovered provider gets its traffic back within ``cooldown_s``. Operators
can force a target down (drain) or up, and some error classes hold a target down for
longer (bad key, no quota).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ridethrough.config import BreakerConfig
from ridethrough.routing.clock import Clock


class State(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class Breaker:
    target: str
    cfg: BreakerConfig
    clock: Clock
    state: State = State.CLOSED
    consecutive_failures: int = 0
    opened_at: float = 0.0
    retry_at: float = 0.0
    cooldown: float = 0.0
    probe_in_flight: bool = False
    forced: str | None = None          # "down" (drained) or "up" by an operator
    held_until: float = 0.0            # held down after quota/auth/model errors
    hold_reason: str = ""
    last_error: str = ""
    opened_count: int = 0
    opened_reason: str = ""
    _window: deque[tuple[float, bool]] = field(default_factory=deque)
    _slow: deque[bool] = field(default_factory=deque)   # the last slow_call_window outcomes

    # -- decisions -------------------------------------------------------------------------

    def availability(self) -> str | None:
        """None if a request may go to this target now, else the reason it is skipped."""
        if self.forced == "up":
            return None
        if self.forced == "down":
            return "drained"
        now = self.clock()
        if self.held_until > now:
            return self.hold_reason or "held_down"
        if self.state is State.CLOSED:
            return None
        if self.state is State.OPEN:
            if now >= self.retry_at:
                return None  # due for a probe; acquire() flips to half-open
            return "breaker_open"
        return "breaker_half_open" if self.probe_in_flight else None

    def acquire(self) -> Claim | None:
        """Claim the right to send one request (a truthy Claim), or None. In half-open only
        one probe at a time."""
        if self.availability() is not None:
            return None
        if self.forced == "up":
            return Claim(True)  # the operator vouches for it: its outcomes are evidence
        if self.state is State.OPEN:
            self.state = State.HALF_OPEN
        if self.state is State.HALF_OPEN:
            self.probe_in_flight = True
            return Claim(True)
        return Claim(False)

    def recovers_at(self) -> float:
        """When this target may next be tried (for picking the soonest when all are open)."""
        return max(self.retry_at if self.state is not State.CLOSED else 0.0, self.held_until)

    # -- outcomes --------------------------------------------------------------------------

    # ``claim`` is what acquire() returned. Only the probe's own outcome may move a breaker
    # out of open/half-open: requests sent while it was still closed finish late (a slow
    # timeout, a long stream) and must not close it, re-open it or free the probe slot.
    # ``None`` (a forced attempt, an operator probe) counts as the probe.

    def record_success(self, claim: Claim | None = None, *, slow: bool = False) -> None:
        self._push(False)
        self._push_slow(slow)
        self.consecutive_failures = 0
        if _decides(claim) and self.state is not State.CLOSED:
            self.state = State.CLOSED  # the probe answered, even if slowly
            self.cooldown = 0.0
            self._slow.clear()         # the outage's slow calls must not re-open it at once
        elif self.state is State.CLOSED and slow and self._too_slow():
            self._open(self.clock(), self.cfg.cooldown_s, "slow_calls")
        if _decides(claim):
            self.probe_in_flight = False

    def record_failure(self, error: str = "", claim: Claim | None = None, *,
                       slow: bool = False) -> None:
        """``slow``: the attempt timed out (or otherwise spent long), rather than being
        refused or erroring at once."""
        now = self.clock()
        self._push(True)
        self._push_slow(slow)
        self.consecutive_failures += 1
        self.last_error = error
        if self.state is State.HALF_OPEN:
            if _decides(claim):
                self._reopen(now, slow, error)
        elif self.state is State.CLOSED and self._should_open():
            self._open(now, self.cfg.cooldown_s, error)
        elif self.state is State.CLOSED and slow and self._too_slow():
            self._open(now, self.cfg.cooldown_s, "slow_calls")
        if _decides(claim):
            self.probe_in_flight = False

    def record_hedge_lost(self, claim: Claim | None = None) -> None:
        """A backup request to another target answered first: this attempt was past the
        target's usual latency. A slow call, not a failure (nothing failed, it was late)."""
        self._push_slow(True)
        if self.state is State.HALF_OPEN:
            if _decides(claim):
                self._reopen(self.clock(), True, "hedge_lost")
        elif self.state is State.CLOSED and self._too_slow():
            self._open(self.clock(), self.cfg.cooldown_s, "slow_calls")
        if _decides(claim):
            self.probe_in_flight = False

    def release(self, claim: Claim | None = None) -> None:
        """The attempt ended without a verdict on the target (cancelled, local error)."""
        if _decides(claim):
            self.probe_in_flight = False

    def hold_down(self, seconds: float, reason: str) -> None:
        self.held_until = max(self.held_until, self.clock() + seconds)
        self.hold_reason = reason

    def _push_slow(self, slow: bool) -> None:
        w = self._slow
        w.append(slow)
        while len(w) > self.cfg.slow_call_window:
            w.popleft()

    def _too_slow(self) -> bool:
        n = len(self._slow)
        return n >= self.cfg.slow_call_min and sum(self._slow) / n >= self.cfg.slow_call_rate

    def _reopen(self, now: float, slow: bool, reason: str) -> None:
        """A failed probe: back to open. Only a slow failure doubles the cool-down."""
        cooldown = min(self.cooldown * 2, self.cfg.max_cooldown_s) if slow else self.cfg.cooldown_s
        self._open(now, max(cooldown, self.cfg.cooldown_s), reason)

    def _push(self, failed: bool) -> None:
        now = self.clock()
        w = self._window
        w.append((now, failed))
        horizon = now - self.cfg.window_s
        while w and w[0][0] < horizon:
            w.popleft()

    def _should_open(self) -> bool:
        if self.consecutive_failures >= self.cfg.consecutive_failures:
            return True
        n = len(self._window)
        if n < self.cfg.min_requests:
            return False
        failures = sum(1 for _, f in self._window if f)
        return failures / n >= self.cfg.error_rate

    def _open(self, now: float, cooldown: float, reason: str = "") -> None:
        self.state = State.OPEN
        self.opened_reason = reason
        self._slow.clear()
        self.opened_at = now
        self.cooldown = cooldown
        self.retry_at = now + cooldown
        self.opened_count += 1

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        n = len(self._window)
        failures = sum(1 for _, f in self._window if f)
        return {
            "target": self.target,
            "state": self.state.value,
            "available": self.availability() is None,
            "skip_reason": self.availability(),
            "forced": self.forced,
            "consecutive_failures": self.consecutive_failures,
            "window_requests": n,
            "window_error_rate": round(failures / n, 3) if n else 0.0,
            "slow_call_rate": round(sum(self._slow) / len(self._slow), 3) if self._slow else 0.0,
            "opened_reason": self.opened_reason or None,
            "retry_in_s": round(max(0.0, self.retry_at - now), 2) if self.state is State.OPEN else None,
            "held_for_s": round(self.held_until - now, 1) if self.held_until > now else None,
            "hold_reason": self.hold_reason if self.held_until > now else None,
            "last_error": self.last_error or None,
            "opened_count": self.opened_count,
        }


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to send one request; ``probe`` when it is the half-open trial."""

    probe: bool

    def __bool__(self) -> bool:
        return True


def _decides(claim: Claim | None) -> bool:
    return claim is None or claim.probe


class BreakerBoard:
    """All breakers of one gateway process (state lives on the app, not in module globals)."""

    def __init__(self, cfg: BreakerConfig, clock: Clock) -> None:
        self.cfg = cfg
        self.clock = clock
        self._breakers: dict[str, Breaker] = {}

    def get(self, target: str) -> Breaker:
        b = self._breakers.get(target)
        if b is None:
            b = self._breakers[target] = Breaker(target, self.cfg, self.clock)
        return b

    def force(self, target: str, mode: str | None) -> Breaker:
        if mode not in (None, "up", "down"):
            raise ValueError("mode must be 'up', 'down' or None")
        b = self.get(target)
        b.forced = mode
        if mode is None:
            b.held_until = 0.0
        return b

    def snapshot(self) -> list[dict[str, Any]]:
        return [b.snapshot() for b in self._breakers.values()]
