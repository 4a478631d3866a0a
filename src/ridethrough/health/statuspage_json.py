"""Statuspage v2 objects (page, status, component, incident), built from our own state.

Any tool that can watch an Atlassian Statuspage can watch ridethrough, so the shapes follow
shared/statuspage.md field by field. Our own extras (requests affected and saved, the
subject, the post-mortem) sit under one ``ridethrough`` key so they cannot collide with a
future Statuspage field. Pure functions: the JSON endpoints, the webhooks and the tests
all build the same objects the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ridethrough.health.catalog import Catalog, Component
from ridethrough.health.incident_model import Incident, IncidentUpdate
from ridethrough.health.status import INDICATOR_TEXT, page_indicator

StatusOf = Callable[[str], str]


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{int((ts % 1) * 1000):03d}Z"


def page_id_for(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def page_obj(page_id: str, name: str, url: str, updated_at: float) -> dict[str, Any]:
    return {"id": page_id, "name": name, "url": url, "time_zone": "Etc/UTC",
            "updated_at": iso(updated_at)}


def status_obj(indicator: str) -> dict[str, str]:
    return {"indicator": indicator, "description": INDICATOR_TEXT.get(indicator, indicator)}


def component_obj(c: Component, catalog: Catalog, status: str, page_id: str,
                  updated_at: float) -> dict[str, Any]:
    group_id = catalog.components[c.group_key].id if c.group_key in catalog.components else None
    obj: dict[str, Any] = {
        "id": c.id, "page_id": page_id, "group_id": group_id, "group": c.is_group,
        "name": c.name, "description": c.description, "status": status,
        "position": c.position, "showcase": True, "only_show_if_degraded": False,
        "start_date": datetime.fromtimestamp(catalog.created_at, UTC).strftime("%Y-%m-%d"),
        "created_at": iso(catalog.created_at), "updated_at": iso(updated_at),
    }
    if c.is_group:
        obj["components"] = [ch.id for ch in catalog.children(c.key)]
    return obj


def components_list(catalog: Catalog, status_of: StatusOf, since_of: Callable[[str], float],
                    page_id: str) -> list[dict[str, Any]]:
    return [component_obj(c, catalog, status_of(c.key), page_id, since_of(c.key))
            for c in sorted(catalog.components.values(), key=lambda c: c.position)]


def update_obj(u: IncidentUpdate) -> dict[str, Any]:
    return {
        "id": u.id, "incident_id": u.incident_id, "status": u.status, "body": u.body,
        "created_at": iso(u.created_at), "updated_at": iso(u.created_at),
        "display_at": iso(u.created_at), "deliver_notifications": True,
        "affected_components": [dict(a) for a in u.affected] if u.affected else None,
    }


def incident_obj(inc: Incident, catalog: Catalog, status_of: StatusOf, page_id: str,
                 base_url: str, now: float) -> dict[str, Any]:
    comps = [component_obj(catalog.components[k], catalog, status_of(k), page_id, inc.updated_at)
             for k in inc.components if k in catalog.components]
    return {
        "id": inc.id, "page_id": page_id, "name": inc.name, "status": inc.status,
        "impact": inc.impact, "created_at": iso(inc.created_at), "updated_at": iso(inc.updated_at),
        "started_at": iso(inc.started_at), "monitoring_at": iso(inc.monitoring_at),
        "resolved_at": iso(inc.resolved_at),
        "shortlink": f"{base_url.rstrip('/')}/status#incident-{inc.id}",
        "components": comps,
        "incident_updates": [update_obj(u) for u in reversed(inc.updates)],  # newest first
        "postmortem_body": inc.postmortem,
        "postmortem_published_at": iso(inc.postmortem_at),
        "ridethrough": {
            "subject": inc.subject, "ended_at": iso(inc.ended_at),
            "duration_s": round(inc.duration_s(now), 1),
            "requests_affected": inc.requests_affected, "requests_saved": inc.requests_saved,
            "failovers": list(inc.failovers), "confirmed_by_provider": inc.confirmed,
            "provider_note": inc.upstream_note,
        },
    }


def indicator_for(catalog: Catalog, status_of: StatusOf, incidents: list[Incident]) -> str:
    return page_indicator((status_of(c.key) for c in catalog.leaves()),
                          (i.impact for i in incidents if i.unresolved))


def summary_obj(page: dict[str, Any], indicator: str, components: list[dict[str, Any]],
                unresolved: list[dict[str, Any]]) -> dict[str, Any]:
    return {"page": page, "status": status_obj(indicator), "components": components,
            "incidents": unresolved, "scheduled_maintenances": []}
