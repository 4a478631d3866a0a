"""Reading history back: 90 days of uptime bars and a day of latency, from the store.

Uptime is counted by requests (Gatus, OpenStatus "by requests"): the share of judged
requests that succeeded. A day's colour is the worst status any of its minutes had, so a
ten-minute major outage on a busy day still shows red even if 99.9 % of requests went
through — which is what a person scanning the bars wants to know.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ridethrough.store import SqliteStore
from ridethrough.store.stats import Bucket, hist_percentile

DAY = 86400
HOUR = 3600


@dataclass(slots=True)
class DayBar:
    start: int
    total: int = 0
    ok: int = 0
    failed: int = 0
    worst: int = 0
    has_data: bool = False

    @property
    def uptime(self) -> float | None:
        return self.ok / self.total if self.total else None


@dataclass(slots=True)
class LatencyPoint:
    start: int
    p50_ms: float | None
    p95_ms: float | None
    requests: int


def uptime_bars(store: SqliteStore, keys: Iterable[str], now: float,
                days: int = 90) -> dict[str, list[DayBar]]:
    """Per component, ``days`` bars oldest first, today last. Raises StoreUnavailable."""
    keys = list(keys)
    today = int(now) // DAY * DAY
    first = today - (days - 1) * DAY
    rows = store.read_buckets("day", first, today + DAY, keys)
    out: dict[str, list[DayBar]] = {}
    for key in keys:
        bars = []
        for i in range(days):
            start = first + i * DAY
            b = rows.get((key, start))
            bar = DayBar(start)
            if b is not None:
                bar.total, bar.ok, bar.failed, bar.worst = b.total, b.ok, b.failed, b.worst
                bar.has_data = True
            bars.append(bar)
        out[key] = bars
    return out


def overall_uptime(bars: list[DayBar]) -> float | None:
    total = sum(b.total for b in bars)
    return sum(b.ok for b in bars) / total if total else None


def latency_series(store: SqliteStore, keys: Iterable[str], now: float,
                   hours: int = 24) -> dict[str, list[LatencyPoint]]:
    """Hourly p50/p95 of successful requests over the last ``hours`` (current hour last)."""
    keys = list(keys)
    this_hour = int(now) // HOUR * HOUR
    first = this_hour - (hours - 1) * HOUR
    rows = store.read_buckets("hour", first, this_hour + HOUR, keys)
    out: dict[str, list[LatencyPoint]] = {}
    for key in keys:
        points = []
        for i in range(hours):
            start = first + i * HOUR
            b = rows.get((key, start)) or Bucket()
            points.append(LatencyPoint(start, hist_percentile(b.latency, 0.5),
                                       hist_percentile(b.latency, 0.95), b.ok))
        out[key] = points
    return out
