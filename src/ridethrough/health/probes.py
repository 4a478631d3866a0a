"""Active probes: a one-token request to a target, on a timer and whenever its breaker
is due for a half-open trial.

Passive health knows nothing about a target nobody is calling — an overnight fallback, or
a target whose breaker is open and so gets no traffic. A probe fills that gap, and taking
the half-open slot means the trial request that decides "is it back?" is ours, not a
user's. Probes are opt-in per target because each one is a billed request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ridethrough.config import ProbeConfig
from ridethrough.errors import ErrorClass, UpstreamError
from ridethrough.providers.base import UpstreamCall
from ridethrough.routing.breaker import BreakerBoard, State
from ridethrough.routing.clock import Clock
from ridethrough.routing.deadline import Deadline
from ridethrough.routing.plan import Target

log = logging.getLogger("ridethrough.health")
ResultSink = Callable[[str, str, float], None]   # target key, outcome, ms


@dataclass(slots=True)
class ProbeResult:
    target: str
    outcome: str        # "ok", an error class value, or "skipped:<reason>"
    ms: float = 0.0
    detail: str = ""


def probe_body(target: Target, cfg: ProbeConfig) -> bytes:
    body: dict[str, Any] = {"model": target.model, "max_tokens": cfg.max_tokens,
                            "messages": [{"role": "user", "content": cfg.prompt}]}
    return orjson.dumps(body)


class Prober:
    def __init__(self, targets: dict[str, Target], probes: dict[str, ProbeConfig],
                 board: BreakerBoard, clock: Clock, sink: ResultSink) -> None:
        self.targets = {k: t for k, t in targets.items() if k in probes}
        self.probes = probes
        self.board = board
        self.clock = clock          # the gateway's clock: the one the breakers and deadlines use
        self.sink = sink
        self.next_at: dict[str, float] = {k: 0.0 for k in self.targets}
        self.last: dict[str, ProbeResult] = {}

    def due(self, key: str, now: float) -> bool:
        """On its interval, or now if its breaker is open and its cool-down has passed."""
        b = self.board.get(key)
        if b.state is State.OPEN and b.availability() is None:
            return True
        return now >= self.next_at[key]

    async def probe(self, key: str) -> ProbeResult:
        target, cfg = self.targets[key], self.probes[key]
        self.next_at[key] = self.clock() + cfg.interval_s
        breaker = self.board.get(key)
        if target.provider.unavailable_reason:
            return self._done(ProbeResult(key, "skipped:unavailable"), feed=False)
        if breaker.forced == "down":
            return self._done(ProbeResult(key, "skipped:drained"), feed=False)
        if not breaker.acquire():  # held down, cooling down, or another trial in flight
            return self._done(ProbeResult(key, f"skipped:{breaker.availability()}"), feed=False)
        call = UpstreamCall(model=target.model, body=probe_body(target, cfg), stream=False,
                            deadline=Deadline.start(self.clock, cfg.timeout_s),
                            timeouts=target.timeouts)
        t0 = self.clock()
        try:
            resp = await target.provider.complete(call)
            orjson.loads(resp.body)
        except UpstreamError as e:
            ms = (self.clock() - t0) * 1000
            action = e.action
            if action.counts_for_breaker:
                breaker.record_failure(e.error_class.value)
            else:
                breaker.release()
            if action.hold_down_s:
                breaker.hold_down(action.hold_down_s, e.error_class.value)
            return self._done(ProbeResult(key, e.error_class.value, ms, e.message[:200]))
        except orjson.JSONDecodeError:
            breaker.record_failure(ErrorClass.MALFORMED.value)
            return self._done(ProbeResult(key, ErrorClass.MALFORMED.value,
                                          (self.clock() - t0) * 1000))
        except asyncio.CancelledError:
            breaker.release()
            raise
        except Exception as e:  # our bug, not the target's: no verdict on it
            breaker.release()
            log.exception("probe of %s failed unexpectedly", key)
            return self._done(ProbeResult(key, "skipped:probe_error", 0.0, str(e)[:200]), feed=False)
        breaker.record_success()
        return self._done(ProbeResult(key, "ok", (self.clock() - t0) * 1000))

    def _done(self, result: ProbeResult, feed: bool = True) -> ProbeResult:
        self.last[result.target] = result
        if feed:
            self.sink(result.target, result.outcome, result.ms)
        return result

    async def run(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                  poll_s: float = 1.0) -> None:
        running: dict[str, asyncio.Task[ProbeResult]] = {}
        try:
            while True:
                now = self.clock()
                for key in self.targets:
                    task = running.get(key)
                    if (task is None or task.done()) and self.due(key, now):
                        running[key] = asyncio.ensure_future(self.probe(key))
                await sleep(poll_s)
        finally:
            for task in running.values():
                task.cancel()
