"""Public read endpoints: Statuspage v2 JSON, our fuller health JSON, feeds, badges,
metrics and the HTML page.

No authentication, like any public status page: nothing here reveals keys, prompts or
client identities — only component names, statuses, counts and incident text. Each handler
first drains pending records (``tick``), so what it shows is current to the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ridethrough.health.status import LABEL
from ridethrough.web import feeds, metrics, page, svg, v2

if TYPE_CHECKING:
    from ridethrough.health.service import HealthService

CORS = {"access-control-allow-origin": "*", "cache-control": "no-cache"}


def json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json",
                    headers=CORS)


def base_url(svc: HealthService, request: Request) -> str:
    return svc.cfg.page_url or str(request.base_url).rstrip("/")


def page_obj(svc: HealthService, request: Request) -> dict[str, Any]:
    updated = max([svc.catalog.created_at, *(svc.monitor.since_of(k) for k in svc.monitor.states),
                   *(i.updated_at for i in svc.engine.all())])
    return v2.page_obj(svc.page_id, svc.cfg.page_name, base_url(svc, request) + "/status", updated)


def incident_objs(svc: HealthService, request: Request, unresolved: bool = False) -> list[dict[str, Any]]:
    now, url = svc.clock(), base_url(svc, request)
    found = [i for i in svc.engine.all() if i.unresolved or not unresolved][:50]
    return [v2.incident_obj(i, svc.catalog, svc.monitor.status_of, svc.page_id, url, now)
            for i in found]


def components(svc: HealthService) -> list[dict[str, Any]]:
    return v2.components_list(svc.catalog, svc.monitor.status_of, svc.monitor.since_of, svc.page_id)


def indicator(svc: HealthService) -> str:
    return v2.indicator_for(svc.catalog, svc.monitor.status_of, svc.engine.all())


class PublicApi:
    """Endpoints bound to one health service."""

    def __init__(self, svc: HealthService) -> None:
        self.svc = svc

    async def summary(self, request: Request) -> Response:
        self.svc.tick()
        return json(v2.summary_obj(page_obj(self.svc, request), indicator(self.svc),
                                   components(self.svc), incident_objs(self.svc, request, True)))

    async def status(self, request: Request) -> Response:
        self.svc.tick()
        return json({"page": page_obj(self.svc, request), "status": v2.status_obj(indicator(self.svc))})

    async def components(self, request: Request) -> Response:
        self.svc.tick()
        return json({"page": page_obj(self.svc, request), "components": components(self.svc)})

    async def incidents(self, request: Request) -> Response:
        self.svc.tick()
        return json({"page": page_obj(self.svc, request), "incidents": incident_objs(self.svc, request)})

    async def unresolved(self, request: Request) -> Response:
        self.svc.tick()
        return json({"page": page_obj(self.svc, request),
                     "incidents": incident_objs(self.svc, request, True)})

    async def maintenances(self, request: Request) -> Response:
        return json({"page": page_obj(self.svc, request), "scheduled_maintenances": []})

    async def health(self, request: Request) -> Response:
        """Our own fuller view: window stats, reasons, provider pages, store, probes."""
        svc = self.svc
        svc.tick()
        comps = []
        for c in svc.catalog.components.values():
            state = svc.monitor.states.get(c.key)
            comps.append({
                "id": c.id, "key": c.key, "name": c.name, "kind": c.kind,
                "group": svc.catalog.components[c.group_key].name if c.group_key else None,
                "status": svc.monitor.status_of(c.key), "since": v2.iso(svc.monitor.since_of(c.key)),
                "reasons": state.reasons if state else [],
                "window": state.stats.as_dict() if state else None,
            })
        pages = []
        for p, view in sorted(svc.poller.views.items()):
            s = view.summary
            pages.append({
                "provider": p, "url": view.url, "ok": view.ok, "error": view.error,
                "checked_at": v2.iso(view.checked_at), "problem": view.bad, "text": view.text,
                "indicator": s.indicator if s else None, "description": s.description if s else None,
                "incidents": [i.name for i in s.incidents] if s else [], "missing": view.missing})
        h, st = svc.store_health, svc.notifier.stats
        return json({
            "generated_at": v2.iso(svc.clock()), "page": page_obj(svc, request),
            "status": v2.status_obj(indicator(svc)), "components": comps,
            "provider_status_pages": pages,
            "store": {"ok": h.ok, "error": h.error, "since": v2.iso(h.since),
                      "last_write": v2.iso(h.last_write), "path": svc.store.path, "notes": h.notes},
            "probes": [{"target": r.target, "outcome": r.outcome, "ms": round(r.ms, 1),
                        "detail": r.detail} for r in svc.prober.last.values()],
            "webhooks": {"delivered": st.delivered, "failed": st.failed, "retries": st.retries,
                         "dropped": st.dropped, "last_error": st.last_error},
            "records_dropped": svc.monitor.dropped,
        })

    async def page(self, request: Request) -> Response:
        if request.url.path.endswith("/"):
            return RedirectResponse("/status", status_code=308)
        self.svc.tick()
        return HTMLResponse(page.render(self.svc), headers={"cache-control": "no-cache"})

    async def atom(self, request: Request) -> Response:
        self.svc.tick()
        body = feeds.atom(self.svc.cfg.page_name, base_url(self.svc, request),
                          self.svc.engine.all(), self.svc.clock())
        return Response(body, media_type="application/atom+xml")

    async def rss(self, request: Request) -> Response:
        self.svc.tick()
        body = feeds.rss(self.svc.cfg.page_name, base_url(self.svc, request),
                         self.svc.engine.all(), self.svc.clock())
        return Response(body, media_type="application/rss+xml")

    async def badge(self, request: Request) -> Response:
        ref = request.path_params["ref"].removesuffix(".svg")
        c = self.svc.catalog.find(ref)
        if c is None:
            body = svg.badge(request.query_params.get("label") or ref, "unknown", "#9f9f9f")
            return Response(body, status_code=404, media_type="image/svg+xml", headers=CORS)
        self.svc.tick()
        status = self.svc.monitor.status_of(c.key)
        message = LABEL.get(status, status).lower()
        body = svg.badge(request.query_params.get("label") or c.name, message,
                         svg.STATUS_COLOR.get(status, "#9f9f9f"))
        return Response(body, media_type="image/svg+xml", headers=CORS)

    async def metrics(self, request: Request) -> Response:
        self.svc.tick()
        return Response(metrics.render(self.svc), media_type=metrics.CONTENT_TYPE)
