"""What one request says about each component it touched: the judging rules, in one place.

A route is judged by what its client saw (``record.outcome``); a target by its own
attempts. Some outcomes say nothing about a component's health and are counted but not
judged: the client's own bad request, a target skipped because it cannot carry the request,
one an operator drained, our own concurrency cap. A target skipped because its breaker is
open or it is held down *is* judged as a failure — it could not serve the request — which
is also what keeps an open breaker's target red while it receives no traffic at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from ridethrough.errors import ErrorClass
from ridethrough.records import RequestRecord

# Error classes that are not the target's fault: counted, never judged.
NEUTRAL_CLASSES = frozenset({
    ErrorClass.CLIENT.value, ErrorClass.TOO_LARGE.value, ErrorClass.TRANSLATION.value,
    ErrorClass.LOCAL_SATURATION.value, ErrorClass.UNAVAILABLE.value,
})
# Outcomes that are neither a success nor a failure: a hedged attempt cancelled because another
# target answered first was late, not failed (its breaker counts it as a slow call; a freezing
# target turns red through its breaker opening within a handful of them). Malformed frames
# dropped from an answer that was still delivered, and a refused or ill-fitting continuation,
# are shown in the target's breakdown without counting as its failure.
NEUTRAL_OUTCOMES = frozenset({"hedge_lost", "malformed_frames", "prefill_refused",
                              "continuation_mismatch"})
# Skip reasons that are a decision, not a failure of the target.
NEUTRAL_SKIPS = ("drained", "deadline", "unavailable", "capability", "untranslatable")
ROUTE_FAILURES = frozenset({"error", "stream_error"})
ROUTE_OK = "ok"


@dataclass(slots=True)
class Sample:
    component: str              # catalog key: "route:<name>" or "target:<provider/model>"
    outcome: str                # label for the error-class breakdown
    judged: bool                # counts towards error rate and uptime
    failed: bool = False
    ms: float | None = None     # latency of a success
    ttft_ms: float | None = None
    fallback: bool = False
    saved: bool = False
    probe: bool = False


def attempt_verdict(outcome: str) -> tuple[bool, bool]:
    """(judged, failed) for one attempt outcome ("ok", an error class, "skipped:<reason>")."""
    if outcome == "ok":
        return True, False
    if outcome.startswith("skipped:"):
        reason = outcome.removeprefix("skipped:")
        if reason.split(":", 1)[0] in NEUTRAL_SKIPS:
            return False, False
        return True, True        # breaker open / half-open / held down
    base = outcome.removesuffix("_after_commit")
    if base in NEUTRAL_CLASSES or base in NEUTRAL_OUTCOMES:
        return False, False
    return True, True


def outcome_label(outcome: str) -> str:
    """Bounded label set: skip reasons lose their free text ("unavailable:KEY not set")."""
    if outcome.startswith("skipped:"):
        return "skipped:" + outcome.removeprefix("skipped:").split(":", 1)[0].split("(", 1)[0]
    return outcome


def had_failed_attempt(record: RequestRecord) -> bool:
    return any(attempt_verdict(a.outcome) == (True, True) for a in record.attempts)


def is_fallback(record: RequestRecord, first_target: str | None) -> bool:
    """Answered, but not the way the route meant to: another target, or a cache/static tier
    because the live targets failed. A cache hit served first (cache mode ``always``) is
    the route working as configured, not a fallback."""
    if record.outcome != ROUTE_OK:
        return False
    if record.tier in ("stale", "static"):
        return True
    if record.tier != "live":
        return had_failed_attempt(record)
    return record.served_by is not None and first_target is not None \
        and record.served_by != first_target


def samples_of(record: RequestRecord, first_target: str | None) -> list[Sample]:
    """One sample for the route, one per attempt for the targets."""
    out: list[Sample] = []
    saved = record.outcome == ROUTE_OK and had_failed_attempt(record)
    if record.route:
        judged = record.outcome == ROUTE_OK or record.outcome in ROUTE_FAILURES
        ok = record.outcome == ROUTE_OK
        out.append(Sample(
            f"route:{record.route}", record.outcome, judged, judged and not ok,
            ms=record.ms if ok else None, ttft_ms=record.ttft_ms if ok else None,
            fallback=is_fallback(record, first_target), saved=saved))
    spent = 0.0
    for a in record.attempts:
        judged, failed = attempt_verdict(a.outcome)
        ok = a.outcome == "ok"
        ttft = None
        if ok and record.ttft_ms is not None and a.target == record.served_by:
            ttft = max(0.0, record.ttft_ms - spent)  # minus the time spent on earlier attempts
        out.append(Sample(f"target:{a.target}", outcome_label(a.outcome), judged, failed,
                          ms=a.ms if ok else None, ttft_ms=ttft))
        spent += a.ms
    return out


def probe_sample(target: str, outcome: str, ms: float) -> Sample:
    judged, failed = attempt_verdict(outcome)
    return Sample(f"target:{target}", outcome_label(outcome), judged, failed,
                  ms=ms if outcome == "ok" else None, probe=True)
