"""Automatic incidents: grouping bad minutes into one story with a beginning and an end.

A component that has been non-operational for ``open_after_s`` opens an incident about its
subject — a provider (all its targets) or a route. Every status change, every new place
traffic is moved to, and the provider's own status page confirming it, become updates. When
every affected component is operational again the incident goes to *monitoring*; after a
quiet period it is *resolved*. Nothing here reads a clock of its own: the monitor calls
``on_status``/``on_record`` as it drains records, and ``step(now)`` once per tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ridethrough.config import IncidentConfig
from ridethrough.health.catalog import Catalog, Component
from ridethrough.health.incident_model import (
    IDENTIFIED,
    INVESTIGATING,
    MONITORING,
    POSTMORTEM,
    RESOLVED,
    UNRESOLVED,
    Incident,
    IncidentUpdate,
    human_duration,
    new_id,
)
from ridethrough.health.samples import ROUTE_FAILURES, ROUTE_OK, attempt_verdict, is_fallback
from ridethrough.health.status import DEGRADED, IMPACT, LABEL, PARTIAL, severity
from ridethrough.records import RequestRecord

log = logging.getLogger("ridethrough.health")
HISTORY_IN_MEMORY = 50


@dataclass(slots=True)
class IncidentEvent:
    kind: str               # opened | updated | resolved
    incident: Incident
    update: IncidentUpdate | None


@dataclass(slots=True)
class _Tally:
    """Requests counted for a subject before its incident opens (the bad minutes count too)."""

    requests_affected: int = 0
    requests_saved: int = 0
    failovers: list[str] = field(default_factory=list)


Listener = Callable[[IncidentEvent], None]


class IncidentEngine:
    def __init__(self, catalog: Catalog, cfg: IncidentConfig, *,
                 min_route: str = PARTIAL, min_target: str = DEGRADED) -> None:
        self.catalog = catalog
        self.cfg = cfg
        self.threshold = {"route": severity(min_route), "target": severity(min_target)}
        self.statuses: dict[str, str] = {}
        self.reasons: dict[str, list[str]] = {}
        self.bad_since: dict[str, float] = {}          # component key → first bad moment
        self.open: dict[str, Incident] = {}            # subject → its unresolved incident
        self.history: list[Incident] = []              # resolved, newest first
        self.listeners: list[Listener] = []
        self.dirty: set[str] = set()                   # incident ids to persist
        self._tallies: dict[str, _Tally] = {}
        self._changes: dict[str, list[dict[str, str]]] = {}

    # -- inputs --------------------------------------------------------------------------

    def on_status(self, comp: Component, old: str, new: str, reasons: list[str], now: float) -> None:
        self.statuses[comp.key] = new
        self.reasons[comp.key] = reasons
        if severity(new) >= self.threshold.get(comp.kind, 99):
            self.bad_since.setdefault(comp.key, now)
        else:
            self.bad_since.pop(comp.key, None)
        subject = self.catalog.subject_of(comp)
        inc = self.open.get(subject)
        if inc is None:
            return
        if comp.key in self.bad_since and comp.key not in inc.components:
            inc.components.append(comp.key)
        if comp.key in inc.components:
            self._changes.setdefault(subject, []).append(
                {"code": comp.id, "name": comp.name, "old_status": old, "new_status": new})

    def on_record(self, record: RequestRecord, now: float) -> None:
        ok = record.outcome == ROUTE_OK
        for subject in touched_subjects(record):
            self.count_requests(subject, 1, int(ok))
        first = self.catalog.first_target.get(record.route)
        moved = failover_of(record, first)
        if moved is not None and first is not None:
            self.note_failover(record.route, first, moved[0], moved[1], now)

    def count_requests(self, subject: str, affected: int, saved: int) -> None:
        """Requests that hit a failure of ``subject`` (``saved`` of them still answered)."""
        counter = self._counter(subject)
        if counter is not None:
            counter.requests_affected += affected
            counter.requests_saved += saved

    def note_failover(self, route: str, first: str, dest: str, tier: str, now: float) -> None:
        """Route ``route`` (whose first target is ``first``) was answered by ``dest``."""
        for subject in ("provider:" + first.split("/", 1)[0], f"route:{route}"):
            counter = self._counter(subject)
            if counter is None or dest in counter.failovers:
                continue
            counter.failovers.append(dest)
            inc = self.open.get(subject)
            if inc is not None:
                verb = "Failing over to" if tier == "live" else "Serving"
                status = IDENTIFIED if inc.status == INVESTIGATING else inc.status
                self._post(inc, status, f"{verb} {dest} for route {route}.",
                           now, kind="failover")

    def on_upstream(self, provider: str, bad: bool, text: str, now: float) -> None:
        """The provider's own status page: confirmation for an open incident, never a cause."""
        inc = self.open.get(f"provider:{provider}")
        if inc is None or not bad or inc.confirmed:
            return
        inc.confirmed = True
        inc.upstream_note = text
        self._post(inc, inc.status, f"Confirmed by {provider}'s own status page: {text}", now,
                   kind="confirmation")

    # -- time ----------------------------------------------------------------------------

    def step(self, now: float) -> None:
        subjects = set(self.open) | {self.catalog.subject_of(self.catalog.components[k])
                                     for k in self.bad_since if k in self.catalog.components}
        for subject in sorted(subjects):
            bad = [c.key for c in self.catalog.members(subject) if c.key in self.bad_since]
            inc = self.open.get(subject)
            if inc is None:
                if bad and now - min(self.bad_since[k] for k in bad) >= self.cfg.open_after_s:
                    self._open(subject, bad, now)
                continue
            self._advance(inc, subject, bad, now)
        for subject in list(self._tallies):
            if subject not in subjects:
                del self._tallies[subject]

    def _advance(self, inc: Incident, subject: str, bad: list[str], now: float) -> None:
        changes = self._changes.pop(subject, [])
        worst = max((severity(self.statuses.get(k, "")) for k in inc.components), default=0)
        if _rank(IMPACT[worst]) > _rank(inc.impact) or changes:
            # The title follows the worst impact and the components involved, like a human
            # editor would retitle "Partial outage" once it became a major one.
            inc.impact = max(inc.impact, IMPACT[worst], key=_rank)
            comps = [self.catalog.components[k] for k in inc.components]
            inc.name = _title(subject, comps, _rank(inc.impact))
        status = inc.status
        parts = ["; ".join(f"{c['name']}: {LABEL.get(c['old_status'], c['old_status'])} → "
                           f"{LABEL.get(c['new_status'], c['new_status'])}" for c in changes) + "."
                 ] if changes else []
        if inc.status in (INVESTIGATING, IDENTIFIED) and not bad:
            status, inc.monitoring_at, inc.ended_at = MONITORING, now, now
            parts.append("Every affected component is operational again; monitoring.")
        elif inc.status == MONITORING and bad:
            status, inc.ended_at = (IDENTIFIED if inc.failovers else INVESTIGATING), None
            parts.append("The problem is back.")
        elif inc.status == MONITORING and inc.monitoring_at is not None \
                and now - inc.monitoring_at >= self.cfg.quiet_period_s:
            self._resolve(inc, now, changes)
            return
        if changes or status != inc.status:
            if bad:
                parts.append(self._why(bad))
            self._post(inc, status, " ".join(p.strip() for p in parts if p.strip()), now,
                       affected=changes or None)

    def seed_status(self, comp: Component, status: str, reasons: list[str], since: float) -> None:
        """A worker taking over as leader learns the statuses its predecessor published,
        without posting them as changes (they are not news)."""
        self.statuses[comp.key] = status
        self.reasons[comp.key] = reasons
        if severity(status) >= self.threshold.get(comp.kind, 99):
            self.bad_since[comp.key] = since

    def _why(self, keys: list[str]) -> str:
        reasons = [f" {self.catalog.components[k].name}: {'; '.join(self.reasons[k])}."
                   for k in keys if self.reasons.get(k) and k in self.bad_since]
        return "".join(reasons)

    # -- transitions ---------------------------------------------------------------------

    def _open(self, subject: str, bad: list[str], now: float) -> None:
        tally = self._tallies.pop(subject, _Tally())
        comps = [self.catalog.components[k] for k in bad]
        worst = max(severity(self.statuses.get(k, "")) for k in bad)
        status = IDENTIFIED if tally.failovers else INVESTIGATING
        inc = Incident(
            id=new_id(), subject=subject, name=_title(subject, comps, worst), status=status,
            impact=IMPACT[worst], created_at=now, updated_at=now,
            started_at=min(self.bad_since[k] for k in bad), components=list(bad),
            requests_affected=tally.requests_affected, requests_saved=tally.requests_saved,
            failovers=list(tally.failovers))
        self.open[subject] = inc
        self._changes.pop(subject, None)
        body = "We are seeing " + ", ".join(
            f"{LABEL[self.statuses[c.key]].lower()} of {c.name}" for c in comps) + "." + self._why(bad)
        if tally.failovers:
            body += " Traffic is failing over to " + ", ".join(tally.failovers) + "."
        affected = [{"code": c.id, "name": c.name, "old_status": "operational",
                     "new_status": self.statuses[c.key]} for c in comps]
        log.warning("incident opened: %s (%s)", inc.name, inc.id)
        self._post(inc, status, body, now, affected=affected, event="opened")

    def _resolve(self, inc: Incident, now: float, changes: list[dict[str, str]] | None = None,
                 body: str | None = None, kind: str = "auto", update_id: str | None = None) -> None:
        inc.resolved_at = now
        if inc.ended_at is None:
            inc.ended_at = now
        if body is None:
            body = (f"Resolved: operational for {human_duration(now - (inc.monitoring_at or now))}."
                    f" The problem lasted {human_duration(inc.duration_s(now))};"
                    f" {inc.requests_affected} requests were affected,"
                    f" {inc.requests_saved} of them saved by failover.")
        self.open.pop(inc.subject, None)
        self.history.insert(0, inc)
        del self.history[HISTORY_IN_MEMORY:]
        log.warning("incident resolved: %s (%s)", inc.name, inc.id)
        self._post(inc, RESOLVED, body, now, affected=changes or None, event="resolved", kind=kind,
                   update_id=update_id)

    def _post(self, inc: Incident, status: str, body: str, now: float, *,
              affected: list[dict[str, str]] | None = None, event: str = "updated",
              kind: str = "auto", update_id: str | None = None) -> IncidentUpdate:
        inc.status = status
        inc.updated_at = now
        upd = IncidentUpdate(update_id or new_id(), inc.id, status, body.strip(), now, kind,
                             affected)
        inc.updates.append(upd)
        self.dirty.add(inc.id)
        for listener in self.listeners:
            try:
                listener(IncidentEvent(event, inc, upd))
            except Exception:  # a notifier must never stop the health loop
                log.exception("incident listener failed")
        return upd

    def _counter(self, subject: str) -> Incident | _Tally | None:
        """Where a subject's affected requests are counted now, if it is in trouble at all."""
        inc = self.open.get(subject)
        if inc is not None:
            return inc
        if any(c.key in self.bad_since for c in self.catalog.members(subject)):
            return self._tallies.setdefault(subject, _Tally())
        return None

    # -- operators -----------------------------------------------------------------------

    def find(self, incident_id: str) -> Incident | None:
        for inc in [*self.open.values(), *self.history]:
            if inc.id == incident_id:
                return inc
        return None

    def add_note(self, inc: Incident, body: str, status: str | None, now: float,
                 update_id: str | None = None) -> IncidentUpdate:
        """``update_id``: chosen by a worker that asked the leader to post the note, so it
        can recognise the note once published."""
        if status == RESOLVED and inc.unresolved:
            self._resolve(inc, now, body=body, kind="note", update_id=update_id)
            return inc.updates[-1]
        new_status = status if status in UNRESOLVED and inc.unresolved else inc.status
        return self._post(inc, new_status, body, now, kind="note", update_id=update_id)

    def set_postmortem(self, inc: Incident, body: str, now: float) -> None:
        inc.postmortem, inc.postmortem_at, inc.updated_at = body, now, now
        if inc.status == RESOLVED:
            inc.status = POSTMORTEM
        self.dirty.add(inc.id)
        for listener in self.listeners:
            try:
                listener(IncidentEvent("updated", inc, None))
            except Exception:
                log.exception("incident listener failed")

    def reset(self) -> None:
        """Forget everything (a worker taking over as leader reloads it from the store)."""
        self.statuses.clear()
        self.reasons.clear()
        self.bad_since.clear()
        self.open.clear()
        self.history.clear()
        self.dirty.clear()
        self._tallies.clear()
        self._changes.clear()

    def load(self, incidents: list[Incident], now: float) -> None:
        """Incidents from the store at start: unresolved ones carry on if still relevant."""
        subjects = {self.catalog.subject_of(c) for c in self.catalog.leaves()}
        for inc in sorted(incidents, key=lambda i: i.created_at):
            if inc.unresolved and inc.subject in subjects and inc.subject not in self.open:
                self.open[inc.subject] = inc
            elif inc.unresolved:
                self._resolve(inc, now, body="Resolved: the component is no longer configured.")
            else:
                self.history.insert(0, inc)
        self.history.sort(key=lambda i: -i.created_at)
        del self.history[HISTORY_IN_MEMORY:]

    def all(self) -> list[Incident]:
        return sorted([*self.open.values(), *self.history], key=lambda i: -i.created_at)


def touched_subjects(record: RequestRecord) -> set[str]:
    """The incident subjects whose failure this request ran into."""
    touched: set[str] = set()
    for a in record.attempts:
        if attempt_verdict(a.outcome) == (True, True):
            touched.add("provider:" + a.target.split("/", 1)[0])
            touched.add(f"route:{record.route}")
    if record.outcome in ROUTE_FAILURES:
        touched.add(f"route:{record.route}")
    return touched


def failover_of(record: RequestRecord, first_target: str | None) -> tuple[str, str] | None:
    """(where the answer came from, its tier) when the route did not answer as meant."""
    if first_target is None or not is_fallback(record, first_target):
        return None
    dest = record.served_by if record.tier == "live" else f"{record.tier} answers"
    return (dest, record.tier) if dest else None


def _rank(impact: str) -> int:
    return {"none": 0, "minor": 1, "major": 2, "critical": 3}.get(impact, 0)


def _title(subject: str, comps: list[Component], worst: int) -> str:
    phrase = {1: "Degraded performance", 2: "Partial outage", 3: "Major outage"}.get(worst, "Problem")
    if subject.startswith("provider:"):
        models = ", ".join(c.name.split("/", 1)[-1] for c in comps)
        return f"{phrase} at {subject.removeprefix('provider:')} ({models})"
    return f"{phrase} on route {subject.removeprefix('route:')}"


__all__ = ["IncidentEngine", "IncidentEvent", "failover_of", "touched_subjects"]
