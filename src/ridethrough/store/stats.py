"""Counting what happened in a period: one ``Bucket`` per component per minute/hour/day.

Every field merges by addition (or max, for the worst status), so a minute bucket can be
written to the store as a delta, re-merged after a failed write, and rolled up into hours
and days without keeping raw samples. Latency is kept as a fixed-boundary histogram for the
same reason: percentiles of an hour are computed from its minutes' histograms, and the same
boundaries are the Prometheus histogram's ``le`` labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

K = TypeVar("K")
N = TypeVar("N", int, float)

# Milliseconds. Spans a cached answer (tens of ms) to a long reasoning answer (minutes).
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000,
)


def empty_hist() -> list[int]:
    return [0] * (len(LATENCY_BOUNDS_MS) + 1)  # the last slot is "above every bound"


def hist_add(hist: list[int], ms: float) -> None:
    for i, bound in enumerate(LATENCY_BOUNDS_MS):
        if ms <= bound:
            hist[i] += 1
            return
    hist[-1] += 1


def hist_merge(into: list[int], other: Iterable[int]) -> None:
    """Add ``other``'s counts to ``into`` (same bounds; slots past ``into``'s are ignored)."""
    for i, v in zip(range(len(into)), other, strict=False):
        into[i] += v


def hist_load(stored: Iterable[Any]) -> list[int]:
    """A histogram read back from JSON or the store. Tolerates one written with other
    bounds: padded, or its extra slots folded into the last ("above every bound")."""
    hist = empty_hist()
    for i, v in enumerate(stored):
        hist[min(i, len(hist) - 1)] += int(v)
    return hist


def add_counts(into: dict[K, N], other: Mapping[K, N]) -> None:
    """Add per-key counts or sums (outcomes, error classes, totals) into ``into``."""
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def hist_percentile(hist: list[int], q: float) -> float | None:
    """The q-quantile (0..1), interpolated linearly inside its bucket; None when empty."""
    n = sum(hist)
    if n == 0:
        return None
    rank = q * n
    seen = 0
    for i, count in enumerate(hist):
        if count and seen + count >= rank:
            lower = LATENCY_BOUNDS_MS[i - 1] if i > 0 else 0.0
            if i >= len(LATENCY_BOUNDS_MS):
                return float(LATENCY_BOUNDS_MS[-1])
            upper = LATENCY_BOUNDS_MS[i]
            return lower + (upper - lower) * max(0.0, rank - seen) / count
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])


def exact_percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (the in-memory windows)."""
    if not sorted_values:
        return None
    idx = min(len(sorted_values) - 1, max(0, int(q * len(sorted_values) + 0.999999) - 1))
    return sorted_values[idx]


@dataclass(slots=True)
class Bucket:
    """What one component saw in one period.

    ``total`` counts judged requests (ok + failed); outcomes that say nothing about the
    component (the client's own 4xx, a capability skip) are only in ``outcomes``.
    """

    total: int = 0
    ok: int = 0
    failed: int = 0
    fallback: int = 0          # route answers not served by the route's first live target
    saved: int = 0             # requests with a failed attempt that still ended ok
    worst: int = 0             # worst status severity seen (0 operational … 3 major outage)
    latency_sum_ms: float = 0.0
    ttft_sum_ms: float = 0.0
    ttft_n: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    latency: list[int] = field(default_factory=empty_hist)
    ttft: list[int] = field(default_factory=empty_hist)

    def count_outcome(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def merge(self, other: Bucket) -> None:
        self.total += other.total
        self.ok += other.ok
        self.failed += other.failed
        self.fallback += other.fallback
        self.saved += other.saved
        self.worst = max(self.worst, other.worst)
        self.latency_sum_ms += other.latency_sum_ms
        self.ttft_sum_ms += other.ttft_sum_ms
        self.ttft_n += other.ttft_n
        add_counts(self.outcomes, other.outcomes)
        hist_merge(self.latency, other.latency)
        hist_merge(self.ttft, other.ttft)

    @property
    def uptime(self) -> float | None:
        """Share of judged requests that succeeded (Gatus-style); None without traffic."""
        return self.ok / self.total if self.total else None

    def percentiles(self) -> dict[str, float | None]:
        return {
            "p50_ms": hist_percentile(self.latency, 0.50),
            "p95_ms": hist_percentile(self.latency, 0.95),
            "p99_ms": hist_percentile(self.latency, 0.99),
            "ttft_p50_ms": hist_percentile(self.ttft, 0.50),
            "ttft_p95_ms": hist_percentile(self.ttft, 0.95),
        }

    def to_row(self) -> dict[str, Any]:
        return {
            "total": self.total, "ok": self.ok, "failed": self.failed,
            "fallback": self.fallback, "saved": self.saved, "worst": self.worst,
            "latency_sum_ms": self.latency_sum_ms, "ttft_sum_ms": self.ttft_sum_ms,
            "ttft_n": self.ttft_n, "outcomes": dict(self.outcomes),
            "latency": list(self.latency), "ttft": list(self.ttft),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Bucket:
        b = cls(
            total=int(row["total"]), ok=int(row["ok"]), failed=int(row["failed"]),
            fallback=int(row["fallback"]), saved=int(row["saved"]), worst=int(row["worst"]),
            latency_sum_ms=float(row["latency_sum_ms"]), ttft_sum_ms=float(row["ttft_sum_ms"]),
            ttft_n=int(row["ttft_n"]), outcomes=dict(row["outcomes"]),
            latency=hist_load(row["latency"]), ttft=hist_load(row["ttft"]),
        )
        return b
