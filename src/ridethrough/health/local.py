"""Health in one process: it judges what it saw, runs the incidents, and reads its own state.

The default (``serve`` without ``--workers``). Its counterpart for several workers is
``shared.SharedHealth``; ``service.HealthService`` runs either through the same steps
(``Coordination``), so neither the service nor the web layer asks which one it has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ridethrough.health.incident_model import Incident
from ridethrough.health.view import HealthView, StoreLine, UpstreamLine, probe_lines, webhook_stats

if TYPE_CHECKING:
    from ridethrough.health.service import HealthService


class LocalHealth:
    def __init__(self, svc: HealthService) -> None:
        self.svc = svc

    # -- the service's steps ---------------------------------------------------------------

    def breaker_of(self, target: str) -> dict[str, Any] | None:
        return self.svc.board.get(target).snapshot()  # type: ignore[no-any-return]

    def loaded(self, incidents: list[dict[str, Any]], now: float) -> None:
        self.svc.engine.load([Incident.from_dict(d) for d in incidents], now)

    def started(self) -> None:
        self.svc.start_leader_tasks()   # nobody else to share probes and polls with

    async def cycle_async(self) -> None:
        # Folding is what scales with traffic, so only it is sliced; judging and the incident
        # engine's counts stay one step (cancelling them midway would lose counts; measured,
        # slicing them gained nothing).
        self.svc.monitor.tick(await self.svc.drain_in_slices())

    def tick(self, records: list[tuple[float, Any]]) -> None:
        self.svc.monitor.tick(records)

    async def close(self) -> None:
        self.svc.tick()

    def incidents_to_write(self) -> list[dict[str, Any]]:
        engine = self.svc.engine
        ids, engine.dirty = engine.dirty, set()
        return [inc.to_dict() for i in ids if (inc := engine.find(i)) is not None]

    async def share_override(self, target: str, mode: str | None) -> dict[str, str]:
        return {}   # the breaker board of this process is the only one

    # -- reading ---------------------------------------------------------------------------

    def view(self) -> HealthView:
        svc = self.svc
        mon, h = svc.monitor, svc.store_health
        return HealthView(
            svc.catalog, svc.clock(),
            statuses={k: st.status for k, st in mon.states.items()},
            since={k: st.since for k, st in mon.states.items()},
            reasons={k: list(st.reasons) for k, st in mon.states.items()},
            windows={k: st.stats.as_dict() for k, st in mon.states.items()},
            incidents=svc.engine.all(),
            upstream={p: UpstreamLine.of(v) for p, v in svc.poller.views.items()},
            probes=probe_lines(svc.prober.last.values()),
            store=StoreLine(h.ok, h.error, h.since, h.last_write, svc.store.path, list(h.notes)),
            webhooks=webhook_stats(svc.notifier.stats), records_dropped=mon.dropped,
            totals=mon.totals,
            breakers=[(t, {}, svc.board.get(t).snapshot()) for t in svc.catalog.targets()],
            latency=[({}, svc.latency_view())],
            stores_up=[({}, h.ok)])

    async def view_async(self) -> HealthView:
        self.svc.tick()   # current to the request: fold what is queued first
        return self.view()

    # -- operators -------------------------------------------------------------------------

    async def find_incident(self, incident_id: str) -> Incident | None:
        return self.svc.engine.find(incident_id)

    async def add_note(self, inc: Incident, body: str, status: str | None) -> Incident:
        self.svc.engine.add_note(inc, body, status, self.svc.clock())
        await self.svc.flush_async()
        return inc

    async def set_postmortem(self, inc: Incident, body: str) -> Incident:
        self.svc.engine.set_postmortem(inc, body, self.svc.clock())
        await self.svc.flush_async()
        return inc
