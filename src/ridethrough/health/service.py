"""The health service: the parts every gateway's health is made of, and their loops.

It wires monitor, incidents, store, probes, provider status pages and webhooks onto one
gateway and runs their background loops; how judging and incidents are coordinated is
its ``mode``: ``local.LocalHealth`` for one process, ``shared.SharedHealth`` for several
workers reading as one gateway through the store. Both follow ``Coordination``, so nothing
here asks which one it runs. Its ``tick`` and ``flush`` are plain methods so tests drive
time with an injected clock instead of waiting for the loops.

It serves the web layer through ``reader.StatusSource`` and knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ridethrough.config import HealthConfig, cross_check_health, health_config_of
from ridethrough.health import statuspage_json
from ridethrough.health.announce import Announcer
from ridethrough.health.catalog import Catalog
from ridethrough.health.history import latency_series, uptime_bars
from ridethrough.health.incident_model import Incident
from ridethrough.health.incidents import IncidentEngine
from ridethrough.health.leader import lock_path_for
from ridethrough.health.local import LocalHealth
from ridethrough.health.monitor import HealthMonitor
from ridethrough.health.probes import Prober
from ridethrough.health.reader import History, PageInfo
from ridethrough.health.shared import SharedHealth, SharedIdentity
from ridethrough.health.store_health import StoreHealth
from ridethrough.health.tasks import cancel_and_wait
from ridethrough.health.upstream import UpstreamPoller, UpstreamView
from ridethrough.health.view import HealthView
from ridethrough.health.webhooks import Notifier
from ridethrough.store import SqliteStore, StoreUnavailable
from ridethrough.store.stats import Bucket

log = logging.getLogger("ridethrough.health")
PRUNE_EVERY_S = 3600.0
DRAIN_SLICE = 256   # records folded between two chances for requests to run


class Coordination(Protocol):
    """What differs between one process and several workers; the service runs the rest."""

    def breaker_of(self, target: str) -> dict[str, Any] | None: ...
    def loaded(self, incidents: list[dict[str, Any]], now: float) -> None: ...
    def started(self) -> None: ...
    async def cycle_async(self) -> None: ...
    def tick(self, records: list[tuple[float, Any]]) -> None: ...
    async def close(self) -> None: ...
    def incidents_to_write(self) -> list[dict[str, Any]]: ...
    async def share_override(self, target: str, mode: str | None) -> dict[str, str]: ...
    def view(self) -> HealthView: ...
    async def view_async(self) -> HealthView: ...
    async def find_incident(self, incident_id: str) -> Incident | None: ...
    async def add_note(self, inc: Incident, body: str, status: str | None) -> Incident: ...
    async def set_postmortem(self, inc: Incident, body: str) -> Incident: ...


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


class HealthService:
    def __init__(self, gw: Any, *, store_path: str | None, clock: Callable[[], float] = time.time,
                 config: HealthConfig | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 shared: SharedIdentity | None = None) -> None:
        if shared is not None and store_path is None:
            raise ValueError("several workers share health through a store file; got none")
        self.gw = gw
        self.board = gw.board
        self.cfg = config or health_config_of(gw.cfg)
        self.clock = clock
        self.sleep = sleep
        for problem in cross_check_health(gw.cfg, self.cfg):
            log.error("config: %s (ignored)", problem)
        # Every worker of a run must name the same creation date, or their JSON differs.
        self.catalog = Catalog.from_gateway(gw, shared.started_at if shared else clock())
        self.engine = IncidentEngine(self.catalog, self.cfg.incidents)
        self.monitor = HealthMonitor(self.catalog, self.cfg, clock, self.engine,
                                     breaker_of=lambda t: self.mode.breaker_of(t),
                                     unavailable_of=self._unavailable)
        # Workers wait on each other's short write transactions, in a thread, never a request.
        self.store = SqliteStore(store_path, busy_timeout_s=5.0 if shared else 0.5)
        self.store_health = StoreHealth()
        # Signature timestamps are for the receiver's freshness check: always wall time.
        self.notifier = Notifier(self.cfg.webhooks, time.time, sleep=sleep)
        targets = {t.key: t for ts in gw.routes.values() for t in ts}
        targets.update({t.key: t for t in gw.last_resorts.values()})
        self.prober = Prober(targets, self.cfg.probes, gw.board, gw.clock, self.monitor.observe_probe)
        self.poller = UpstreamPoller(self.cfg.status_pages, clock, self._on_upstream)
        server = gw.cfg.server
        pages = self.cfg.status_pages
        self.page = PageInfo(self.cfg.page_name, statuspage_json.page_id_for(self.cfg.page_name),
                             self.cfg.page_url, f"http://{server.host}:{server.port}",
                             frozenset(pages.pages) if pages.enabled else frozenset())
        self.announcer = Announcer(self.page, self.catalog, self.monitor, self.engine,
                                   self.notifier, clock)
        self._tasks: list[asyncio.Task[None]] = []
        self._unrolled: set[int] = set()
        self._last_prune = 0.0
        self._flushing = False
        self._drained: list[tuple[float, Any]] = []  # folded, not yet handed on (drain_in_slices)
        self._leader_tasks: list[asyncio.Task[None]] = []
        self.mode: Coordination = LocalHealth(self) if shared is None else \
            SharedHealth(self, shared, lock_path=lock_path_for(store_path or ""))

    @property
    def page_id(self) -> str:
        return self.page.id

    # -- what health reads of the gateway --------------------------------------------------

    def _unavailable(self, provider: str) -> str | None:
        p = self.gw.providers.get(provider)
        return p.unavailable_reason if p is not None else None

    @property
    def draining(self) -> bool:
        return bool(self.gw.draining)

    def latency_view(self) -> dict[str, Any]:
        return self.gw.latency_view()  # type: ignore[no-any-return]

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        loaded = await asyncio.to_thread(self._read_store)   # file I/O off the loop
        self._apply_store(loaded)
        self._tasks.append(asyncio.ensure_future(self._loop()))
        self.mode.started()
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
            self.store.rollup([int(now) - 3600, int(now)])
            recent = self.store.load_incidents(50)
            ids = {d["id"] for d in recent}
            return recent + [d for d in self.store.load_incidents(50, True) if d["id"] not in ids]
        except StoreUnavailable as e:
            return str(e)

    def _apply_store(self, loaded: list[dict[str, Any]] | str) -> None:
        now = self.clock()
        if isinstance(loaded, str):
            self.store_health.failed(loaded, now)
            return
        self.mode.loaded(loaded, now)
        self.store_health.succeeded(now, self.store.notes)

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks, self._leader_tasks = [], []
        try:
            await self.mode.close()
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
                await self.mode.cycle_async()
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
        self.mode.tick(self._take_drained())

    # -- reading (reader.StatusSource) -----------------------------------------------------

    def view(self) -> HealthView:
        return self.mode.view()

    async def view_async(self) -> HealthView:
        return await self.mode.view_async()

    def read_history(self, leaves: list[str], routes: list[str], now: float) -> History:
        """History bars and latency points: read from the store, which every worker shares."""
        return History(uptime_bars(self.store, leaves, now), latency_series(self.store, routes, now))

    # -- operators -------------------------------------------------------------------------

    async def find_incident(self, incident_id: str) -> Incident | None:
        return await self.mode.find_incident(incident_id)

    async def add_note(self, inc: Incident, body: str, status: str | None) -> Incident:
        return await self.mode.add_note(inc, body, status)

    async def set_postmortem(self, inc: Incident, body: str) -> Incident:
        return await self.mode.set_postmortem(inc, body)

    async def share_override(self, target: str, mode: str | None) -> dict[str, str]:
        """An operator forced ``target`` here; carry it to the other workers, if any."""
        return await self.mode.share_override(target, mode)

    # -- history ---------------------------------------------------------------------------

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
        incidents = self.mode.incidents_to_write()
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
            self.store_health.failed(r.error, b.now)
            return False
        if b.prune:
            self._last_prune = b.now
        self.store_health.succeeded(b.now, self.store.notes)
        return True

    # -- listeners -------------------------------------------------------------------------

    def _on_upstream(self, view: UpstreamView) -> None:
        if view.ok:
            self.engine.on_upstream(view.provider, view.bad, view.text, self.clock())
