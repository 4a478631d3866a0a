"""Liveness and readiness, for load balancers.

/healthz says the process is alive — never provider state, or a provider outage would get
every replica ejected at once. /readyz says the config is loaded and we are not draining.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ridethrough.gateway import Gateway


async def healthz(gw: Gateway, request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(gw: Gateway, request: Request) -> JSONResponse:
    if gw.ready and not gw.draining:
        return JSONResponse({"status": "ready", "routes": len(gw.routes)})
    return JSONResponse({"status": "draining" if gw.draining else "starting"}, status_code=503)
