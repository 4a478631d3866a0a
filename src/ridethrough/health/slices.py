"""Per-second slices of judged samples: the sliding window, in a form processes can share.

A single process judges "right now" from raw samples (``windows.Window``). Several workers
cannot share raw samples cheaply, but they can share what each saw per component per
second — counts, error classes and fixed-boundary latency histograms, which merge by
addition. The leader sums the last ``window_s`` seconds of every worker's slices and gets
the same ``WindowStats`` the judging rules already take, with two approximations a
second wide: percentiles come from histograms, and the success streak that forgives a
window (``recovery_successes``) is counted to the second — within the second of the last
failure only the failing worker's own later successes count, as the order between
workers inside one second is unknown (the cautious reading).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ridethrough.health.samples import Sample
from ridethrough.health.windows import WindowStats
from ridethrough.store.stats import (
    add_counts,
    empty_hist,
    hist_add,
    hist_load,
    hist_merge,
    hist_percentile,
)

KEEP_UNSENT_S = 60  # a worker keeps its own slices this long (late samples still merge)


@dataclass(slots=True)
class Slice:
    n: int = 0
    failures: int = 0
    ok_tail: int = 0           # successes after the last failure in this second (all if none)
    fallback: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    latency: list[int] = field(default_factory=empty_hist)
    ttft: list[int] = field(default_factory=empty_hist)

    def add(self, s: Sample) -> None:
        self.n += 1
        if s.failed:
            self.failures += 1
            self.classes[s.outcome] = self.classes.get(s.outcome, 0) + 1
            self.ok_tail = 0
            return
        self.ok_tail += 1
        if s.ms is not None:
            hist_add(self.latency, s.ms)
        if s.ttft_ms is not None:
            hist_add(self.ttft, s.ttft_ms)
        self.fallback += s.fallback

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "failures": self.failures, "ok_tail": self.ok_tail,
                "fallback": self.fallback, "classes": dict(self.classes),
                "latency": list(self.latency), "ttft": list(self.ttft)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Slice:
        return cls(int(d["n"]), int(d["failures"]), int(d["ok_tail"]), int(d["fallback"]),
                   {str(k): int(v) for k, v in d["classes"].items()},
                   hist_load(d["latency"]), hist_load(d["ttft"]))

    def merge_counts(self, other: Slice) -> None:
        """Add ``other``'s counts and histograms (``ok_tail`` is the caller's to decide)."""
        self.n += other.n
        self.failures += other.failures
        self.fallback += other.fallback
        add_counts(self.classes, other.classes)
        hist_merge(self.latency, other.latency)
        hist_merge(self.ttft, other.ttft)


def merge_second(slices: Iterable[Slice]) -> Slice:
    """Several workers' slices of the same second, as one."""
    out = Slice()
    tails: list[int] = []
    for s in slices:
        out.merge_counts(s)
        if s.failures:
            tails.append(s.ok_tail)
    out.ok_tail = min(tails) if tails else out.n - out.failures
    return out


def window_stats(seconds: dict[int, Slice], now: float, window_s: float) -> WindowStats:
    """``WindowStats`` over the seconds that overlap ``(now - window_s, now]``."""
    horizon = now - window_s
    inside = sorted((sec for sec in seconds if sec + 1 > horizon), reverse=True)
    total = Slice()
    st = WindowStats()
    streak_open = True
    for sec in inside:
        s = seconds[sec]
        total.merge_counts(s)
        if streak_open:
            if s.failures:
                st.ok_streak += s.ok_tail
                streak_open = False
            else:
                st.ok_streak += s.n
    st.n, st.failures, st.fallback, st.classes = (total.n, total.failures, total.fallback,
                                                  total.classes)
    latency, ttft = total.latency, total.ttft
    st.n_latency, st.n_ttft = sum(latency), sum(ttft)
    st.p50_ms, st.p95_ms, st.p99_ms = (hist_percentile(latency, q) for q in (0.5, 0.95, 0.99))
    st.ttft_p50_ms = hist_percentile(ttft, 0.5)
    st.ttft_p95_ms = hist_percentile(ttft, 0.95)
    return st


class SliceRecorder:
    """A worker's side: its slices by (component, second), and which changed since sent."""

    def __init__(self) -> None:
        self.slices: dict[tuple[str, int], Slice] = {}
        self.dirty: set[tuple[str, int]] = set()

    def add(self, at: float, s: Sample) -> None:
        if not s.judged:
            return
        key = (s.component, int(at))
        sl = self.slices.get(key)
        if sl is None:
            sl = self.slices[key] = Slice()
        sl.add(s)
        self.dirty.add(key)

    def take(self) -> list[tuple[str, int, dict[str, Any]]]:
        """The changed slices, whole (the store replaces a worker's row with them)."""
        out = [(comp, sec, self.slices[(comp, sec)].to_json()) for comp, sec in sorted(self.dirty)]
        self.dirty = set()
        return out

    def restore(self, sent: list[tuple[str, int, dict[str, Any]]]) -> None:
        """A failed write: send them again next time."""
        self.dirty |= {(comp, sec) for comp, sec, _ in sent}

    def prune(self, now: float) -> None:
        old = int(now) - KEEP_UNSENT_S
        for key in [k for k in self.slices if k[1] < old and k not in self.dirty]:
            del self.slices[key]


class SliceCache:
    """The leader's side: every worker's slices of the window, merged per second on read."""

    def __init__(self) -> None:
        self._by_component: dict[str, dict[int, dict[str, Slice]]] = {}

    def put(self, instance: str, component: str, second: int, s: Slice) -> None:
        self._by_component.setdefault(component, {}).setdefault(second, {})[instance] = s

    def prune(self, before_second: int) -> None:
        for seconds in self._by_component.values():
            for sec in [s for s in seconds if s < before_second]:
                del seconds[sec]

    def clear(self) -> None:
        self._by_component.clear()

    def stats(self, components: Iterable[str], now: float,
              window_s: float) -> dict[str, WindowStats]:
        out = {}
        for comp in components:
            by_second = self._by_component.get(comp, {})
            merged = {sec: merge_second(workers.values()) for sec, workers in by_second.items()}
            out[comp] = window_stats(merged, now, window_s)
        return out
