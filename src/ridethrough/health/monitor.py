"""Passive health: every request record, folded into windows, minute buckets and statuses.

The observer runs on the request path, so it only appends to a bounded queue (O(1), never
raises, drops and counts when the queue is full). Everything else — samples, windows,
buckets, status judgement, incident input — happens in ``tick``, called by the background
loop once a second and by the status endpoints before they answer. Records are stamped with
the health clock when observed (not ``record.ts``), so a test or drill that injects a clock
sees every record at the moment it says.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ridethrough.config import HealthConfig
from ridethrough.health.catalog import Catalog, Component
from ridethrough.health.incidents import IncidentEngine
from ridethrough.health.samples import Sample, probe_sample, samples_of
from ridethrough.health.slices import SliceRecorder
from ridethrough.health.status import (
    OPERATIONAL,
    judge_route,
    judge_target,
    severity,
    tree_since,
    tree_status,
)
from ridethrough.health.windows import Window, WindowStats
from ridethrough.records import RequestRecord
from ridethrough.store.stats import Bucket, add_counts, empty_hist, hist_add, hist_merge

log = logging.getLogger("ridethrough.health")

ComponentListener = Callable[[Component, str, str, list[str], float], None]
MAX_PENDING_BUCKETS = 200_000  # unflushed (component, minute) buckets kept while the store is down


def minute_of(ts: float) -> int:
    return int(ts // 60) * 60


@dataclass(slots=True)
class ComponentState:
    status: str = OPERATIONAL
    since: float = 0.0
    reasons: list[str] = field(default_factory=list)
    stats: WindowStats = field(default_factory=WindowStats)


@dataclass(slots=True)
class Totals:
    """Cumulative counters since start, for /metrics (Prometheus wants monotonic counters)."""

    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)   # route, outcome, tier
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)        # target, outcome
    probes: dict[tuple[str, str], int] = field(default_factory=dict)
    latency: dict[str, list[int]] = field(default_factory=dict)               # route → histogram
    latency_sum: dict[str, float] = field(default_factory=dict)
    ttft: dict[str, list[int]] = field(default_factory=dict)
    ttft_sum: dict[str, float] = field(default_factory=dict)

    def count(self, record: RequestRecord, samples: list[Sample]) -> None:
        k = (record.route, record.outcome, record.tier)
        self.requests[k] = self.requests.get(k, 0) + 1
        for s in samples[1:] if record.route else samples:
            ak = (s.component.removeprefix("target:"), s.outcome)
            self.attempts[ak] = self.attempts.get(ak, 0) + 1
        if record.route and record.outcome == "ok":
            hist_add(self.latency.setdefault(record.route, empty_hist()), record.ms)
            self.latency_sum[record.route] = self.latency_sum.get(record.route, 0.0) + record.ms
            if record.ttft_ms is not None:
                hist_add(self.ttft.setdefault(record.route, empty_hist()), record.ttft_ms)
                self.ttft_sum[record.route] = self.ttft_sum.get(record.route, 0.0) + record.ttft_ms

    # Several workers publish their totals through the store; /metrics shows their sum.

    def to_json(self) -> dict[str, Any]:
        """A copy (it is written to the store from another thread while requests go on)."""
        return {
            "requests": [[*k, n] for k, n in self.requests.items()],
            "attempts": [[*k, n] for k, n in self.attempts.items()],
            "probes": [[*k, n] for k, n in self.probes.items()],
            "latency": {k: list(v) for k, v in self.latency.items()},
            "latency_sum": dict(self.latency_sum),
            "ttft": {k: list(v) for k, v in self.ttft.items()},
            "ttft_sum": dict(self.ttft_sum),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Totals:
        t = cls()
        t.requests = {(r[0], r[1], r[2]): int(r[3]) for r in d.get("requests", [])}
        t.attempts = {(r[0], r[1]): int(r[2]) for r in d.get("attempts", [])}
        t.probes = {(r[0], r[1]): int(r[2]) for r in d.get("probes", [])}
        t.latency = {k: list(v) for k, v in d.get("latency", {}).items()}
        t.latency_sum = dict(d.get("latency_sum", {}))
        t.ttft = {k: list(v) for k, v in d.get("ttft", {}).items()}
        t.ttft_sum = dict(d.get("ttft_sum", {}))
        return t

    def merge(self, other: Totals) -> None:
        add_counts(self.requests, other.requests)
        add_counts(self.attempts, other.attempts)
        add_counts(self.probes, other.probes)
        add_counts(self.latency_sum, other.latency_sum)
        add_counts(self.ttft_sum, other.ttft_sum)
        for mine_h, theirs_h in ((self.latency, other.latency), (self.ttft, other.ttft)):
            for k, hist in theirs_h.items():
                hist_merge(mine_h.setdefault(k, empty_hist()), hist)


class HealthMonitor:
    def __init__(self, catalog: Catalog, cfg: HealthConfig, clock: Callable[[], float],
                 engine: IncidentEngine, *,
                 breaker_of: Callable[[str], dict[str, Any] | None] = lambda key: None,
                 unavailable_of: Callable[[str], str | None] = lambda provider: None) -> None:
        self.catalog = catalog
        self.cfg = cfg
        self.clock = clock
        self.engine = engine
        self.breaker_of = breaker_of
        self.unavailable_of = unavailable_of
        self.windows: dict[str, Window] = {c.key: Window() for c in catalog.leaves()}
        now = clock()
        self.states: dict[str, ComponentState] = {
            c.key: ComponentState(since=now) for c in catalog.leaves()}
        self.pending: dict[tuple[str, int], Bucket] = {}
        self.totals = Totals()
        self.slices: SliceRecorder | None = None   # set when workers share their samples
        self.listeners: list[ComponentListener] = [engine.on_status]
        self.dropped = 0
        self._queue: deque[tuple[float, Any]] = deque()

    # -- the hot path ----------------------------------------------------------------------

    def observe(self, record: RequestRecord) -> None:
        """The gateway observer: O(1), never raises, never blocks."""
        try:
            if len(self._queue) >= self.cfg.queue_max:
                self.dropped += 1
                return
            self._queue.append((self.clock(), record))
        except Exception:
            self.dropped += 1

    def observe_probe(self, target: str, outcome: str, ms: float) -> None:
        self._queue.append((self.clock(), (target, outcome, ms)))

    # -- the background side ----------------------------------------------------------------

    def tick(self, drained: list[tuple[float, RequestRecord]] | None = None) -> None:
        """Judge and step the incidents; ``drained``: records already folded this tick."""
        now = self.clock()
        records = (drained or []) + self.drain()
        self.evaluate(now)
        for at, record in records:
            self.engine.on_record(record, at)
        self.engine.step(now)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def drain(self, limit: int | None = None) -> list[tuple[float, RequestRecord]]:
        """Fold queued records (at most ``limit``) into windows, buckets, slices and totals;
        return them."""
        records: list[tuple[float, RequestRecord]] = []
        q = self._queue
        left = len(q) if limit is None else min(limit, len(q))
        while left > 0:
            left -= 1
            at, item = q.popleft()
            try:
                if isinstance(item, RequestRecord):
                    samples = samples_of(item, self.catalog.first_target.get(item.route))
                    self.totals.count(item, samples)
                    records.append((at, item))
                else:
                    target, outcome, ms = item
                    samples = [probe_sample(target, outcome, ms)]
                    pk = (target, samples[0].outcome)
                    self.totals.probes[pk] = self.totals.probes.get(pk, 0) + 1
                for s in samples:
                    self._add(at, s)
            except Exception:  # one malformed record must not cost the whole batch
                self.dropped += 1
                log.exception("health: could not read a record")
        return records

    def _add(self, at: float, s: Sample) -> None:
        window = self.windows.get(s.component)
        if window is None:
            return  # a route or target not in the config (e.g. an unknown model name)
        window.add(at, s)
        if self.slices is not None:
            self.slices.add(at, s)
        b = self._bucket(s.component, at)
        b.count_outcome(s.outcome)
        if not s.judged:
            return
        b.total += 1
        if s.failed:
            b.failed += 1
            return
        b.ok += 1
        b.fallback += s.fallback
        b.saved += s.saved
        if s.ms is not None:
            hist_add(b.latency, s.ms)
            b.latency_sum_ms += s.ms
        if s.ttft_ms is not None:
            hist_add(b.ttft, s.ttft_ms)
            b.ttft_sum_ms += s.ttft_ms
            b.ttft_n += 1

    def _bucket(self, component: str, at: float) -> Bucket:
        key = (component, minute_of(at))
        b = self.pending.get(key)
        if b is None:
            b = self.pending[key] = Bucket()
        return b

    def evaluate(self, now: float, stats: dict[str, WindowStats] | None = None) -> None:
        """Judge every leaf; ``stats`` replaces this process's own windows (the leader of
        several workers judges on everyone's samples, merged)."""
        th = self.cfg.thresholds
        for c in self.catalog.leaves():
            if stats is not None:
                st = stats.get(c.key) or WindowStats()
            else:
                st = self.windows[c.key].stats(now, th.window_s)
            if c.kind == "route":
                v = judge_route(st, th)
            else:
                assert c.target is not None and c.provider is not None
                v = judge_target(st, th, self.breaker_of(c.target), self.unavailable_of(c.provider))
            state = self.states[c.key]
            state.stats, state.reasons = st, v.reasons
            if severity(v.status) > 0:
                b = self._bucket(c.key, now)
                b.worst = max(b.worst, severity(v.status))
            if v.status != state.status:
                old, state.status, state.since = state.status, v.status, now
                log.info("component %s: %s → %s (%s)", c.name, old, v.status, "; ".join(v.reasons))
                for listener in self.listeners:
                    try:
                        listener(c, old, v.status, v.reasons, now)
                    except Exception:
                        log.exception("component listener failed")

    # -- reading ---------------------------------------------------------------------------

    def status_of(self, key: str) -> str:
        return tree_status(self.catalog, key, lambda k: self.states[k].status)

    def since_of(self, key: str) -> float:
        return tree_since(self.catalog, key,
                          lambda k: st.since if (st := self.states.get(k)) else None)

    # -- the store's side ------------------------------------------------------------------

    def take_pending(self) -> dict[tuple[str, int], Bucket]:
        taken, self.pending = self.pending, {}
        return taken

    def restore_pending(self, taken: dict[tuple[str, int], Bucket]) -> None:
        """A failed write: merge the deltas back, oldest dropped beyond the cap."""
        for key, b in taken.items():
            mine = self.pending.get(key)
            if mine is None:
                self.pending[key] = b
            else:
                mine.merge(b)
        if len(self.pending) > MAX_PENDING_BUCKETS:
            for key in sorted(self.pending, key=lambda k: k[1])[: len(self.pending) - MAX_PENDING_BUCKETS]:
                del self.pending[key]
