"""Public read endpoints: Statuspage v2 JSON, our fuller health JSON, feeds, badges,
metrics and the HTML page.

No authentication, like any public status page: nothing here reveals keys, prompts or
client identities — only component names, statuses, counts and incident text. Each handler
renders one ``HealthView`` from ``view_async()`` of a ``health.reader.HealthReader``: a
single process first drains pending
records (``tick``), so what it shows is current to the request; one of several workers
reads what the leader published, so every worker shows the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ridethrough.health import statuspage_json as v2
from ridethrough.health.status import LABEL
from ridethrough.web import feeds, metrics, page, svg

if TYPE_CHECKING:
    from ridethrough.health.reader import HealthReader
    from ridethrough.health.view import HealthView

CORS = {"access-control-allow-origin": "*", "cache-control": "no-cache"}


def json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json",
                    headers=CORS)


def base_url(svc: HealthReader, request: Request) -> str:
    return svc.page.url or str(request.base_url).rstrip("/")


def page_obj(svc: HealthReader, view: HealthView, request: Request) -> dict[str, Any]:
    return v2.page_obj(svc.page.id, svc.page.name, base_url(svc, request) + "/status",
                       view.updated_at)


def incident_objs(svc: HealthReader, view: HealthView, request: Request,
                  unresolved: bool = False) -> list[dict[str, Any]]:
    url = base_url(svc, request)
    found = [i for i in view.incidents if i.unresolved or not unresolved][:50]
    return [v2.incident_obj(i, view.catalog, view.status_of, svc.page.id, url, view.now)
            for i in found]


def components(svc: HealthReader, view: HealthView) -> list[dict[str, Any]]:
    return v2.components_list(view.catalog, view.status_of, view.since_of, svc.page.id)


def indicator(view: HealthView) -> str:
    return v2.indicator_for(view.catalog, view.status_of, view.incidents)


class PublicApi:
    """Endpoints bound to one health reader; each renders one ``HealthView``."""

    def __init__(self, svc: HealthReader, *,
                 cache_stats: Callable[[], Awaitable[dict[str, Any] | None]] | None = None) -> None:
        self.svc = svc
        self.cache_stats = cache_stats  # this process's cache counters, for /metrics

    async def summary(self, request: Request) -> Response:
        view = await self.svc.view_async()
        return json(v2.summary_obj(page_obj(self.svc, view, request), indicator(view),
                                   components(self.svc, view),
                                   incident_objs(self.svc, view, request, True)))

    async def status(self, request: Request) -> Response:
        view = await self.svc.view_async()
        return json({"page": page_obj(self.svc, view, request),
                     "status": v2.status_obj(indicator(view))})

    async def components(self, request: Request) -> Response:
        view = await self.svc.view_async()
        return json({"page": page_obj(self.svc, view, request),
                     "components": components(self.svc, view)})

    async def incidents(self, request: Request) -> Response:
        view = await self.svc.view_async()
        return json({"page": page_obj(self.svc, view, request),
                     "incidents": incident_objs(self.svc, view, request)})

    async def unresolved(self, request: Request) -> Response:
        view = await self.svc.view_async()
        return json({"page": page_obj(self.svc, view, request),
                     "incidents": incident_objs(self.svc, view, request, True)})

    async def maintenances(self, request: Request) -> Response:
        view = await self.svc.view_async()
        return json({"page": page_obj(self.svc, view, request), "scheduled_maintenances": []})

    async def health(self, request: Request) -> Response:
        """Our own fuller view: window stats, reasons, provider pages, store, probes."""
        svc = self.svc
        view = await svc.view_async()
        comps = []
        leaves = {c.key for c in view.catalog.leaves()}
        for c in view.catalog.components.values():
            leaf = c.key in leaves
            comps.append({
                "id": c.id, "key": c.key, "name": c.name, "kind": c.kind,
                "group": view.catalog.components[c.group_key].name if c.group_key else None,
                "status": view.status_of(c.key), "since": v2.iso(view.since_of(c.key)),
                "reasons": view.reasons.get(c.key, []) if leaf else [],
                "window": view.windows.get(c.key) if leaf else None,
            })
        pages = [{"provider": p, "url": u.url, "ok": u.ok, "error": u.error,
                  "checked_at": v2.iso(u.checked_at), "problem": u.bad, "text": u.text,
                  "indicator": u.indicator, "description": u.description,
                  "incidents": list(u.incidents), "missing": list(u.missing)}
                 for p, u in sorted(view.upstream.items())]
        h = view.store
        out: dict[str, Any] = {
            "generated_at": v2.iso(view.now), "page": page_obj(svc, view, request),
            "status": v2.status_obj(indicator(view)), "components": comps,
            "provider_status_pages": pages,
            "store": {"ok": h.ok, "error": h.error, "since": v2.iso(h.since),
                      "last_write": v2.iso(h.last_write), "path": h.path, "notes": h.notes},
            "probes": view.probes,
            "webhooks": view.webhooks,
            "records_dropped": view.records_dropped,
            # Learned latency per target and phase, applied timeouts, hedges: per process.
            "latency": [{"worker": labels.get("worker"),
                         **{k: v for k, v in lv.items() if k != "sketches"}}
                        for labels, lv in view.latency],
            "latency_all": view.latency_all,   # several workers: merged exactly
        }
        if view.workers is not None:  # several workers: who serves, who leads
            out["workers"] = view.workers
            lead = view.leader
            out["leader"] = lead and {"worker": lead["slot"], "pid": lead["pid"],
                                      "published_at": v2.iso(lead.get("published_at"))}
        return json(out)

    async def page(self, request: Request) -> Response:
        if request.url.path.endswith("/"):
            return RedirectResponse("/status", status_code=308)
        view = await self.svc.view_async()
        return HTMLResponse(page.render(self.svc, view), headers={"cache-control": "no-cache"})

    async def atom(self, request: Request) -> Response:
        view = await self.svc.view_async()
        body = feeds.atom(self.svc.page.name, base_url(self.svc, request), view.incidents,
                          view.now)
        return Response(body, media_type="application/atom+xml")

    async def rss(self, request: Request) -> Response:
        view = await self.svc.view_async()
        body = feeds.rss(self.svc.page.name, base_url(self.svc, request), view.incidents,
                         view.now)
        return Response(body, media_type="application/rss+xml")

    async def badge(self, request: Request) -> Response:
        ref = request.path_params["ref"].removesuffix(".svg")
        c = self.svc.catalog.find(ref)
        if c is None:
            body = svg.badge(request.query_params.get("label") or ref, "unknown", "#9f9f9f")
            return Response(body, status_code=404, media_type="image/svg+xml", headers=CORS)
        view = await self.svc.view_async()
        status = view.status_of(c.key)
        message = LABEL.get(status, status).lower()
        body = svg.badge(request.query_params.get("label") or c.name, message,
                         svg.STATUS_COLOR.get(status, "#9f9f9f"))
        return Response(body, media_type="image/svg+xml", headers=CORS)

    async def metrics(self, request: Request) -> Response:
        view = await self.svc.view_async()
        cache = await self.cache_stats() if self.cache_stats is not None else None
        return Response(metrics.render(self.svc, view, cache=cache), media_type=metrics.CONTENT_TYPE)
