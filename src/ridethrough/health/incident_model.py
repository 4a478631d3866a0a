"""An incident and its timeline, as plain data that round-trips through the store.

Kept apart from the engine that drives them so the web layer, the store and the webhooks can
read incidents without knowing the rules that open and close them.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import asdict, dataclass, field
from typing import Any

INVESTIGATING = "investigating"
IDENTIFIED = "identified"
MONITORING = "monitoring"
RESOLVED = "resolved"
POSTMORTEM = "postmortem"
UNRESOLVED = (INVESTIGATING, IDENTIFIED, MONITORING)
ALL_STATUSES = (INVESTIGATING, IDENTIFIED, MONITORING, RESOLVED, POSTMORTEM)

_ALPHABET = string.ascii_lowercase + string.digits


def new_id() -> str:
    """12 lowercase alphanumerics, the shape of a Statuspage id."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


@dataclass(slots=True)
class IncidentUpdate:
    id: str
    incident_id: str
    status: str
    body: str
    created_at: float
    kind: str = "auto"      # auto | failover | confirmation | note
    affected: list[dict[str, str]] | None = None  # {code, name, old_status, new_status}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IncidentUpdate:
        return cls(**{k: d[k] for k in cls.__slots__ if k in d})  # type: ignore[attr-defined]


@dataclass(slots=True)
class Incident:
    id: str
    subject: str            # "provider:<name>" or "route:<name>"
    name: str
    status: str
    impact: str
    created_at: float
    updated_at: float
    started_at: float       # when the first component went bad (before the incident opened)
    monitoring_at: float | None = None
    resolved_at: float | None = None
    ended_at: float | None = None   # when the components recovered (the outage's end)
    components: list[str] = field(default_factory=list)   # catalog keys
    updates: list[IncidentUpdate] = field(default_factory=list)   # oldest first
    requests_affected: int = 0
    requests_saved: int = 0
    failovers: list[str] = field(default_factory=list)
    confirmed: bool = False
    upstream_note: str | None = None
    postmortem: str | None = None
    postmortem_at: float | None = None

    @property
    def unresolved(self) -> bool:
        return self.status in UNRESOLVED

    def duration_s(self, now: float) -> float:
        end = self.ended_at if self.ended_at is not None else (
            self.resolved_at if self.resolved_at is not None else now)
        return max(0.0, end - self.started_at)

    def latest(self) -> IncidentUpdate | None:
        return self.updates[-1] if self.updates else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Incident:
        known = {k: d[k] for k in cls.__slots__ if k in d and k != "updates"}  # type: ignore[attr-defined]
        inc = cls(**known)
        inc.updates = [IncidentUpdate.from_dict(u) for u in d.get("updates", [])]
        return inc


def human_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
