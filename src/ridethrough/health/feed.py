"""What the incident engine needs from requests another worker served, in a few numbers.

The engine counts, per subject, the requests that ran into its failure (and how many were
saved) and notes where traffic was moved. A worker that is not the leader keeps those as a
``FeedBatch`` between ticks and writes it to the store's feed; the leader reads every
worker's batches in order and applies them, so an incident's "N requests affected, M saved
by failover" counts the whole gateway, not one process. Operators' notes reach the leader
the same way (``command``), since only the leader may change an incident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ridethrough.health.incidents import IncidentEngine, failover_of, touched_subjects
from ridethrough.records import RequestRecord

KIND_BATCH = "batch"
KIND_NOTE = "note"
KIND_POSTMORTEM = "postmortem"


@dataclass(slots=True)
class FeedBatch:
    counts: dict[str, list[int]] = field(default_factory=dict)     # subject → [affected, saved]
    failovers: list[list[str]] = field(default_factory=list)        # [route, first, dest, tier]

    @property
    def empty(self) -> bool:
        return not self.counts and not self.failovers

    def add(self, record: RequestRecord, first_target: str | None) -> None:
        saved = int(record.outcome == "ok")
        for subject in touched_subjects(record):
            c = self.counts.setdefault(subject, [0, 0])
            c[0] += 1
            c[1] += saved
        moved = failover_of(record, first_target)
        if moved is not None and first_target is not None:
            entry = [record.route, first_target, moved[0], moved[1]]
            if entry not in self.failovers:
                self.failovers.append(entry)

    def merge(self, other: FeedBatch) -> None:
        for subject, (affected, saved) in other.counts.items():
            c = self.counts.setdefault(subject, [0, 0])
            c[0] += affected
            c[1] += saved
        for entry in other.failovers:
            if entry not in self.failovers:
                self.failovers.append(entry)

    def apply(self, engine: IncidentEngine, now: float) -> None:
        for subject, (affected, saved) in sorted(self.counts.items()):
            engine.count_requests(subject, affected, saved)
        for route, first, dest, tier in self.failovers:
            engine.note_failover(route, first, dest, tier, now)

    def to_json(self) -> dict[str, Any]:
        return {"kind": KIND_BATCH, "counts": self.counts, "failovers": self.failovers}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FeedBatch:
        return cls({str(k): [int(v[0]), int(v[1])] for k, v in d.get("counts", {}).items()},
                   [[str(x) for x in e] for e in d.get("failovers", [])])


def note_command(incident_id: str, update_id: str, body: str, status: str | None) -> dict[str, Any]:
    return {"kind": KIND_NOTE, "incident_id": incident_id, "update_id": update_id,
            "body": body, "status": status}


def postmortem_command(incident_id: str, body: str) -> dict[str, Any]:
    return {"kind": KIND_POSTMORTEM, "incident_id": incident_id, "body": body}
