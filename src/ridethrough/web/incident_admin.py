"""Operator endpoints for incidents: list them, add a note, publish a post-mortem.

The engine writes the timeline by itself; people add what it cannot know (the cause, what
was done, what changes). Admin key required, like every /admin endpoint. With several
workers any of them takes the call and the leading worker applies it (see
``health.shared``), so the answer comes once the change is published.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ridethrough.api.admin import require_admin
from ridethrough.api.body import read_json
from ridethrough.errors import InvalidRequest, NotFound, RidethroughError
from ridethrough.health import statuspage_json as v2
from ridethrough.health.incident_model import ALL_STATUSES, Incident
from ridethrough.web.api import base_url, incident_objs, json

if TYPE_CHECKING:
    from ridethrough.gateway import Gateway
    from ridethrough.health.reader import StatusSource

MAX_BODY = 64 * 1024


def _error(e: RidethroughError) -> JSONResponse:
    return JSONResponse({"error": {"message": e.message, "type": "admin_error"}},
                        status_code=e.status)


class IncidentAdmin:
    def __init__(self, svc: StatusSource, gw: Gateway) -> None:
        self.svc = svc
        self.gw = gw   # its admin keys

    async def _find(self, incident_id: str) -> Incident:
        inc = await self.svc.find_incident(incident_id)
        if inc is None:
            raise NotFound(f"no incident {incident_id!r} (see GET /admin/incidents)")
        return inc

    async def _body(self, request: Request) -> dict[str, Any]:
        body = await read_json(request, MAX_BODY)
        if not isinstance(body, dict) or not isinstance(body.get("body"), str) \
                or not body["body"].strip():
            raise InvalidRequest('body must be a JSON object with a non-empty "body" string')
        return body

    async def _obj(self, request: Request, inc: Incident) -> Response:
        svc = self.svc
        view = await svc.view_async()
        return json(v2.incident_obj(inc, view.catalog, view.status_of, svc.page.id,
                                    base_url(svc, request), view.now))

    async def list(self, request: Request) -> Response:
        denied = require_admin(self.gw, request)
        if denied:
            return denied
        view = await self.svc.view_async()
        return json({"incidents": incident_objs(self.svc, view, request)})

    async def note(self, request: Request) -> Response:
        denied = require_admin(self.gw, request)
        if denied:
            return denied
        try:
            inc = await self._find(request.path_params["incident_id"])
            body = await self._body(request)
            status = body.get("status")
            if status is not None and status not in ALL_STATUSES[:4]:
                raise InvalidRequest("status must be investigating, identified, monitoring or resolved")
            inc = await self.svc.add_note(inc, body["body"].strip(), status)
        except RidethroughError as e:
            return _error(e)
        return await self._obj(request, inc)

    async def postmortem(self, request: Request) -> Response:
        denied = require_admin(self.gw, request)
        if denied:
            return denied
        try:
            inc = await self._find(request.path_params["incident_id"])
            body = await self._body(request)
            inc = await self.svc.set_postmortem(inc, body["body"].strip())
        except RidethroughError as e:
            return _error(e)
        return await self._obj(request, inc)
