"""Builders of request records for the health tests: an outage described in a few lines.

``records.RequestRecord`` has many fields; a health test cares about three — which targets
were tried, how each attempt ended, and who served the answer. These builders fill the rest
the way the gateway would, so tests read like the scenario they check.
"""

from __future__ import annotations

import itertools
from typing import Any

from ridethrough.config import Config, parse_config
from ridethrough.errors import AttemptRecord
from ridethrough.records import RequestRecord

_ids = itertools.count(1)


def record(route: str, attempts: list[tuple[str, str] | tuple[str, str, float]], *,
           outcome: str | None = None, served_by: str | None = None, tier: str = "live",
           ms: float | None = None, ttft_ms: float | None = None, stream: bool = False,
           ts: float = 0.0) -> RequestRecord:
    """``attempts``: (target, outcome[, ms]) in order. The outcome defaults to "ok" when the
    last attempt was ok, else "error"; served_by to the target of the ok attempt."""
    recs = [AttemptRecord(a[0], a[1], float(a[2]) if len(a) > 2 else 100.0) for a in attempts]
    ok_attempt = next((a for a in recs if a.outcome == "ok"), None)
    if outcome is None:
        outcome = "ok" if ok_attempt is not None or tier != "live" else "error"
    if served_by is None and ok_attempt is not None:
        served_by = ok_attempt.target
    if ms is None:
        ms = sum(a.ms for a in recs)
    return RequestRecord(f"req_{next(_ids)}", route, "anthropic", stream,
                         200 if outcome == "ok" else 503, outcome, recs, served_by=served_by,
                         tier=tier, ms=ms, ttft_ms=ttft_ms, ts=ts)


def ok(route: str, target: str, ms: float = 200.0, **kw: Any) -> RequestRecord:
    return record(route, [(target, "ok", ms)], **kw)


def failover(route: str, failed: str, error: str, served: str, **kw: Any) -> RequestRecord:
    """The first target failed with ``error``; the next one answered."""
    return record(route, [(failed, error, 50.0), (served, "ok", 300.0)], **kw)


def skipped_then(route: str, skipped: str, reason: str, served: str, **kw: Any) -> RequestRecord:
    return record(route, [(skipped, f"skipped:{reason}", 0.0), (served, "ok", 300.0)], **kw)


def all_failed(route: str, failures: list[tuple[str, str]], **kw: Any) -> RequestRecord:
    return record(route, [(t, e, 50.0) for t, e in failures], outcome="error", **kw)


def simulated_config(routes: dict[str, list[str]] | None = None, **extra: Any) -> Config:
    """Simulated providers "anthropic" (Anthropic format) and "openai" (OpenAI format)."""
    routes = routes or {"claude": ["anthropic/claude-sonnet-4-5", "openai/gpt-4o"]}
    data: dict[str, Any] = {
        "providers": {
            "anthropic": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0.0},
            "openai": {"kind": "simulated", "format": "openai", "token_delay_s": 0.0},
        },
        "routes": {
            name: {"targets": [{"provider": t.split("/", 1)[0], "model": t.split("/", 1)[1]}
                               for t in targets]}
            for name, targets in routes.items()
        },
    }
    data.update(extra)
    return parse_config(data)
