"""Every URL of the status page, its JSON, feeds, badges, /metrics and the incident admin
API, in one list that ``app.py`` mounts on what ``health.install`` returned."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from ridethrough.web.api import PublicApi
from ridethrough.web.incident_admin import IncidentAdmin

if TYPE_CHECKING:
    from ridethrough.gateway import Gateway
    from ridethrough.health.reader import StatusSource


def build_routes(source: StatusSource, gw: Gateway) -> list[Route]:
    api, admin = PublicApi(source, cache_stats=gw.tiers.stats), IncidentAdmin(source, gw)
    v2 = "/api/v2"
    get = ["GET"]
    return [
        Route("/status", api.page, methods=get),
        Route("/status/", api.page, methods=get),
        Route(f"{v2}/summary.json", api.summary, methods=get),
        Route(f"{v2}/status.json", api.status, methods=get),
        Route(f"{v2}/components.json", api.components, methods=get),
        Route(f"{v2}/incidents.json", api.incidents, methods=get),
        Route(f"{v2}/incidents/unresolved.json", api.unresolved, methods=get),
        Route(f"{v2}/scheduled-maintenances.json", api.maintenances, methods=get),
        Route(f"{v2}/scheduled-maintenances/upcoming.json", api.maintenances, methods=get),
        Route(f"{v2}/scheduled-maintenances/active.json", api.maintenances, methods=get),
        Route("/api/ridethrough/health.json", api.health, methods=get),
        Route("/history.atom", api.atom, methods=get),
        Route("/history.rss", api.rss, methods=get),
        Route("/badge/{ref:path}", api.badge, methods=get),
        Route("/metrics", api.metrics, methods=get),
        Route("/admin/incidents", admin.list, methods=get),
        Route("/admin/incidents/{incident_id}/notes", admin.note, methods=["POST"]),
        Route("/admin/incidents/{incident_id}/postmortem", admin.postmortem, methods=["POST"]),
    ]
