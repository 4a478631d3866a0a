"""What the public endpoints show, as one plain value: the read model of health.

The status page, the Statuspage JSON, feeds, badges and /metrics all render a
``HealthView``. A single process builds it from its own monitor and engine (``local_view``
in the service); a worker among several builds it from what the leader published in the
store (``shared_view``), so whichever worker answers, a person or a tool reads the same
thing. Rendering code never asks which of the two it got.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ridethrough.health.catalog import Catalog
from ridethrough.health.incident_model import Incident
from ridethrough.health.monitor import Totals
from ridethrough.health.status import tree_since, tree_status
from ridethrough.health.upstream import UpstreamView
from ridethrough.routing.latency import merge_exports
from ridethrough.store import SharedRead

Labels = dict[str, str]


@dataclass(slots=True)
class UpstreamLine:
    """A provider's own status page, as last checked (by this process or the leader)."""

    provider: str
    url: str
    checked_at: float
    ok: bool
    error: str | None = None
    bad: bool = False
    text: str = ""
    missing: list[str] = field(default_factory=list)
    indicator: str | None = None
    description: str | None = None
    incidents: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, v: UpstreamView) -> UpstreamLine:
        s = v.summary
        return cls(v.provider, v.url, v.checked_at, v.ok, v.error, v.bad, v.text, list(v.missing),
                   s.indicator if s else None, s.description if s else None,
                   [i.name for i in s.incidents] if s else [])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> UpstreamLine:
        return cls(**{k: d[k] for k in cls.__slots__ if k in d})  # type: ignore[attr-defined]


@dataclass(slots=True)
class StoreLine:
    ok: bool = True
    error: str | None = None
    since: float | None = None
    last_write: float | None = None
    path: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class HealthView:
    catalog: Catalog
    now: float
    statuses: dict[str, str]                      # leaf key → status
    since: dict[str, float]
    reasons: dict[str, list[str]]
    windows: dict[str, dict[str, Any]]            # leaf key → WindowStats.as_dict()
    incidents: list[Incident]                     # newest first
    upstream: dict[str, UpstreamLine] = field(default_factory=dict)
    probes: list[dict[str, Any]] = field(default_factory=list)
    store: StoreLine = field(default_factory=StoreLine)
    webhooks: dict[str, Any] = field(default_factory=dict)
    records_dropped: int = 0
    totals: Totals = field(default_factory=Totals)
    breakers: list[tuple[str, Labels, dict[str, Any]]] = field(default_factory=list)
    # Per process: learned latency, applied timeouts and hedges (Gateway.latency_view).
    latency: list[tuple[Labels, dict[str, Any]]] = field(default_factory=list)
    # Several workers: their sketches merged exactly into one view (labelled worker="all").
    latency_all: dict[str, Any] | None = None
    stores_up: list[tuple[Labels, bool]] = field(default_factory=list)
    workers: list[dict[str, Any]] | None = None   # several workers only
    leader: dict[str, Any] | None = None

    def status_of(self, key: str) -> str:
        return tree_status(self.catalog, key, lambda k: self.statuses.get(k, "operational"))

    def since_of(self, key: str) -> float:
        return tree_since(self.catalog, key, self.since.get)

    @property
    def updated_at(self) -> float:
        return max([self.catalog.created_at, *self.since.values(),
                    *(i.updated_at for i in self.incidents)])


def merge_latency(views: list[dict[str, Any]]) -> dict[str, Any]:
    """Several workers' learned latency as one: sketches merged, hedges summed."""
    hedges: dict[str, int] = {}
    for lv in views:
        for k, n in lv.get("hedges", {}).items():
            hedges[k] = hedges.get(k, 0) + int(n)
    min_samples = int(views[0].get("min_samples", 20)) if views else 20
    rows = merge_exports([lv.get("sketches", {}) for lv in views], min_samples)
    return {"targets": rows, "hedges": hedges}


def probe_lines(results: Iterable[Any]) -> list[dict[str, Any]]:
    """The prober's last result per target, as health.json shows them."""
    return [{"target": r.target, "outcome": r.outcome, "ms": round(r.ms, 1), "detail": r.detail}
            for r in results]


def webhook_stats(stats: Any) -> dict[str, Any]:
    return {"delivered": stats.delivered, "failed": stats.failed, "retries": stats.retries,
            "dropped": stats.dropped, "last_error": stats.last_error}


def is_live(row: dict[str, Any], now: float, stale_after_s: float) -> bool:
    return not row.get("stopped") and now - float(row.get("seen_at", 0.0)) <= stale_after_s


def shared_view(catalog: Catalog, read: SharedRead, now: float, *, store_path: str,
                stale_after_s: float) -> HealthView:
    """The gateway as the leader last published it, plus every worker's own numbers.

    Counters are summed over every worker process of this run — ones that died or were
    replaced too, so a sum never goes backwards. Per-process gauges (breakers, store) come
    from the live workers only, labelled ``worker``.
    """
    snap = read.snapshot or {}
    comps: dict[str, dict[str, Any]] = snap.get("components", {})
    leaves = [c.key for c in catalog.leaves()]
    incidents = sorted((Incident.from_dict(d) for d in read.incidents), key=lambda i: -i.created_at)
    view = HealthView(
        catalog, now,
        statuses={k: comps[k]["status"] for k in leaves if k in comps},
        since={k: float(comps[k]["since"]) for k in leaves if k in comps},
        reasons={k: list(comps[k].get("reasons", [])) for k in leaves if k in comps},
        windows={k: comps[k]["window"] for k in leaves if k in comps and comps[k].get("window")},
        incidents=incidents,
        upstream={p: UpstreamLine.from_json(d) for p, d in snap.get("upstream", {}).items()},
        probes=list(snap.get("probes", [])),
        leader=({**snap["leader"], "published_at": snap.get("generated_at")}
                if snap.get("leader") else None),
    )
    totals = Totals()
    hook_counts = {"delivered": 0, "failed": 0, "retries": 0, "dropped": 0}
    hook_error: Any = None
    live = [r for r in read.workers if is_live(r, now, stale_after_s)]
    for row in read.workers:
        totals.merge(Totals.from_json(row.get("totals", {})))
        view.records_dropped += int(row.get("dropped", 0))
        for k in hook_counts:
            hook_counts[k] += int(row.get("webhooks", {}).get(k, 0))
        hook_error = row.get("webhooks", {}).get("last_error") or hook_error
    view.totals, view.webhooks = totals, {**hook_counts, "last_error": hook_error}
    for row in live:
        labels = {"worker": str(row["slot"])}
        for target in catalog.targets():
            snapshot = row.get("breakers", {}).get(target)
            if snapshot is not None:
                view.breakers.append((target, labels, snapshot))
        view.stores_up.append((labels, bool(row.get("store", {}).get("ok", True))))
        if row.get("latency"):
            view.latency.append((labels, row["latency"]))
    if view.latency:
        view.latency_all = merge_latency([lv for _, lv in view.latency])
    stores = [r.get("store", {}) for r in live]
    failing = [s for s in stores if not s.get("ok", True)]
    view.store = StoreLine(
        ok=not failing,
        error=failing[0].get("error") if failing else None,
        since=min((s["since"] for s in failing if s.get("since") is not None), default=None),
        last_write=max((s["last_write"] for s in stores if s.get("last_write") is not None),
                       default=None),
        path=store_path,
        notes=sorted({n for s in stores for n in s.get("notes", [])}))
    leader_instance = (snap.get("leader") or {}).get("instance")
    view.workers = [{"worker": r["slot"], "pid": r["pid"], "live": is_live(r, now, stale_after_s),
                     "leader": r["instance"] == leader_instance,
                     "draining": bool(r.get("draining")),
                     "store_ok": r.get("store", {}).get("ok", True)}
                    for r in read.workers]
    return view
