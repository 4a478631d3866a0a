"""GET /v1/models and POST /v1/messages/count_tokens.

The model list is the gateway's routes (the names clients send), shaped for the caller's
SDK. Token counting is forwarded to an Anthropic-format target of the route when one is
available, else answered with a conservative local estimate that says it is one.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ridethrough.api.body import read_json
from ridethrough.api.completions import authenticate, new_request_id
from ridethrough.api.errors import caller_format, render_error
from ridethrough.errors import RidethroughError, UpstreamError
from ridethrough.gateway import Gateway
from ridethrough.protocols import anthropic as A
from ridethrough.protocols import openai as O
from ridethrough.protocols.features import estimate_tokens


async def list_models(gw: Gateway, request: Request) -> Response:
    headers = {k.lower(): v for k, v in request.headers.items()}
    fmt = caller_format(headers)
    request_id = headers.get("x-request-id") or new_request_id()
    try:
        authenticate(gw, headers)
    except RidethroughError as e:
        return render_error(fmt, e, request_id)
    names = sorted(gw.routes)
    body = A.models_list(names) if fmt == "anthropic" else O.models_list(names)
    return Response(orjson.dumps(body), media_type="application/json",
                    headers={"x-request-id": request_id})


async def count_tokens(gw: Gateway, request: Request) -> Response:
    headers = {k.lower(): v for k, v in request.headers.items()}
    request_id = headers.get("x-request-id") or new_request_id()
    try:
        authenticate(gw, headers)
        body = await read_json(request, gw.cfg.server.max_body_bytes)
        A.validate_count_tokens(body)
        _, targets = gw.route(body["model"])
        for t in targets:
            if t.format != "anthropic" or t.provider.unavailable_reason:
                continue
            if gw.board.get(t.key).availability() is not None:
                continue
            fwd = dict(body, model=t.model)
            h = {"content-type": "application/json"}
            h.update({k: v for k, v in headers.items() if k.startswith("anthropic-")})
            try:
                resp = await t.provider.forward("POST", "/v1/messages/count_tokens", h,
                                                orjson.dumps(fwd), t.timeouts.first_byte)
            except UpstreamError:
                continue
            if resp.status == 200:
                return Response(resp.body, media_type="application/json",
                                headers={"x-request-id": request_id, "x-ridethrough-target": t.key,
                                         "x-ridethrough-token-count": "upstream"})
        n = estimate_tokens(body.get("messages")) + estimate_tokens(body.get("system") or "")
        if body.get("tools"):
            n += estimate_tokens(body["tools"])
        return Response(orjson.dumps({"input_tokens": n, "estimated": True}),
                        media_type="application/json",
                        headers={"x-request-id": request_id, "x-ridethrough-token-count": "estimate"})
    except RidethroughError as e:
        return render_error("anthropic", e, request_id)
