"""Sliding windows of recent samples: what "right now" means for a component's status.

Buckets answer "how was last Tuesday"; a window answers "is it failing at this moment",
with exact percentiles over the last couple of minutes. Samples are appended as they are
drained from the observer queue and pruned when read, so the request path never waits.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ridethrough.health.samples import Sample
from ridethrough.store.stats import exact_percentile

MAX_SAMPLES = 5000  # per component: enough for percentiles, bounded under any load


@dataclass(slots=True)
class WindowStats:
    n: int = 0
    failures: int = 0
    ok_streak: int = 0                 # successes in a row at the end of the window
    fallback: int = 0
    classes: dict[str, int] = field(default_factory=dict)   # failure outcome → count
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    n_latency: int = 0
    n_ttft: int = 0

    @property
    def error_rate(self) -> float:
        return self.failures / self.n if self.n else 0.0

    @property
    def fallback_rate(self) -> float:
        ok = self.n - self.failures
        return self.fallback / ok if ok else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.n, "failures": self.failures,
            "error_rate": round(self.error_rate, 4), "ok_streak": self.ok_streak,
            "fallback_rate": round(self.fallback_rate, 4), "errors": dict(self.classes),
            "p50_ms": _r(self.p50_ms), "p95_ms": _r(self.p95_ms), "p99_ms": _r(self.p99_ms),
            "ttft_p50_ms": _r(self.ttft_p50_ms), "ttft_p95_ms": _r(self.ttft_p95_ms),
        }


def _r(v: float | None) -> float | None:
    return round(v, 1) if v is not None else None


class Window:
    """Judged samples of one component: (at, failed, outcome, ms, ttft_ms, fallback)."""

    __slots__ = ("_items",)

    def __init__(self, maxlen: int = MAX_SAMPLES) -> None:
        self._items: deque[tuple[float, bool, str, float | None, float | None, bool]] = \
            deque(maxlen=maxlen)

    def add(self, at: float, s: Sample) -> None:
        if s.judged:
            self._items.append((at, s.failed, s.outcome, s.ms, s.ttft_ms, s.fallback))

    def stats(self, now: float, window_s: float) -> WindowStats:
        items = self._items
        horizon = now - window_s
        while items and items[0][0] < horizon:
            items.popleft()
        st = WindowStats(n=len(items))
        lat: list[float] = []
        ttft: list[float] = []
        for _, failed, outcome, ms, t, fb in items:
            if failed:
                st.failures += 1
                st.classes[outcome] = st.classes.get(outcome, 0) + 1
            else:
                if ms is not None:
                    lat.append(ms)
                if t is not None:
                    ttft.append(t)
                if fb:
                    st.fallback += 1
        for item in reversed(items):
            if item[1]:
                break
            st.ok_streak += 1
        lat.sort()
        ttft.sort()
        st.n_latency, st.n_ttft = len(lat), len(ttft)
        st.p50_ms, st.p95_ms, st.p99_ms = (exact_percentile(lat, q) for q in (0.5, 0.95, 0.99))
        st.ttft_p50_ms = exact_percentile(ttft, 0.5)
        st.ttft_p95_ms = exact_percentile(ttft, 0.95)
        return st
