"""Reading a provider's Statuspage v2 ``summary.json`` — and the imitations of it.

Providers move between status platforms (OpenAI went from Atlassian Statuspage to
incident.io): component ids change, fields go missing, statuses get new spellings. So this
parser matches components by *name*, treats every field as optional, maps unknown statuses
to ``unknown`` instead of failing, and never parses the free-text description. Pure
functions: the fixtures in the tests replay real-shaped payloads through them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ridethrough.errors import RidethroughError
from ridethrough.health.status import DEGRADED, MAINTENANCE, MAJOR, OPERATIONAL, PARTIAL, severity

KNOWN = {OPERATIONAL, DEGRADED, PARTIAL, MAJOR, MAINTENANCE}
SYNONYMS = {
    "degraded": DEGRADED, "degraded_performance": DEGRADED, "partial": PARTIAL,
    "partial_outage": PARTIAL, "full_outage": MAJOR, "outage": MAJOR, "major": MAJOR,
    "down": MAJOR, "maintenance": MAINTENANCE, "under_maintenance": MAINTENANCE,
    "up": OPERATIONAL, "ok": OPERATIONAL, "operational": OPERATIONAL,
}
INDICATORS = {"none", "minor", "major", "critical", "maintenance"}


class UpstreamFormatError(RidethroughError):
    """A provider's status page answered, but not with a Statuspage-like summary."""

    code = "upstream_status_page_format"


@dataclass(slots=True)
class UpstreamComponent:
    name: str
    status: str                 # normalised; "unknown" when unrecognised
    raw_status: str | None = None
    id: str | None = None
    group: bool = False
    group_id: str | None = None


@dataclass(slots=True)
class UpstreamIncident:
    name: str
    status: str
    impact: str
    id: str | None = None
    shortlink: str | None = None
    started_at: float | None = None
    updated_at: float | None = None
    components: list[str] = field(default_factory=list)     # names
    latest_update: str | None = None


@dataclass(slots=True)
class UpstreamSummary:
    page_name: str | None = None
    page_url: str | None = None
    updated_at: float | None = None
    indicator: str = "unknown"
    description: str | None = None
    components: list[UpstreamComponent] = field(default_factory=list)
    incidents: list[UpstreamIncident] = field(default_factory=list)
    scheduled: list[UpstreamIncident] = field(default_factory=list)


def norm_status(raw: Any) -> str:
    if not isinstance(raw, str):
        return "unknown"
    s = raw.strip().lower().replace(" ", "_").replace("-", "_")
    return s if s in KNOWN else SYNONYMS.get(s, "unknown")


def parse_time(raw: Any) -> float | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        return None


def _str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    return v if isinstance(v, str) else None


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _dicts(v: Any) -> list[dict[str, Any]]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _incident(d: dict[str, Any]) -> UpstreamIncident:
    names = []
    for c in _dicts(d.get("components")):
        if isinstance(c.get("name"), str):
            names.append(c["name"])
    updates = _dicts(d.get("incident_updates"))
    updates.sort(key=lambda u: parse_time(u.get("created_at")) or 0.0, reverse=True)
    return UpstreamIncident(
        name=_str(d, "name") or "(untitled incident)",
        status=(_str(d, "status") or "unknown").lower(),
        impact=(_str(d, "impact") or "unknown").lower(),
        id=_str(d, "id"), shortlink=_str(d, "shortlink"),
        started_at=parse_time(d.get("started_at")) or parse_time(d.get("created_at")),
        updated_at=parse_time(d.get("updated_at")),
        components=names,
        latest_update=_str(updates[0], "body") if updates else None,
    )


def parse_summary(data: Any) -> UpstreamSummary:
    if not isinstance(data, dict):
        raise UpstreamFormatError("summary.json is not a JSON object")
    page = _dict(data.get("page"))
    status = _dict(data.get("status"))
    indicator = (_str(status, "indicator") or "unknown").lower()
    out = UpstreamSummary(
        page_name=_str(page, "name"), page_url=_str(page, "url"),
        updated_at=parse_time(page.get("updated_at")),
        indicator=indicator if indicator in INDICATORS else "unknown",
        description=_str(status, "description"),
    )
    for c in _dicts(data.get("components")):
        name = _str(c, "name")
        if not name:
            continue  # nothing to match on
        out.components.append(UpstreamComponent(
            name=name, status=norm_status(c.get("status")), raw_status=_str(c, "status"),
            id=_str(c, "id"), group=bool(c.get("group")), group_id=_str(c, "group_id")))
    out.incidents = [_incident(i) for i in _dicts(data.get("incidents"))]
    out.scheduled = [_incident(i) for i in _dicts(data.get("scheduled_maintenances"))]
    return out


def _norm_name(name: str) -> str:
    return " ".join(name.lower().split())


def match_components(summary: UpstreamSummary, names: list[str]) -> tuple[
        dict[str, UpstreamComponent], list[str]]:
    """Configured names → upstream components: exact (case/space-insensitive) first, then
    an upstream name containing the configured one ("Claude API" ~ "Claude API (api…)")."""
    found: dict[str, UpstreamComponent] = {}
    missing: list[str] = []
    for wanted in names:
        w = _norm_name(wanted)
        hit = next((c for c in summary.components if _norm_name(c.name) == w), None)
        if hit is None:
            hit = next((c for c in summary.components if w in _norm_name(c.name)), None)
        if hit is None:
            missing.append(wanted)
        else:
            found[wanted] = hit
    return found, missing


def judge_upstream(summary: UpstreamSummary, names: list[str]) -> tuple[bool, str]:
    """(does the provider's own page say something is wrong, in a few words)."""
    open_incidents = [i for i in summary.incidents if i.status not in ("resolved", "postmortem")]
    if names:
        found, _ = match_components(summary, names)
        bad = {n: c for n, c in found.items() if severity(c.status) > 0}
        relevant = [i for i in open_incidents
                    if not i.components or any(_norm_name(c.name) in map(_norm_name, i.components)
                                               for c in found.values())]
        if bad or (relevant and found):
            parts = [f"{c.name} {c.status.replace('_', ' ')}" for c in bad.values()]
            parts += [f"“{i.name}” ({i.status})" for i in relevant[:2]]
            return True, "; ".join(parts)
        return False, "components operational"
    if open_incidents:
        return True, "; ".join(f"“{i.name}” ({i.status})" for i in open_incidents[:2])
    if summary.indicator in ("minor", "major", "critical"):
        return True, summary.description or f"indicator {summary.indicator}"
    return False, summary.description or "no problem reported"
