"""The health service: wires monitor, incidents, store, probes, status pages and webhooks
onto one gateway, and runs their background loops.

It is the only object here that knows about the ``Gateway``; everything it wires is
testable alone. Its ``tick`` and ``flush`` are plain methods so tests drive time with an
injected clock instead of waiting for the loops.

With ``shared`` (one of several ``serve --workers`` processes) the judging, the incidents
and the leader-only loops move to ``health.shared.SharedHealth``, and every public view is
read from the store; without it, everything below is the single-process path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ridethrough.health.catalog import Catalog, Component
from ridethrough.health.config import HealthConfig, cross_check_health, health_config_of
from ridethrough.health.incident_model import Incident
from ridethrough.health.incidents import IncidentEngine, IncidentEvent
from ridethrough.health.leader import lock_path_for
from ridethrough.health.monitor import HealthMonitor
from ridethrough.health.probes import Prober
from ridethrough.health.shared import SharedHealth, SharedIdentity
from ridethrough.health.stats import Bucket
from ridethrough.health.status import merge_breakers
from ridethrough.health.tasks import cancel_and_wait
from ridethrough.health.upstream import UpstreamPoller, UpstreamView
from ridethrough.health.view import (
    HealthView,
    StoreLine,
    UpstreamLine,
    probe_lines,
    webhook_stats,
)
from ridethrough.store import SqliteStore, StoreUnavailable
from ridethrough.web import v2
from ridethrough.web.webhooks import (
    Notifier,
    slack_component,
    slack_incident,
    statuspage_component,
    statuspage_incident,
)

log = logging.getLogger("ridethrough.health")
PRUNE_EVERY_S = 3600.0
DRAIN_SLICE = 256   # records folded between two chances for requests to run


@dataclass(slots=True)
class _Batch:
    now: float
    buckets: dict[tuple[str, int], Bucket]
    incidents: list[dict[str, Any]]
    rollup: set[int]
    prune: bool


@dataclass(slots=True)
class _Result:
    buckets_written: bool = False
    rolled_up: bool = False
    incidents_written: bool = False
    error: str | None = None


@dataclass(slots=True)
class StoreHealth:
    ok: bool = True
    error: str | None = None
    since: float | None = None
    last_write: float | None = None
    notes: list[str] = field(default_factory=list)


class HealthService:
    def __init__(self, gw: Any, *, store_path: str | None, clock: Callable[[], float] = time.time,
                 config: HealthConfig | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 shared: SharedIdentity | None = None) -> None:
        if shared is not None and store_path is None:
            raise ValueError("several workers share health through a store file; got none")
        self.gw = gw
        self.cfg = config or health_config_of(gw.cfg)
        self.clock = clock
        self.sleep = sleep
        for problem in cross_check_health(gw.cfg, self.cfg):
            log.error("config: %s (ignored)", problem)
        # Every worker of a run must name the same creation date, or their JSON differs.
        self.catalog = Catalog.from_gateway(gw, shared.started_at if shared else clock())
        self.engine = IncidentEngine(self.catalog, self.cfg.incidents)
        self.monitor = HealthMonitor(self.catalog, self.cfg, clock, self.engine,
                                     breaker_of=self._breaker, unavailable_of=self._unavailable)
        # Workers wait on each other's short write transactions, in a thread, never a request.
        self.store = SqliteStore(store_path, busy_timeout_s=5.0 if shared else 0.5)
        self.store_health = StoreHealth()
        # Signature timestamps are for the receiver's freshness check: always wall time.
        self.notifier = Notifier(self.cfg.webhooks, time.time, sleep=sleep)
        targets = {t.key: t for ts in gw.routes.values() for t in ts}
        targets.update({t.key: t for t in gw.last_resorts.values()})
        self.prober = Prober(targets, self.cfg.probes, gw.board, gw.clock, self.monitor.observe_probe)
        self.poller = UpstreamPoller(self.cfg.status_pages, clock, self._on_upstream)
        self.page_id = v2.page_id_for(self.cfg.page_name)
        self.engine.listeners.append(self._on_incident)
        self.monitor.listeners.append(self._on_component)
        self._tasks: list[asyncio.Task[None]] = []
        self._unrolled: set[int] = set()
        self._last_prune = 0.0
        self._flushing = False
        self._drained: list[tuple[float, Any]] = []  # folded, not yet handed on (drain_in_slices)
        self._leader_tasks: list[asyncio.Task[None]] = []
        self.shared: SharedHealth | None = None
        if shared is not None:
            assert store_path is not None
            self.shared = SharedHealth(self, shared, lock_path=lock_path_for(store_path))

    # -- wiring ----------------------------------------------------------------------------

    def attach(self) -> HealthService:
        self.gw.observers.append(self.monitor.observe)
        self.gw.on_start.append(self.start)
        self.gw.on_close.append(self.close)
        self.gw.health = self
        return self

    def routes(self) -> list[Any]:
        from ridethrough.web.routes import build_routes

        return build_routes(self)

    def _breaker(self, target: str) -> dict[str, Any] | None:
        if self.shared is not None:  # the leader judges every worker's breaker
            return merge_breakers(self.shared.breakers.get(target, []))
        return self.gw.board.get(target).snapshot()  # type: ignore[no-any-return]

    def _unavailable(self, provider: str) -> str | None:
        p = self.gw.providers.get(provider)
        return p.unavailable_reason if p is not None else None

    def base_url(self) -> str:
        if self.cfg.page_url:
            return self.cfg.page_url.rstrip("/")
        server = self.gw.cfg.server
        return f"http://{server.host}:{server.port}"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        loaded = await asyncio.to_thread(self._read_store)   # file I/O off the loop
        self._apply_store(loaded)
        self._tasks.append(asyncio.ensure_future(self._loop()))
        if self.shared is None:  # with several workers: once this one becomes the leader
            self.start_leader_tasks()
        self.notifier.start()

    def start_leader_tasks(self) -> None:
        """Probes and provider status-page polls: one process of a gateway runs them."""
        if self._leader_tasks:
            return
        if self.prober.targets:
            self._leader_tasks.append(asyncio.ensure_future(self.prober.run(self.sleep)))
        if self.cfg.status_pages.enabled and self.cfg.status_pages.pages:
            self._leader_tasks.append(asyncio.ensure_future(self.poller.run(self.sleep)))
        self._tasks += self._leader_tasks

    def stop_leader_tasks(self) -> None:
        for t in self._leader_tasks:
            t.cancel()
        self._leader_tasks = []

    def open_store(self) -> None:
        """Open, catch up roll-ups a crash may have skipped, and reload incidents."""
        self._apply_store(self._read_store())

    def _read_store(self) -> list[dict[str, Any]] | str:
        """Touches only the store (safe in a worker thread): incidents, or the error."""
        now = self.clock()
        try:
            self.store.open()
            self.store.rollup([now - 3600, now])
            recent = self.store.load_incidents(50)
            ids = {d["id"] for d in recent}
            return recent + [d for d in self.store.load_incidents(50, True) if d["id"] not in ids]
        except StoreUnavailable as e:
            return str(e)

    def _apply_store(self, loaded: list[dict[str, Any]] | str) -> None:
        now = self.clock()
        if isinstance(loaded, str):
            self._store_failed(loaded, now)
            return
        if self.shared is None:  # with several workers, the leader loads them when it leads
            self.engine.load([Incident.from_dict(d) for d in loaded], now)
        self._store_ok(now)

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks, self._leader_tasks = [], []
        try:
            if self.shared is not None:
                await self.shared.close()
            else:
                self.tick()
            await self.flush_async()
        except Exception:
            log.exception("final health flush failed")
        await self.notifier.close()
        await self.poller.close()
        self.store.close()

    async def _loop(self) -> None:
        last_flush = time.monotonic()
        while True:
            await asyncio.sleep(self.cfg.tick_s)
            try:
                if self.shared is not None:
                    await self.shared.cycle_async()
                else:
                    # Folding is what scales with traffic, so only it is sliced; judging and
                    # the incident engine's counts stay one step (cancelling them midway
                    # would lose counts; measured, slicing them gained nothing).
                    self.monitor.tick(await self.drain_in_slices())
                if time.monotonic() - last_flush >= self.cfg.flush_interval_s:
                    last_flush = time.monotonic()
                    await self.flush_async()
            except Exception:  # the loop must outlive any one bad tick
                log.exception("health tick failed")

    # -- time steps ------------------------------------------------------------------------

    async def drain_in_slices(self) -> list[tuple[float, Any]]:
        """Fold the records queued so far a slice at a time, letting requests through in
        between: a second of traffic folded at once held the event loop for tens of
        milliseconds, the worst latency of the requests that arrived meanwhile.

        Folded records wait in ``_drained`` until returned, so a tick cancelled between
        slices (shutdown) leaves them for the next tick instead of losing them."""
        left = self.monitor.queued   # not what arrives meanwhile: that is the next tick's
        while left > 0:
            n = min(left, DRAIN_SLICE)
            self._drained += self.monitor.drain(n)
            left = min(left - n, self.monitor.queued)  # a status-page tick may have drained some
            if left > 0:
                await asyncio.sleep(0)
        return self._take_drained()

    def _take_drained(self) -> list[tuple[float, Any]]:
        taken, self._drained = self._drained, []
        return taken

    def tick(self) -> None:
        if self.shared is not None:
            self.shared.drain(self._take_drained())   # judging is the leader's, on its own cycle
        else:
            self.monitor.tick(self._take_drained())

    # -- reading ---------------------------------------------------------------------------

    def view(self) -> HealthView:
        """What the public endpoints show now (blocking with several workers: a store read)."""
        if self.shared is not None:
            return self.shared.read_view()
        return self.local_view()

    async def view_async(self) -> HealthView:
        if self.shared is not None:
            return await asyncio.to_thread(self.shared.read_view)
        self.tick()
        return self.local_view()

    def local_view(self) -> HealthView:
        mon, h = self.monitor, self.store_health
        return HealthView(
            self.catalog, self.clock(),
            statuses={k: st.status for k, st in mon.states.items()},
            since={k: st.since for k, st in mon.states.items()},
            reasons={k: list(st.reasons) for k, st in mon.states.items()},
            windows={k: st.stats.as_dict() for k, st in mon.states.items()},
            incidents=self.engine.all(),
            upstream={p: UpstreamLine.of(v) for p, v in self.poller.views.items()},
            probes=probe_lines(self.prober.last.values()),
            store=StoreLine(h.ok, h.error, h.since, h.last_write, self.store.path, list(h.notes)),
            webhooks=webhook_stats(self.notifier.stats), records_dropped=mon.dropped,
            totals=mon.totals,
            breakers=[(t, {}, self.gw.board.get(t).snapshot()) for t in self.catalog.targets()],
            latency=[({}, self.gw.latency_view())],
            stores_up=[({}, h.ok)])

    # -- operators -------------------------------------------------------------------------

    async def find_incident(self, incident_id: str) -> Incident | None:
        if self.shared is not None:
            return await self.shared.find_incident(incident_id)
        return self.engine.find(incident_id)

    async def add_note(self, inc: Incident, body: str, status: str | None) -> Incident:
        if self.shared is not None:
            return await self.shared.add_note(inc.id, body, status)
        self.engine.add_note(inc, body, status, self.clock())
        await self.flush_async()
        return inc

    async def set_postmortem(self, inc: Incident, body: str) -> Incident:
        if self.shared is not None:
            return await self.shared.set_postmortem(inc.id, body)
        self.engine.set_postmortem(inc, body, self.clock())
        await self.flush_async()
        return inc

    def flush(self) -> bool:
        batch = self._prepare()
        return self._finish(batch, self._write(batch))

    async def flush_async(self) -> bool:
        if self._flushing:
            return False
        self._flushing = True
        try:
            batch = self._prepare()
            return self._finish(batch, await asyncio.to_thread(self._write, batch))
        finally:
            self._flushing = False

    def _prepare(self) -> _Batch:
        now = self.clock()
        buckets = self.monitor.take_pending()
        ids: set[str] = set()
        if self.shared is None:  # with several workers the leader publishes incidents itself
            ids, self.engine.dirty = self.engine.dirty, set()
        incidents = [inc.to_dict() for i in ids if (inc := self.engine.find(i)) is not None]
        rollup = {start for _, start in buckets} | self._unrolled
        prune = now - self._last_prune >= PRUNE_EVERY_S
        return _Batch(now, buckets, incidents, rollup, prune)

    def _write(self, b: _Batch) -> _Result:
        """Runs in a worker thread: touches nothing but the store."""
        r = _Result()
        try:
            self.store.add_buckets("minute", b.buckets)
            r.buckets_written = True
            self.store.rollup(b.rollup)
            r.rolled_up = True
            self.store.save_incidents(b.incidents)
            r.incidents_written = True
            if b.prune:
                ret = self.cfg.retention
                self.store.prune(b.now, {"minute": ret.minute_hours * 3600,
                                         "hour": ret.hour_days * 86400,
                                         "day": ret.day_days * 86400},
                                 ret.incident_days * 86400)
        except StoreUnavailable as e:
            r.error = str(e)
        return r

    def _finish(self, b: _Batch, r: _Result) -> bool:
        if not r.buckets_written:
            self.monitor.restore_pending(b.buckets)
        self._unrolled = set() if r.rolled_up else b.rollup
        if not r.incidents_written:
            self.engine.dirty |= {d["id"] for d in b.incidents}
        if r.error is not None:
            self._store_failed(r.error, b.now)
            return False
        if b.prune:
            self._last_prune = b.now
        self._store_ok(b.now)
        return True

    def _store_failed(self, error: str, now: float) -> None:
        h = self.store_health
        if h.ok or h.error != error:
            log.error("health store unavailable (requests unaffected, history not recorded): %s",
                      error)
        if h.ok:
            h.since = now
        h.ok, h.error = False, error

    def _store_ok(self, now: float) -> None:
        h = self.store_health
        if not h.ok:
            log.warning("health store available again after: %s", h.error)
        h.ok, h.error, h.since, h.last_write = True, None, None, now
        h.notes = list(self.store.notes)

    # -- listeners -------------------------------------------------------------------------

    def page_hook_obj(self) -> dict[str, Any]:
        indicator = v2.indicator_for(self.catalog, self.monitor.status_of,
                                     list(self.engine.open.values()))
        status = v2.status_obj(indicator)
        return {"id": self.page_id, "status_indicator": status["indicator"],
                "status_description": status["description"]}

    def incident_obj(self, inc: Incident) -> dict[str, Any]:
        return v2.incident_obj(inc, self.catalog, self.monitor.status_of, self.page_id,
                               self.base_url(), self.clock())

    def component_obj(self, c: Component) -> dict[str, Any]:
        return v2.component_obj(c, self.catalog, self.monitor.status_of(c.key), self.page_id,
                                self.monitor.since_of(c.key))

    def _on_incident(self, event: IncidentEvent) -> None:
        if not self.notifier.enabled:
            return
        obj = self.incident_obj(event.incident)
        self.notifier.enqueue(
            "incident", statuspage_incident(self.page_hook_obj(), obj, self.base_url(), self.clock()),
            slack_incident(self.cfg.page_name, obj, self.base_url()))

    def _on_component(self, c: Component, old: str, new: str, reasons: list[str], now: float) -> None:
        if not self.notifier.enabled:
            return
        obj = self.component_obj(c)
        from ridethrough.health.incident_model import new_id

        self.notifier.enqueue(
            "component", statuspage_component(self.page_hook_obj(), obj, old, new, new_id(),
                                              self.base_url(), now),
            slack_component(self.cfg.page_name, obj, old, new))

    def _on_upstream(self, view: UpstreamView) -> None:
        if view.ok:
            self.engine.on_upstream(view.provider, view.bad, view.text, self.clock())
