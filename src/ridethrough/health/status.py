"""From numbers to one word: a component's status, and why.

Statuspage's vocabulary (operational, degraded_performance, partial_outage, major_outage,
under_maintenance) is what every status tool already understands, so it is ours too. The
rules are pure functions of a window's stats, the breaker's snapshot and the thresholds, so
a test can state "70 % errors over 20 requests is a partial outage" without a gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ridethrough.config import Thresholds
from ridethrough.health.catalog import Catalog
from ridethrough.health.windows import WindowStats

OPERATIONAL = "operational"
DEGRADED = "degraded_performance"
PARTIAL = "partial_outage"
MAJOR = "major_outage"
MAINTENANCE = "under_maintenance"

SEVERITY = {OPERATIONAL: 0, MAINTENANCE: 0, DEGRADED: 1, PARTIAL: 2, MAJOR: 3}
BY_SEVERITY = {0: OPERATIONAL, 1: DEGRADED, 2: PARTIAL, 3: MAJOR}
LABEL = {
    OPERATIONAL: "Operational", DEGRADED: "Degraded performance", PARTIAL: "Partial outage",
    MAJOR: "Major outage", MAINTENANCE: "Under maintenance",
}
# Statuspage's page indicator for the worst component status, and its description.
INDICATOR = {0: "none", 1: "minor", 2: "major", 3: "critical"}
INDICATOR_TEXT = {
    "none": "All Systems Operational", "minor": "Partially Degraded Service",
    "major": "Partial System Outage", "critical": "Major System Outage",
    "maintenance": "Service Under Maintenance",
}
IMPACT = {0: "none", 1: "minor", 2: "major", 3: "critical"}


def severity(status: str) -> int:
    return SEVERITY.get(status, 0)


@dataclass(slots=True)
class Verdict:
    status: str = OPERATIONAL
    reasons: list[str] = field(default_factory=list)

    def raise_to(self, status: str, reason: str) -> None:
        if self.status == MAINTENANCE:
            return
        if status == MAINTENANCE:
            self.status, self.reasons = MAINTENANCE, [reason]
            return
        if severity(status) > severity(self.status):
            self.status = status
        self.reasons.append(reason)


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _error_summary(st: WindowStats) -> str:
    top = sorted(st.classes.items(), key=lambda kv: -kv[1])[:3]
    detail = ", ".join(f"{k} ×{v}" for k, v in top)
    return f"{_pct(st.error_rate)} of {st.n} requests failed" + (f" ({detail})" if detail else "")


def judge_errors(v: Verdict, st: WindowStats, th: Thresholds) -> None:
    if st.n < th.min_requests or st.ok_streak >= th.recovery_successes:
        return  # too little to judge, or recovered: the last N in a row went through
    rate = st.error_rate
    for limit, status in ((th.error_rate_major, MAJOR), (th.error_rate_partial, PARTIAL),
                          (th.error_rate_degraded, DEGRADED)):
        if rate >= limit:
            v.raise_to(status, _error_summary(st))
            return


def judge_latency(v: Verdict, st: WindowStats, th: Thresholds) -> None:
    if st.n_ttft >= th.min_requests and st.ttft_p95_ms is not None \
            and st.ttft_p95_ms >= th.ttft_p95_degraded_ms:
        v.raise_to(DEGRADED, f"slow first token: p95 {st.ttft_p95_ms / 1000:.1f}s")
    elif st.n_latency >= th.min_requests and st.p95_ms is not None \
            and st.p95_ms >= th.latency_p95_degraded_ms:
        v.raise_to(DEGRADED, f"slow answers: p95 {st.p95_ms / 1000:.1f}s")


def judge_breaker(v: Verdict, snap: dict[str, Any] | None, provider_unavailable: str | None) -> None:
    if provider_unavailable:
        v.raise_to(MAINTENANCE, f"not configured: {provider_unavailable}")
        return
    if not snap or snap.get("forced") == "up":
        return
    if snap.get("forced") == "down":
        v.raise_to(MAINTENANCE, "drained by an operator")
        return
    if snap.get("hold_reason"):
        v.raise_to(MAJOR, f"held down after {snap['hold_reason']}")
    state = snap.get("state")
    last = f": {snap['last_error']}" if snap.get("last_error") else ""
    if state == "open" and snap.get("open_in"):
        # Several workers, each with its own breaker: open in some of them only means part
        # of the traffic cannot reach the target (see merge_breakers).
        v.raise_to(PARTIAL, f"circuit breaker open in {snap['open_in']}" + last)
    elif state == "open":
        v.raise_to(MAJOR, "circuit breaker open" + last)
    elif state == "half_open":
        v.raise_to(PARTIAL, "circuit breaker half-open, probing" + last)


def judge_target(st: WindowStats, th: Thresholds, snap: dict[str, Any] | None,
                 provider_unavailable: str | None = None) -> Verdict:
    v = Verdict()
    judge_breaker(v, snap, provider_unavailable)
    judge_errors(v, st, th)
    judge_latency(v, st, th)
    return v


def judge_route(st: WindowStats, th: Thresholds) -> Verdict:
    """Client-visible failures only; a route saved by failover is degraded, not down."""
    v = Verdict()
    judge_errors(v, st, th)
    judge_latency(v, st, th)
    ok = st.n - st.failures
    if ok >= th.min_requests and st.fallback_rate >= th.fallback_rate_degraded:
        v.raise_to(DEGRADED, f"{_pct(st.fallback_rate)} of answers came from a fallback")
    return v


def merge_breakers(snaps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One target's breakers in several worker processes, as one snapshot to judge.

    Forced states count only when every worker has them (an admin call reaches one worker);
    a hold-down applies if any worker holds (auth and quota errors are provider-wide); open
    in every worker that decides for itself is open, open in some is ``open_in`` "k of n".
    """
    if not snaps:
        return None
    if len(snaps) == 1:
        return snaps[0]
    for forced in ("down", "up"):
        if all(s.get("forced") == forced for s in snaps):
            return {"state": snaps[0].get("state"), "forced": forced}
    judged = [s for s in snaps if not s.get("forced")]
    opened = [s for s in judged if s.get("state") == "open"]
    half = [s for s in judged if s.get("state") == "half_open"]
    out: dict[str, Any] = {
        "state": "open" if opened else ("half_open" if half else "closed"), "forced": None,
        "hold_reason": next((s["hold_reason"] for s in snaps if s.get("hold_reason")), None),
        "last_error": next((s["last_error"] for s in opened + half if s.get("last_error")), None),
    }
    if opened and len(opened) < len(judged):
        out["open_in"] = f"{len(opened)} of {len(judged)} workers"
    return out


def tree_status(catalog: Catalog, key: str, leaf: Callable[[str], str]) -> str:
    """A component's status: its own for a leaf, its children's combined for a group."""
    c = catalog.components.get(key)
    if c is None:
        return OPERATIONAL
    if c.is_group:
        return group_status(tree_status(catalog, ch.key, leaf) for ch in catalog.children(key))
    return leaf(key)


def tree_since(catalog: Catalog, key: str, leaf: Callable[[str], float | None]) -> float:
    """Since when a component has had its status (a group: its latest child change)."""
    c = catalog.components.get(key)
    if c is not None and c.is_group:
        return max((tree_since(catalog, ch.key, leaf) for ch in catalog.children(key)),
                   default=catalog.created_at)
    found = leaf(key)
    return found if found is not None else catalog.created_at


def group_status(children: Iterable[str]) -> str:
    """A provider is down only if all its targets are; one bad model is a partial outage."""
    statuses = list(children)
    judged = [s for s in statuses if s != MAINTENANCE]
    if not judged:
        return MAINTENANCE if statuses else OPERATIONAL
    worst = max(severity(s) for s in judged)
    if worst == 3 and any(severity(s) < 3 for s in judged):
        worst = 2
    return BY_SEVERITY[worst]


def page_indicator(statuses: Iterable[str], incident_impacts: Iterable[str] = ()) -> str:
    sev = max((severity(s) for s in statuses), default=0)
    rank = {"none": 0, "minor": 1, "major": 2, "critical": 3}
    sev = max([sev, *(rank.get(i, 0) for i in incident_impacts)])
    return INDICATOR[sev]
