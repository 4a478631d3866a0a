"""Every other /v1/* path (embeddings, moderations, files…): forwarded without failover.

It goes to the first available provider speaking the caller's format, with the provider's
key in place of the caller's; without one, the caller gets a clear 404 in its own format.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ridethrough.api.body import read_limited
from ridethrough.api.completions import authenticate, new_request_id
from ridethrough.api.errors import caller_format, error_response, render_error
from ridethrough.errors import RidethroughError, UpstreamError
from ridethrough.gateway import Gateway

_CLIENT_HEADERS_KEPT = ("content-type", "accept", "anthropic-version", "anthropic-beta",
                        "openai-beta")


async def forward_other(gw: Gateway, request: Request) -> Response:
    headers = {k.lower(): v for k, v in request.headers.items()}
    path = request.url.path
    fmt = caller_format(headers, path)
    request_id = headers.get("x-request-id") or new_request_id()
    try:
        authenticate(gw, headers)
        provider = next((p for p in gw.providers.values()
                         if p.format == fmt and not p.unavailable_reason and p.kind != "local"), None)
        if provider is None:
            return error_response(fmt, 404, f"{request.method} {path} is not served by this gateway "
                                  f"(no {fmt}-format provider to forward it to)",
                                  request_id=request_id, error_type="not_found_error"
                                  if fmt == "anthropic" else "invalid_request_error",
                                  code="unknown_url")
        body = await read_limited(request, gw.cfg.server.max_body_bytes)
        h = {k: headers[k] for k in _CLIENT_HEADERS_KEPT if k in headers}
        target = path + (f"?{request.url.query}" if request.url.query else "")
        resp = await provider.forward(request.method, target, h, body, 120.0)
    except UpstreamError as e:
        return error_response(fmt, 502, f"forwarding {path} to its provider failed: "
                              f"{e.error_class.value}", request_id=request_id)
    except RidethroughError as e:
        return render_error(fmt, e, request_id)
    if resp.status in (401, 403):
        # Our provider key was refused: that is the gateway's fault, not the caller's.
        return error_response(fmt, 502, f"the provider refused ridethrough's credentials for "
                              f"{path}", request_id=request_id, error_type="api_error")
    out = dict(resp.headers)
    out["x-request-id"] = request_id
    out["x-ridethrough-target"] = provider.name
    ctype = out.pop("content-type", "application/json")
    return Response(resp.body, status_code=resp.status, headers=out, media_type=ctype)


async def not_found(request: Request) -> Response:
    headers = {k.lower(): v for k, v in request.headers.items()}
    fmt = caller_format(headers, request.url.path)
    return error_response(fmt, 404, f"{request.method} {request.url.path} is not an endpoint of "
                          "this gateway", request_id=headers.get("x-request-id") or new_request_id(),
                          error_type="not_found_error", code="unknown_url")
