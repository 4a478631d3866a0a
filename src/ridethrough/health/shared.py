"""Health across several worker processes: each records, one leads, all read the same.

With ``serve --workers N`` every worker sees a share of the traffic. Every tick each one
writes what it saw to the shared store (``store.shared``): per-second slices of its
samples, a ``FeedBatch`` of tallies for the incident engine, and a row about itself
(breakers, counters). The worker holding the leader lock (``leader.LeaderLock``) then reads
everyone's slices, rows and feed, judges every component on the merged window — with the
same rules as a single process — runs the one incident engine, and publishes a snapshot and
the incidents in one transaction. Webhooks, probes and provider status-page polls run on
the leader only. Every worker, the leader included, answers the public endpoints from what
was published (``view.shared_view``), so whichever one a load balancer picks, a person or a
tool reads the same page.

A tick is four steps so that the event loop never waits on SQLite: prepare (loop), exchange
(thread: write ours, read theirs), judge (loop, leader only: it fires the listeners that
queue webhooks), publish (thread). ``cycle`` runs the same steps inline for tests.

It is one ``service.Coordination`` (``local.LocalHealth`` is the other): the service runs
the loops and the history, and hands every step that differs to this object.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ridethrough.errors import RidethroughError
from ridethrough.health.feed import (
    KIND_NOTE,
    KIND_POSTMORTEM,
    FeedBatch,
    note_command,
    postmortem_command,
)
from ridethrough.health.incident_model import Incident, new_id
from ridethrough.health.leader import LeaderLock
from ridethrough.health.slices import Slice, SliceCache, SliceRecorder
from ridethrough.health.status import merge_breakers
from ridethrough.health.view import (
    HealthView,
    StoreLine,
    UpstreamLine,
    probe_lines,
    shared_view,
    webhook_stats,
)
from ridethrough.store import SharedTables, SliceRow, StoreUnavailable

if TYPE_CHECKING:
    from ridethrough.health.service import HealthService

log = logging.getLogger("ridethrough.health")
SLICE_RETENTION_S = 60      # slices kept past the window (late writers, a new leader's read)
COMMAND_WAIT_S = 15.0       # how long an admin call waits for the leader to apply it


class LeaderBusy(RidethroughError):
    status = 503
    code = "leader_busy"


@dataclass(frozen=True, slots=True)
class SharedIdentity:
    """Who this worker is within one ``serve --workers N`` run (set by the supervisor)."""

    slot: int            # 0 … workers-1; a replacement for a dead worker takes its slot
    workers: int
    session: str         # one run: rows of earlier runs are ignored and cleaned up
    started_at: float    # when the run started: the components' creation date everywhere


@dataclass(slots=True)
class _Outbox:
    now: float
    worker: dict[str, Any]
    slices: list[tuple[str, int, dict[str, Any]]]
    feed: FeedBatch
    try_lead: bool


@dataclass(slots=True)
class _Inbox:
    error: str | None = None
    written: bool = False          # our own part reached the store (even if reading failed)
    leading: bool = False
    took_over: tuple[dict[str, Any] | None, int, list[dict[str, Any]]] | None = None
    slices: list[SliceRow] = field(default_factory=list)
    seq: int = 0
    feed: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    workers: list[dict[str, Any]] = field(default_factory=list)
    overrides: dict[str, Any] | None = None


@dataclass(slots=True)
class _Publication:
    now: float
    snapshot: dict[str, Any]
    incidents: list[dict[str, Any]]
    cursor: int


class SharedHealth:
    def __init__(self, svc: HealthService, ident: SharedIdentity, *, lock_path: str) -> None:
        self.svc = svc
        self.ident = ident
        self.instance = f"{ident.slot}-{os.getpid()}-{secrets.token_hex(3)}"
        self.tables = SharedTables(svc.store)
        self.lock = LeaderLock(lock_path)
        self.recorder = SliceRecorder()
        svc.monitor.slices = self.recorder
        self.feed = FeedBatch()
        self.cache = SliceCache()
        self.leading = False
        self.stopped = False
        self.seq = 0                                   # slices read up to this write number
        self.cursor = 0                                # feed read up to this id
        self.breakers: dict[str, list[dict[str, Any]]] = {}   # target → live workers' snapshots
        self.last_view: HealthView | None = None
        self.overrides_epoch: str | None = None        # the operators' overrides: the store
        self.overrides_seen: dict[str, int] = {}       # file's epoch, and per target the
                                                       # version last applied here
        self._busy = False

    @property
    def stale_after_s(self) -> float:
        """A worker not heard from for this long is no longer counted as live."""
        return max(5.0, 5 * self.svc.cfg.tick_s)

    @property
    def window_s(self) -> float:
        return self.svc.cfg.thresholds.window_s

    # -- the service's steps (service.Coordination) ----------------------------------------

    def breaker_of(self, target: str) -> dict[str, Any] | None:
        return merge_breakers(self.breakers.get(target, []))  # the leader judges every worker's

    def loaded(self, incidents: list[dict[str, Any]], now: float) -> None:
        """Nothing to do: the leader loads the incidents when it starts to lead."""

    def started(self) -> None:
        """Nothing to do: probes and polls start once this worker leads (``cycle_async``)."""

    def tick(self, records: list[tuple[float, Any]]) -> None:
        self.drain(records)   # judging is the leader's, on its own cycle

    def incidents_to_write(self) -> list[dict[str, Any]]:
        return []   # the leader publishes them with its snapshot, in one transaction

    def view(self) -> HealthView:
        return self.read_view()

    async def view_async(self) -> HealthView:
        return await asyncio.to_thread(self.read_view)

    async def share_override(self, target: str, mode: str | None) -> dict[str, str]:
        """This call reached one worker: the store carries it to the others within a tick.
        If the store is down, say so rather than pretend."""
        try:
            await self.set_override(target, mode)
        except StoreUnavailable as e:
            return {"applies_to": "this worker only",
                    "warning": f"the shared store is unavailable, other workers keep their state: {e}"}
        return {"applies_to": "every worker"}

    # -- every tick ------------------------------------------------------------------------

    def drain(self, records: list[tuple[float, Any]] | None = None) -> None:
        """Fold queued records into windows, buckets and slices; tallies go to the feed.
        ``records``: those already folded this tick (``HealthService.drain_in_slices``)."""
        first = self.svc.catalog.first_target
        for _, record in (records or []) + self.svc.monitor.drain():
            self.feed.add(record, first.get(record.route))

    def cycle(self) -> None:
        """One tick, inline (tests, and where there is no loop)."""
        now = self.svc.clock()
        self.drain()
        out = self._prepare(now)
        pub = self._judge(out, self._exchange(out), now)
        if pub is not None:
            self._published(pub, self._publish(pub))

    async def cycle_async(self) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            self.drain(await self.svc.drain_in_slices())
            now = self.svc.clock()
            out = self._prepare(now)
            inbox = await asyncio.to_thread(self._exchange, out)
            was_leading = self.leading
            pub = self._judge(out, inbox, now)
            if pub is not None:
                self._published(pub, await asyncio.to_thread(self._publish, pub))
            if self.leading and not was_leading and not self.stopped:
                self.svc.start_leader_tasks()
        finally:
            self._busy = False

    async def close(self) -> None:
        """A last tick that says we stopped (and publishes, if leading); then step down."""
        self.stopped = True
        self._busy = False
        try:
            await self.cycle_async()
        finally:
            await asyncio.to_thread(self.lock.release)
            self.leading = False

    # -- the steps -------------------------------------------------------------------------

    def _prepare(self, now: float) -> _Outbox:
        feed, self.feed = self.feed, FeedBatch()
        self.recorder.prune(now)
        try_lead = self.leading or (not self.stopped and not self.svc.draining)
        return _Outbox(now, self._worker_row(now), self.recorder.take(), feed, try_lead)

    def _worker_row(self, now: float) -> dict[str, Any]:
        svc, h = self.svc, self.svc.store_health
        return {
            "instance": self.instance, "session": self.ident.session, "slot": self.ident.slot,
            "pid": os.getpid(), "seen_at": now, "stopped": self.stopped,
            "draining": svc.draining, "leading": self.leading,
            "breakers": {t: svc.board.get(t).snapshot() for t in svc.catalog.targets()},
            "latency": svc.latency_view(),
            "totals": svc.monitor.totals.to_json(), "dropped": svc.monitor.dropped,
            "store": {"ok": h.ok, "error": h.error, "since": h.since, "last_write": h.last_write,
                      "notes": list(h.notes)},
            "webhooks": webhook_stats(svc.notifier.stats),
        }

    def _exchange(self, out: _Outbox) -> _Inbox:
        """Worker thread: write ours; if we lead (or may now), read everyone's."""
        inbox = _Inbox()
        try:
            inbox.overrides = self.tables.exchange(
                out.worker, out.slices, [] if out.feed.empty else [out.feed.to_json()], out.now)
        except StoreUnavailable as e:
            inbox.error = str(e)
            return inbox
        inbox.written = True
        if not out.try_lead or not self.lock.try_acquire():
            return inbox
        inbox.leading = True
        cursor = self.cursor
        try:
            if not self.leading:
                snapshot, cursor = self.tables.read_leader_state()
                recent = self.svc.store.load_incidents(50)
                ids = {d["id"] for d in recent}
                recent += [d for d in self.svc.store.load_incidents(50, True) if d["id"] not in ids]
                inbox.took_over = (snapshot, cursor, recent)
                inbox.slices, inbox.seq = self.tables.read_slices(
                    since_second=int(out.now - self.window_s) - 1)
            else:
                inbox.slices, inbox.seq = self.tables.read_slices(after_seq=self.seq)
            inbox.feed = self.tables.read_feed(cursor)
            inbox.workers = self.tables.read_workers(self.ident.session)
        except StoreUnavailable as e:
            inbox.error, inbox.leading = str(e), False
            if not self.leading:  # never lead without the state to lead with
                self.lock.release()
        return inbox

    def _judge(self, out: _Outbox, inbox: _Inbox, now: float) -> _Publication | None:
        """Loop: judge on everyone's samples, run the incident engine; what to publish."""
        svc = self.svc
        if inbox.written:  # even if reading as the leader failed afterwards
            self._apply_overrides(inbox.overrides)
        if inbox.error is not None:
            if not inbox.written:            # nothing reached the store: send it all again
                self.feed.merge(out.feed)
                self.recorder.restore(out.slices)
            svc.store_health.failed(inbox.error, now)
            return None
        svc.store_health.succeeded(now, svc.store.notes)
        if not inbox.leading:
            if self.leading:                 # the lock file was replaced under us
                self.leading = False
                svc.stop_leader_tasks()
            return None
        if inbox.took_over is not None:
            self._take_over(*inbox.took_over, now)
        self.leading = True
        for row in inbox.slices:
            self.cache.put(row.instance, row.component, row.second, Slice.from_json(row.data))
        self.seq = max(self.seq, inbox.seq)
        self.cache.prune(int(now - self.window_s) - 1)
        live = [r for r in inbox.workers
                if not r.get("stopped") and now - float(r["seen_at"]) <= self.stale_after_s]
        self.breakers = {}
        for worker in live:
            for target, snap in worker.get("breakers", {}).items():
                self.breakers.setdefault(target, []).append(snap)
        leaves = [c.key for c in svc.catalog.leaves()]
        svc.monitor.evaluate(now, self.cache.stats(leaves, now, self.window_s))
        for entry_id, entry in inbox.feed:
            self._apply(entry, now)
            self.cursor = entry_id
        svc.engine.step(now)
        ids, svc.engine.dirty = svc.engine.dirty, set()
        incidents = [inc.to_dict() for i in sorted(ids) if (inc := svc.engine.find(i)) is not None]
        return _Publication(now, self._snapshot(now), incidents, self.cursor)

    def _apply_overrides(self, overrides: dict[str, Any] | None) -> None:
        """An operator's drain, force-up or restore, sent to any worker, reaches this one too.

        Each target's entry carries the version that last set it; an entry newer than the
        one this worker applied is applied (so a repeated call re-applies it, even where a
        worker's local state had drifted), an older or already applied one is left alone:
        a target nobody touched keeps its local state (a hold-down), and a read that raced a
        newer write changes nothing. No map at all (none set in this run, or the store file
        was lost) changes nothing either: better keep the drains than undo them.
        """
        if overrides is None:
            return
        if overrides.get("epoch") != self.overrides_epoch:  # a new store file: its own count
            self.overrides_epoch, self.overrides_seen = overrides.get("epoch"), {}
        board = self.svc.board
        for target, entry in sorted(overrides["targets"].items()):
            if int(entry["v"]) <= self.overrides_seen.get(target, 0):
                continue
            self.overrides_seen[target] = int(entry["v"])
            mode = entry["mode"]
            if board.get(target).forced == mode:
                continue
            board.force(target, mode)
            log.warning("worker %d: target %s %s by an operator", self.ident.slot, target,
                        {"down": "forced down", "up": "forced up"}.get(mode, "back to automatic"))

    def _apply(self, entry: dict[str, Any], now: float) -> None:
        engine = self.svc.engine
        kind = entry.get("kind")
        if kind in (KIND_NOTE, KIND_POSTMORTEM):
            inc = engine.find(str(entry.get("incident_id")))
            if inc is None:
                log.warning("operator %s for unknown incident %s dropped", kind,
                            entry.get("incident_id"))
            elif kind == KIND_NOTE:
                engine.add_note(inc, entry["body"], entry.get("status"), now,
                                entry.get("update_id"))
            else:
                engine.set_postmortem(inc, entry["body"], now)
            return
        FeedBatch.from_json(entry).apply(engine, now)

    def _take_over(self, snapshot: dict[str, Any] | None, cursor: int,
                   incidents: list[dict[str, Any]], now: float) -> None:
        """Become the leader: carry on from the incidents and statuses last published."""
        svc = self.svc
        svc.engine.reset()
        self.cache.clear()
        self.cursor = cursor
        svc.engine.load([Incident.from_dict(d) for d in incidents], now)
        for key, comp in ((snapshot or {}).get("components") or {}).items():
            c, state = svc.catalog.components.get(key), svc.monitor.states.get(key)
            if c is None or state is None:
                continue
            state.status, state.since = comp["status"], float(comp["since"])
            state.reasons = list(comp.get("reasons", []))
            svc.engine.seed_status(c, state.status, state.reasons, state.since)
        log.warning("worker %d (pid %d) now leads health: judging, incidents, webhooks, probes",
                    self.ident.slot, os.getpid())

    def _snapshot(self, now: float) -> dict[str, Any]:
        svc = self.svc
        return {
            "generated_at": now, "created_at": svc.catalog.created_at,
            "leader": {"slot": self.ident.slot, "pid": os.getpid(), "instance": self.instance},
            "components": {k: {"status": st.status, "since": st.since, "reasons": list(st.reasons),
                               "window": st.stats.as_dict()}
                           for k, st in svc.monitor.states.items()},
            "upstream": {p: UpstreamLine.of(v).to_json() for p, v in svc.poller.views.items()},
            "probes": probe_lines(svc.prober.last.values()),
        }

    def _publish(self, pub: _Publication) -> str | None:
        """Worker thread: the leader's output, in one transaction."""
        try:
            self.tables.publish(pub.snapshot, pub.incidents, pub.cursor,
                                slices_before=int(pub.now - self.window_s) - SLICE_RETENTION_S,
                                session=self.ident.session)
        except StoreUnavailable as e:
            return str(e)
        return None

    def _published(self, pub: _Publication, error: str | None) -> None:
        if error is not None:
            self.svc.engine.dirty |= {d["id"] for d in pub.incidents}
            self.svc.store_health.failed(error, pub.now)

    # -- reading ---------------------------------------------------------------------------

    def read_view(self) -> HealthView:
        """What every worker serves: the leader's last publication (blocking: a thread)."""
        now = self.svc.clock()
        try:
            read = self.tables.read_view(self.ident.session)
        except StoreUnavailable as e:
            # The page stays up with what we knew, and says the store is down.
            last = self.last_view or HealthView(self.svc.catalog, now, {}, {}, {}, {}, [])
            return dataclasses.replace(last, now=now, store=StoreLine(
                ok=False, error=str(e), since=now, path=self.svc.store.path))
        view = shared_view(self.svc.catalog, read, now, store_path=self.svc.store.path,
                           stale_after_s=self.stale_after_s)
        self.last_view = view
        return view

    # -- operators -------------------------------------------------------------------------

    async def set_override(self, target: str, mode: str | None) -> None:
        """Share an operator's override with every worker (raises StoreUnavailable)."""
        # This worker applied this one already; the map written also carries what other
        # workers set meanwhile, so apply it now rather than on the next tick.
        new = await asyncio.to_thread(self.tables.set_override, self.ident.session, target, mode)
        self._apply_overrides(new)

    async def find_incident(self, incident_id: str) -> Incident | None:
        d = await asyncio.to_thread(self.svc.store.load_incident, incident_id)
        return Incident.from_dict(d) if d is not None else None

    async def add_note(self, inc: Incident, body: str, status: str | None) -> Incident:
        update_id = new_id()
        return await self._command(note_command(inc.id, update_id, body, status), inc.id,
                                   lambda inc: any(u.id == update_id for u in inc.updates))

    async def set_postmortem(self, inc: Incident, body: str) -> Incident:
        return await self._command(postmortem_command(inc.id, body), inc.id,
                                   lambda inc: inc.postmortem == body)

    async def _command(self, entry: dict[str, Any], incident_id: str, done: Any) -> Incident:
        """Only the leader changes incidents: queue the change, wait until it is published."""
        await asyncio.to_thread(self.tables.append_feed, self.instance, entry, self.svc.clock())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + COMMAND_WAIT_S
        while loop.time() < deadline:
            await asyncio.sleep(max(0.05, self.svc.cfg.tick_s / 2))
            inc = await self.find_incident(incident_id)
            if inc is not None and done(inc):
                return inc
        raise LeaderBusy("queued, but the leading worker has not published it yet; "
                         "it will appear on the status page once it does")
