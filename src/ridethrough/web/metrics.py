"""Prometheus text exposition at /metrics, written by hand (no client library needed).

Counters are cumulative since start, kept by the health monitor as it drains records, so a
scrape costs a walk over a few dicts and never touches the request path. Label values are
bounded: skip reasons lose their free text (see health.samples.outcome_label).

With several workers (``serve --workers N``) every worker answers with the same text:
counters and histograms are the sum over all worker processes of the run (dead and
replaced ones included, so a sum never goes backwards and dashboards written for one
process keep working), component status and open incidents are the leader's, and what is
truly per process — breaker state, store health — carries a ``worker`` label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ridethrough.health.status import SEVERITY
from ridethrough.store.stats import LATENCY_BOUNDS_MS

if TYPE_CHECKING:
    from ridethrough.health.reader import HealthReader
    from ridethrough.health.view import HealthView

BREAKER_STATE = {"closed": 0, "half_open": 1, "open": 2}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in kv.items()) + "}"


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str) -> None:
        self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, **labels: str) -> None:
        lbl = _labels(**labels) if labels else ""
        self.lines.append(f"{name}{lbl} {value}")


def _histogram(o: _Out, name: str, hists: dict[str, list[int]], sums: dict[str, float],
               label: str) -> None:
    for key, hist in sorted(hists.items()):
        running = 0
        for bound, count in zip(LATENCY_BOUNDS_MS, hist, strict=False):
            running += count
            o.sample(f"{name}_bucket", running, **{label: key, "le": f"{bound / 1000:g}"})
        running += hist[-1]
        o.sample(f"{name}_bucket", running, **{label: key, "le": "+Inf"})
        o.sample(f"{name}_sum", round(sums.get(key, 0.0) / 1000, 6), **{label: key})
        o.sample(f"{name}_count", running, **{label: key})


def _cache(o: _Out, stats: Mapping[str, Any]) -> None:
    """This process's response cache (``ResponseCache.stats()``): per process, like breakers."""
    o.family("ridethrough_cache_lookups_total", "counter",
             "Exact cache lookups by result (per process).")
    for result, key in (("hit", "hits"), ("stale_hit", "stale_hits"), ("miss", "misses")):
        o.sample("ridethrough_cache_lookups_total", stats.get(key, 0), result=result)
    o.family("ridethrough_semantic_lookups_total", "counter",
             "Semantic cache lookups by result (per process).")
    for result, key in (("hit", "semantic_hits"), ("miss", "semantic_misses")):
        o.sample("ridethrough_semantic_lookups_total", stats.get(key, 0), result=result)
    o.family("ridethrough_semantic_rejections_total", "counter",
             "Semantic candidates above the threshold vetoed, by guard (per process).")
    for guard, n in sorted((stats.get("semantic_rejections") or {}).items()):
        o.sample("ridethrough_semantic_rejections_total", n, guard=guard)
    o.family("ridethrough_semantic_embeddings_total", "counter",
             "Stored questions embedded in the background, or dropped because its queue was "
             "full (per process).")
    o.sample("ridethrough_semantic_embeddings_total", stats.get("semantic_embedded", 0),
             result="embedded")
    o.sample("ridethrough_semantic_embeddings_total", stats.get("semantic_embed_dropped", 0),
             result="dropped")
    o.family("ridethrough_semantic_embed_queued", "gauge",
             "Stored questions waiting to be embedded (per process).")
    o.sample("ridethrough_semantic_embed_queued", stats.get("semantic_embed_queued", 0))
    o.family("ridethrough_semantic_available", "gauge",
             "1 if the semantic cache's embedder works (per process).")
    o.sample("ridethrough_semantic_available", int(bool(stats.get("semantic_available"))))


def render(svc: HealthReader, view: HealthView | None = None, *,
           cache: Mapping[str, Any] | None = None) -> str:
    """The exposition; ``cache`` is this process's ``ResponseCache.stats()``, if it has one."""
    view = view if view is not None else svc.view()
    t, o = view.totals, _Out()
    o.family("ridethrough_requests_total", "counter", "Requests by route, outcome and answer tier.")
    for (route, outcome, tier), n in sorted(t.requests.items()):
        o.sample("ridethrough_requests_total", n, route=route, outcome=outcome, tier=tier)
    o.family("ridethrough_attempts_total", "counter", "Upstream attempts (and skips) by target.")
    for (target, outcome), n in sorted(t.attempts.items()):
        o.sample("ridethrough_attempts_total", n, target=target, outcome=outcome)
    o.family("ridethrough_probes_total", "counter", "Active probes by target and outcome.")
    for (target, outcome), n in sorted(t.probes.items()):
        o.sample("ridethrough_probes_total", n, target=target, outcome=outcome)
    o.family("ridethrough_request_duration_seconds", "histogram",
             "Time to a successful answer, by route.")
    _histogram(o, "ridethrough_request_duration_seconds", t.latency, t.latency_sum, "route")
    o.family("ridethrough_time_to_first_token_seconds", "histogram",
             "Time to the first streamed token, by route.")
    _histogram(o, "ridethrough_time_to_first_token_seconds", t.ttft, t.ttft_sum, "route")
    o.family("ridethrough_breaker_state", "gauge", "Circuit breaker: 0 closed, 1 half-open, 2 open.")
    o.family("ridethrough_breaker_opened_total", "counter", "Times each breaker opened.")
    for target, labels, snap in view.breakers:
        o.sample("ridethrough_breaker_state", BREAKER_STATE.get(snap["state"], 0),
                 target=target, **labels)
        o.sample("ridethrough_breaker_opened_total", snap["opened_count"], target=target, **labels)
    o.family("ridethrough_target_latency_seconds", "gauge",
             "Learned latency per target and phase (per process; rolling 10 min).")
    o.family("ridethrough_attempt_timeout_seconds", "gauge",
             "The per-attempt timeout now applied per target and phase (per process).")
    o.family("ridethrough_hedges_total", "counter",
             "Backup requests: started, won (the backup answered first), refused by the budget.")
    o.family("ridethrough_stream_events_total", "counter",
             "After the commit point: continued (spliced from another target), "
             "continuation_failed, prefill_refused, malformed_frames (dropped), "
             "ended_without_terminator (complete by meaning).")
    entries = list(view.latency)
    if view.latency_all is not None:
        entries.append(({"worker": "all"}, view.latency_all))
    for labels, lv in entries:
        for row in lv["targets"]:
            for q, key in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms")):
                if row.get(key) is not None:
                    o.sample("ridethrough_target_latency_seconds", round(row[key] / 1000, 6),
                             target=row["target"], phase=row["phase"], quantile=q, **labels)
            if "timeout_s" in row:
                o.sample("ridethrough_attempt_timeout_seconds", row["timeout_s"],
                         target=row["target"], phase=row["phase"], **labels)
        if labels.get("worker") != "all":
            for result, n in sorted(lv["hedges"].items()):
                o.sample("ridethrough_hedges_total", n, result=result, **labels)
            for event, n in sorted((lv.get("streams") or {}).items()):
                o.sample("ridethrough_stream_events_total", n, event=event, **labels)
    o.family("ridethrough_component_status", "gauge",
             "0 operational/maintenance, 1 degraded, 2 partial outage, 3 major outage.")
    for c in view.catalog.components.values():
        if c.kind != "group":
            o.sample("ridethrough_component_status", SEVERITY.get(view.status_of(c.key), 0),
                     component=c.name, kind=c.kind)
    o.family("ridethrough_incidents_open", "gauge", "Unresolved incidents.")
    o.sample("ridethrough_incidents_open", sum(1 for i in view.incidents if i.unresolved))
    o.family("ridethrough_health_store_up", "gauge", "1 if the history store accepts writes.")
    for labels, up in view.stores_up:
        o.sample("ridethrough_health_store_up", int(up), **labels)
    o.family("ridethrough_health_records_dropped_total", "counter",
             "Request records dropped because the health queue was full.")
    o.sample("ridethrough_health_records_dropped_total", view.records_dropped)
    st = view.webhooks
    o.family("ridethrough_webhook_deliveries_total", "counter", "Webhook deliveries by result.")
    for result, key in (("delivered", "delivered"), ("failed", "failed"),
                        ("retried", "retries"), ("dropped", "dropped")):
        o.sample("ridethrough_webhook_deliveries_total", st.get(key, 0), result=result)
    if view.upstream:
        o.family("ridethrough_provider_status_page_up", "gauge",
                 "1 if the provider's own status page was reachable at the last check.")
        o.family("ridethrough_provider_status_page_problem", "gauge",
                 "1 if the provider's own status page reports a problem.")
        for p, line in sorted(view.upstream.items()):
            o.sample("ridethrough_provider_status_page_up", int(line.ok), provider=p)
            o.sample("ridethrough_provider_status_page_problem", int(line.bad), provider=p)
    if view.workers is not None:
        o.family("ridethrough_workers", "gauge", "Worker processes serving this gateway now.")
        o.sample("ridethrough_workers", sum(1 for w in view.workers if w["live"]))
    if cache is not None:
        _cache(o, cache)
    return "\n".join(o.lines) + "\n"
