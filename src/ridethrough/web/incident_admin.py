"""Operator endpoints for incidents: list them, add a note, publish a post-mortem.

The engine writes the timeline by itself; people add what it cannot know (the cause, what
was done, what changes). Admin key required, like every /admin endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ridethrough.api.admin import require_admin
from ridethrough.api.body import read_json
from ridethrough.errors import InvalidRequest, NotFound, RidethroughError
from ridethrough.health.incident_model import ALL_STATUSES, Incident
from ridethrough.web.api import base_url, incident_objs, json

if TYPE_CHECKING:
    from ridethrough.health.service import HealthService

MAX_BODY = 64 * 1024


def _error(e: RidethroughError) -> JSONResponse:
    return JSONResponse({"error": {"message": e.message, "type": "admin_error"}},
                        status_code=e.status)


class IncidentAdmin:
    def __init__(self, svc: HealthService) -> None:
        self.svc = svc

    def _find(self, incident_id: str) -> Incident:
        inc = self.svc.engine.find(incident_id)
        if inc is None:
            raise NotFound(f"no incident {incident_id!r} (see GET /admin/incidents)")
        return inc

    async def _body(self, request: Request) -> dict[str, Any]:
        body = await read_json(request, MAX_BODY)
        if not isinstance(body, dict) or not isinstance(body.get("body"), str) \
                or not body["body"].strip():
            raise InvalidRequest('body must be a JSON object with a non-empty "body" string')
        return body

    def _obj(self, request: Request, inc: Incident) -> Response:
        from ridethrough.web import v2

        svc = self.svc
        return json(v2.incident_obj(inc, svc.catalog, svc.monitor.status_of, svc.page_id,
                                    base_url(svc, request), svc.clock()))

    async def list(self, request: Request) -> Response:
        denied = require_admin(self.svc.gw, request)
        if denied:
            return denied
        self.svc.tick()
        return json({"incidents": incident_objs(self.svc, request)})

    async def note(self, request: Request) -> Response:
        denied = require_admin(self.svc.gw, request)
        if denied:
            return denied
        try:
            inc = self._find(request.path_params["incident_id"])
            body = await self._body(request)
            status = body.get("status")
            if status is not None and status not in ALL_STATUSES[:4]:
                raise InvalidRequest("status must be investigating, identified, monitoring or resolved")
        except RidethroughError as e:
            return _error(e)
        self.svc.engine.add_note(inc, body["body"].strip(), status, self.svc.clock())
        await self.svc.flush_async()
        return self._obj(request, inc)

    async def postmortem(self, request: Request) -> Response:
        denied = require_admin(self.svc.gw, request)
        if denied:
            return denied
        try:
            inc = self._find(request.path_params["incident_id"])
            body = await self._body(request)
        except RidethroughError as e:
            return _error(e)
        self.svc.engine.set_postmortem(inc, body["body"].strip(), self.svc.clock())
        await self.svc.flush_async()
        return self._obj(request, inc)
