"""Operator endpoints: read every breaker, force a target down (drain) or up, or back to auto.

Every admin endpoint needs an admin key (server.admin_keys, hashed like gateway keys).
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ridethrough.api.body import read_json
from ridethrough.errors import InvalidRequest, NotFound, RidethroughError
from ridethrough.gateway import Gateway
from ridethrough.keys import presented_key


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "admin_error"}}, status_code=status)


def require_admin(gw: Gateway, request: Request) -> JSONResponse | None:
    if not gw.admin_keys.enabled:
        return _error(403, "admin API disabled: no server.admin_keys configured "
                           "(make one with `ridethrough hash-key`)")
    headers = {k.lower(): v for k, v in request.headers.items()}
    if gw.admin_keys.identify(presented_key(headers)) is None:
        return _error(401, "missing or invalid admin key")
    return None


def all_targets(gw: Gateway) -> list[str]:
    seen: dict[str, None] = {}
    for targets in gw.routes.values():
        for t in targets:
            seen[t.key] = None
    for t in gw.last_resorts.values():
        seen[t.key] = None
    return list(seen)


def breaker_table(gw: Gateway) -> list[dict[str, object]]:
    rows = []
    for key in all_targets(gw):
        snap = gw.board.get(key).snapshot()
        provider = gw.providers[key.split("/", 1)[0]]
        snap["provider_unavailable"] = provider.unavailable_reason
        rows.append(snap)
    return rows


async def breakers(gw: Gateway, request: Request) -> Response:
    denied = require_admin(gw, request)
    if denied:
        return denied
    return Response(orjson.dumps({"targets": breaker_table(gw)}), media_type="application/json")


async def set_target_state(gw: Gateway, request: Request) -> Response:
    denied = require_admin(gw, request)
    if denied:
        return denied
    try:
        body = await read_json(request, 65536)
        if not isinstance(body, dict):
            raise InvalidRequest("body must be a JSON object")
        target, mode = body.get("target"), body.get("mode")
        if target not in all_targets(gw):
            raise NotFound(f"unknown target {target!r}; known: {', '.join(all_targets(gw))}")
        if mode not in ("down", "up", "auto"):
            raise InvalidRequest("mode must be 'down' (drain), 'up' (force up) or 'auto'")
    except RidethroughError as e:
        return _error(e.status, e.message)
    forced = None if mode == "auto" else mode
    b = gw.board.force(target, forced)
    out = b.snapshot()
    if gw.health is not None:  # with several workers, the others learn it too
        out.update(await gw.health.share_override(target, forced))
    return Response(orjson.dumps(out), media_type="application/json")
