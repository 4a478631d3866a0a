"""What each target's latency normally is, learned from passive traffic.

Adaptive timeouts, hedging and the slow-call breaker all ask one question: "how long does
this target usually take for this kind of call?" The answer is a rolling quantile per target
and *phase*:

- ``headers``      a stream's time to response headers (the provider accepted the call);
- ``first_token:<b>`` a stream's time to its first content event (the commit point), bucketed
  by the prompt's estimated size — reading 100,000 tokens of context takes far longer than
  reading 100, and a limit learned from short prompts must not cut long ones;
- ``complete:<b>`` a JSON call's time to the whole answer, bucketed by the ``max_tokens`` the
  request asked for — a 4,000-token answer legitimately takes 40× a 100-token one, so one
  quantile for both would either cut long answers or wait forever on short ones.

Quantiles come from DDSketch (relative-error sketches, mergeable, a few hundred bytes each):
no samples are kept, and slices of time merge exactly. The window is rolling: one sketch per
``slice_s`` seconds, the last ``slices`` of them merged on read, so what a provider did an hour
ago does not hide what it does now. Reads are cached for ``read_cache_s`` because they sit on
the request path (a merge + quantile is ~10–50 µs; a cached read is a dict lookup).
Only successful observations are recorded: a timeout says "at least this long", and feeding it
in would teach the model that freezes are normal.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ddsketch import DDSketch

from ridethrough.routing.clock import Clock

# Upper bounds of the max_tokens buckets for JSON completion time; above the last: "long".
OUTPUT_BUCKETS = (256, 1024, 4096)
# Upper bounds of the prompt-size buckets for a stream's first token; above the last: "long".
INPUT_BUCKETS = (4096, 32768)


def input_bucket(input_tokens: int | None) -> str:
    """``first_token:le4096`` … ``first_token:long``: the stream phase for a prompt's size."""
    for bound in INPUT_BUCKETS:
        if input_tokens is not None and input_tokens <= bound:
            return f"first_token:le{bound}"
    return "first_token:long"


def output_bucket(max_tokens: int | None) -> str:
    """``complete:le256`` … ``complete:long``: the JSON phase for a requested output size.

    An OpenAI request that names no limit is put with the longest answers (it may produce them).
    """
    if max_tokens and max_tokens > 0:
        for bound in OUTPUT_BUCKETS:
            if max_tokens <= bound:
                return f"complete:le{bound}"
    return "complete:long"


def _sketch() -> DDSketch:
    return DDSketch(relative_accuracy=0.01)


@dataclass(slots=True)
class _Series:
    """One (target, phase): a ring of per-slice sketches, newest last."""

    slices: deque[tuple[int, DDSketch]] = field(default_factory=deque)
    cached_at: float = float("-inf")
    cached: dict[float, float | None] = field(default_factory=dict)
    cached_count: int = 0
    added: int = 0                      # observations ever added (a cold read re-checks on change)
    cached_added: int = -1


class LatencyModel:
    """Rolling latency quantiles per target and phase, on an injected clock."""

    def __init__(self, clock: Clock, *, slice_s: float = 60.0, slices: int = 10,
                 min_samples: int = 20, read_cache_s: float = 1.0) -> None:
        self.clock = clock
        self.slice_s = slice_s
        self.max_slices = slices
        self.min_samples = min_samples
        self.read_cache_s = read_cache_s
        self._series: dict[tuple[str, str], _Series] = {}

    # -- writing ---------------------------------------------------------------------------

    def observe(self, target: str, phase: str, seconds: float) -> None:
        if seconds < 0:
            return
        series = self._series.get((target, phase))
        if series is None:
            series = self._series[(target, phase)] = _Series()
        now_slice = int(self.clock() // self.slice_s)
        if not series.slices or series.slices[-1][0] != now_slice:
            series.slices.append((now_slice, _sketch()))
            self._expire(series, now_slice)
        series.slices[-1][1].add(seconds)
        series.added += 1

    def _expire(self, series: _Series, now_slice: int) -> None:
        oldest = now_slice - self.max_slices + 1
        while series.slices and series.slices[0][0] < oldest:
            series.slices.popleft()

    # -- reading ---------------------------------------------------------------------------

    def _merged(self, series: _Series) -> DDSketch | None:
        self._expire(series, int(self.clock() // self.slice_s))
        if not series.slices:
            return None
        merged = _sketch()
        for _, sk in series.slices:
            merged.merge(sk)
        return merged

    def count(self, target: str, phase: str) -> int:
        series = self._series.get((target, phase))
        if series is None:
            return 0
        self._refresh(series)
        return series.cached_count

    def quantile(self, target: str, phase: str, q: float) -> float | None:
        """The q-quantile in seconds, or None until ``min_samples`` calls were seen."""
        series = self._series.get((target, phase))
        if series is None:
            return None
        self._refresh(series)
        if series.cached_count < self.min_samples:
            return None
        value = series.cached.get(q)
        if value is None and q not in series.cached:
            merged = self._merged(series)
            value = merged.get_quantile_value(q) if merged is not None else None
            series.cached[q] = value
        return value

    def _refresh(self, series: _Series) -> None:
        now = self.clock()
        fresh = now - series.cached_at < self.read_cache_s
        # While cold, a read follows every new sample: the moment the model becomes warm
        # must not wait out the read cache (a freeze may be exactly then).
        if fresh and (series.cached_count >= self.min_samples or series.cached_added == series.added):
            return
        series.cached_at = now
        series.cached_added = series.added
        series.cached = {}
        merged = self._merged(series)
        series.cached_count = int(merged.count) if merged is not None else 0

    # -- views -----------------------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        """Per target and phase: sample count and p50/p95/p99 in ms (None while cold)."""
        out = []
        for (target, phase), series in sorted(self._series.items()):
            merged = self._merged(series)
            if merged is not None and merged.count:
                out.append(_row(target, phase, merged, self.min_samples))
        return out

    def export(self) -> dict[str, dict[str, Any]]:
        """The rolling window's sketches, ``"target|phase"`` → JSON, for other workers to merge."""
        out = {}
        for (target, phase), series in self._series.items():
            merged = self._merged(series)
            if merged is not None and merged.count:
                out[f"{target}|{phase}"] = sketch_to_json(merged)
        return out


def merge_exports(exports: list[dict[str, dict[str, Any]]], min_samples: int) -> list[dict[str, Any]]:
    """Several workers' ``export()`` as one view: exact merges of their sketches."""
    merged: dict[str, DDSketch] = {}
    for export in exports:
        for key, data in export.items():
            merged.setdefault(key, _sketch()).merge(sketch_from_json(data))
    rows = []
    for key in sorted(merged):
        target, phase = key.rsplit("|", 1)
        rows.append(_row(target, phase, merged[key], min_samples))
    return rows


def _row(target: str, phase: str, sk: DDSketch, min_samples: int) -> dict[str, Any]:
    row: dict[str, Any] = {"target": target, "phase": phase, "count": int(sk.count)}
    for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        value = sk.get_quantile_value(q)
        row[name] = round(value * 1000, 1) if value is not None else None
    row["warm"] = sk.count >= min_samples
    return row


# DDSketch's own serialization needs protobuf; its state is a few fields, written here as JSON
# (tests/unit/routing/test_latency.py round-trips it, so a library change fails there by name).

def sketch_to_json(sk: DDSketch) -> dict[str, Any]:
    def bins(store: Any) -> dict[str, float]:
        return {str(store.offset + i): c for i, c in enumerate(store.bins) if c}

    return {"pos": bins(sk._store), "neg": bins(sk._negative_store), "zero": sk._zero_count,
            "count": sk._count, "sum": sk._sum, "min": sk._min, "max": sk._max}


def sketch_from_json(data: dict[str, Any]) -> DDSketch:
    sk = _sketch()
    for key, count in data["pos"].items():
        sk._store.add(int(key), count)
    for key, count in data["neg"].items():
        sk._negative_store.add(int(key), count)
    sk._zero_count = data["zero"]
    sk._count, sk._sum, sk._min, sk._max = data["count"], data["sum"], data["min"], data["max"]
    return sk
