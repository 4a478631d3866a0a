"""POST /v1/messages and POST /v1/chat/completions: the two doors into the gateway.

Both share one flow — authenticate, read, validate, route, serve, respond — and differ only
in their dialect (validation and error format). Streams go through the commit point in the
executor; if the wait before commit grows long, headers and protocol keep-alives go out
first so load balancers keep the connection open.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ridethrough.api.body import read_json
from ridethrough.api.errors import render_error
from ridethrough.errors import (
    AllAttemptsFailed,
    AuthenticationFailed,
    ClientError,
    NoTargetCanServe,
    RidethroughError,
    UpstreamError,
)
from ridethrough.gateway import Gateway
from ridethrough.keys import presented_key
from ridethrough.protocols import anthropic as A
from ridethrough.protocols import openai as O
from ridethrough.protocols.features import features_of
from ridethrough.protocols.sse import encode_comment, encode_event, in_band_error_frame
from ridethrough.records import RequestRecord
from ridethrough.routing.deadline import Deadline, client_timeout_from_headers
from ridethrough.routing.executor import JsonResult
from ridethrough.routing.fallback import FallbackResult
from ridethrough.routing.request import InboundRequest, request_side
from ridethrough.routing.streams import StreamResult

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
log = logging.getLogger("ridethrough")


@dataclass(frozen=True)
class Dialect:
    format: str
    validate: Callable[[Any], None]


ANTHROPIC = Dialect("anthropic", A.validate_request)
OPENAI = Dialect("openai", O.validate_request)


_ID_PREFIX = "req_" + uuid.uuid4().hex[:12]
_id_counter = itertools.count(1)


def new_request_id() -> str:
    """Unique per process start and request: a random prefix and a counter (uuid4 per request
    showed up in the profile)."""
    return f"{_ID_PREFIX}{next(_id_counter):012x}"


def authenticate(gw: Gateway, headers: dict[str, str]) -> str | None:
    if not gw.keys.enabled:
        return None
    key_id = gw.keys.identify(presented_key(headers))
    if key_id is None:
        raise AuthenticationFailed("missing or invalid gateway key (send it as x-api-key or "
                                   "Authorization: Bearer)")
    return key_id


async def handle(gw: Gateway, request: Request, dialect: Dialect) -> Response:
    # ASGI header names are lower-case already; decoding them here skips Starlette's Headers.
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
    request_id = headers.get("x-request-id") or new_request_id()
    request.scope.setdefault("state", {})["request_id"] = request_id  # for app.server_error
    started = gw.clock()
    req: InboundRequest | None = None
    try:
        key_id = authenticate(gw, headers)
        body = await read_json(request, gw.cfg.server.max_body_bytes, headers)
        with request_side(dialect.format, body):
            dialect.validate(body)
            route_cfg, _ = gw.route(body["model"])
            req = build_request(gw, dialect, body, headers, route_cfg, request_id, key_id, started)
        if req.stream:
            return await _respond_stream(gw, req)
        result = await gw.serve(req)
        if isinstance(result, FallbackResult):
            return _respond_fallback(gw, req, result)
        assert isinstance(result, JsonResult)
        return _respond_json(gw, req, result)
    except RidethroughError as e:
        resp = render_error(dialect.format, e, request_id, _ridethrough_headers(gw, req))
        _emit_failure(gw, req, e, resp.status_code, started, dialect.format, request_id)
        return resp


def build_request(gw: Gateway, dialect: Dialect, body: dict[str, Any], headers: dict[str, str],
                  route_cfg: Any, request_id: str, key_id: str | None, started: float) -> InboundRequest:
    client_timeout = client_timeout_from_headers(headers, gw.cfg.resilience.deadline_margin_s)
    seconds = min(client_timeout, route_cfg.deadline_s) if client_timeout else route_cfg.deadline_s
    fwd: dict[str, str] = {k: headers[k] for k in ("anthropic-beta", "anthropic-version")
                           if k in headers}
    so = body.get("stream_options")
    cache_control = headers.get("cache-control", "").lower()
    return InboundRequest(
        format=dialect.format, body=body, stream=bool(body.get("stream")),
        route_name=body["model"], route=route_cfg,
        features=features_of(dialect.format, body, route_cfg.default_max_tokens),
        deadline=Deadline.start(gw.clock, seconds), request_id=request_id, key_id=key_id,
        headers=fwd,
        client_include_usage=bool(isinstance(so, dict) and so.get("include_usage")),
        no_store="no-store" in cache_control, started_at=started,
    )


def _ridethrough_headers(gw: Gateway, req: InboundRequest | None,
                         target: str | None = None) -> dict[str, str]:
    if req is None:
        return {}
    made, reasons = gw.attempts_summary(req.attempts)
    h = {"x-ridethrough-attempts": str(made)}
    if target:
        h["x-ridethrough-target"] = target
    if reasons:
        h["x-ridethrough-fallback-reason"] = header_text(reasons[:1000])
    return h


def header_text(text: str) -> str:
    """One printable ASCII line: skip reasons quote the client's own input (a tool's type, a
    role), which a header must neither fail to encode nor let break the line."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if c.isascii() and c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def _upstream_id_headers(req: InboundRequest, result: JsonResult | StreamResult) -> dict[str, str]:
    """The provider's request id, for support tickets; the Anthropic SDK reads ``request-id``."""
    rid = result.upstream_request_id
    if not rid:
        return {}
    h = {"x-ridethrough-upstream-request-id": rid}
    if req.format == "anthropic":
        h["request-id"] = rid
    return h


def _degraded(result: JsonResult | StreamResult) -> dict[str, str]:
    return {"x-ridethrough-degraded": "local-model"} if result.target.provider.kind == "local" else {}


def _fallback_frames(req: InboundRequest, result: FallbackResult) -> list[bytes]:
    from ridethrough.protocols.sse import encode_data
    from ridethrough.protocols.synthesize import (
        anthropic_message_to_events,
        openai_completion_to_chunks,
    )

    if req.format == "anthropic":
        return [encode_event(name, data) for name, data in anthropic_message_to_events(result.obj)]
    return [encode_data(c) for c in openai_completion_to_chunks(result.obj,
                                                                include_usage=req.client_include_usage)]


def _respond_fallback(gw: Gateway, req: InboundRequest, result: FallbackResult) -> Response:
    """A cached or static answer, as JSON or as a proper stream in the client's format."""
    h = {"x-request-id": req.request_id, **_ridethrough_headers(gw, req, result.served_by),
         **result.headers}
    _emit(gw, req, "ok", served_by=result.served_by, tier=result.tier)
    if not req.stream:
        return Response(orjson.dumps(result.obj), media_type="application/json", headers=h)
    frames = _fallback_frames(req, result)

    async def replay() -> AsyncIterator[bytes]:
        for frame in frames:
            yield frame

    return StreamingResponse(replay(), headers={**h, **SSE_HEADERS}, media_type="text/event-stream")


def _respond_json(gw: Gateway, req: InboundRequest, result: JsonResult) -> Response:
    h = dict(result.headers)
    h.update(_ridethrough_headers(gw, req, result.target.key))
    h.update(_degraded(result))
    h["x-request-id"] = req.request_id
    h.update(_upstream_id_headers(req, result))
    _emit(gw, req, "ok", served_by=result.target.key, usage=result.usage)
    return _JsonAnswer(result.body, h)


class _JsonAnswer(Response):
    """A 200 with a JSON body, its headers encoded in one pass: Starlette's ``init_headers``
    (a lower-casing and a membership test per header) showed in the per-request profile."""

    media_type = "application/json"

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
               if k.lower() not in _OWN_HEADERS]
        raw.append((b"content-length", str(len(body)).encode()))
        raw.append((b"content-type", b"application/json"))
        self.raw_headers = raw


_OWN_HEADERS = frozenset({"content-length", "content-type"})


async def _respond_stream(gw: Gateway, req: InboundRequest) -> Response:
    task = asyncio.ensure_future(gw.serve(req))
    keepalive = gw.cfg.resilience.commit_keepalive_s
    try:
        done, _ = await asyncio.wait({task}, timeout=keepalive)
    except asyncio.CancelledError:
        await _discard(task)
        raise
    if done:
        result = task.result()  # raises RidethroughError → rendered by the caller
        if isinstance(result, FallbackResult):
            return _respond_fallback(gw, req, result)
        assert isinstance(result, StreamResult)
        h = _stream_headers(gw, req, result)
        ttft = (gw.clock() - req.started_at) * 1000  # the head (first content) leaves now
        return _ClosingStream(_pipe(gw, req, result, with_head=False, ttft=ttft), result.close,
                              headers=h, media_type="text/event-stream", head=b"".join(result.head))
    # The commit point is slow: send headers now and keep the connection alive meanwhile.
    h = {"x-request-id": req.request_id, "x-ridethrough-target": "pending", **SSE_HEADERS}

    return _ClosingStream(_keepalive_then_pipe(gw, req, task, keepalive), lambda: _discard(task),
                          headers=h,
                          media_type="text/event-stream")


async def _discard(task: asyncio.Future[Any]) -> None:
    """Cancel the serving task, or release the stream it already committed to."""
    if not task.done():
        task.cancel()
    elif not task.cancelled() and task.exception() is None and isinstance(task.result(), StreamResult):
        await task.result().close()


class _ClosingStream(StreamingResponse):
    """A streaming response that always releases the upstream, even when the client went
    away before the first byte was sent (the body generator then never runs).

    ``head`` (the frames up to the commit point, first content included) goes out at once,
    in one write, before Starlette sets up the task group that streams the rest and watches
    for a disconnect: that set-up costs a loop iteration or two, which the first token
    should not wait for (docs/performance.md). A client gone by then makes those sends
    no-ops, and the disconnect watcher ends the stream as before.
    """

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], Any], *,
                 head: bytes = b"", **kw: Any) -> None:
        super().__init__(content, **kw)
        self._on_close = on_close
        self._head = head
        self._started = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            if self._head:
                await send({"type": "http.response.start", "status": self.status_code,
                            "headers": self.raw_headers})
                await send({"type": "http.response.body", "body": self._head, "more_body": True})
                self._started = True
            await super().__call__(scope, receive, send)
        finally:
            await self._on_close()

    async def stream_response(self, send: Any) -> None:
        if self._started:  # the head went out already: only the rest
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await super().stream_response(send)


def _stream_headers(gw: Gateway, req: InboundRequest, result: StreamResult) -> dict[str, str]:
    h = {"x-request-id": req.request_id, **SSE_HEADERS,
         **_ridethrough_headers(gw, req, result.target.key), **_degraded(result)}
    h.update(_upstream_id_headers(req, result))
    return h


async def _pipe(gw: Gateway, req: InboundRequest, result: StreamResult, *,
                with_head: bool = True, ttft: float | None = None) -> AsyncIterator[bytes]:
    if ttft is None:
        ttft = (gw.clock() - req.started_at) * 1000
    gw.inflight_streams += 1
    try:
        if with_head:
            for frame in result.head:
                yield frame
        async for frame in result.tail:
            yield frame
    finally:
        gw.inflight_streams -= 1
        ok = result.outcome.get("ok", False)
        cancelled = result.outcome.get("cancelled") or "error" not in result.outcome
        outcome = "ok" if ok else ("cancelled" if cancelled else "stream_error")
        _emit(gw, req, outcome, served_by=result.target.key, ttft_ms=ttft,
              usage=dict(result.outcome.get("usage") or result.relay.usage))


async def _keepalive_then_pipe(gw: Gateway, req: InboundRequest, task: asyncio.Future[Any],
                               interval: float) -> AsyncIterator[bytes]:
    ping = encode_event("ping", {"type": "ping"}) if req.format == "anthropic" \
        else encode_comment("keep-alive")
    try:
        yield ping
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                break
            yield ping
        try:
            result = task.result()
        except RidethroughError as e:
            yield _late_error_frame(req, e)
            _emit_failure(gw, req, e, 200, req.started_at, req.format, req.request_id)
            return
        except Exception:  # a bug of ours, after the headers went out: still a proper ending
            log.exception("serving %s failed after its headers were sent", req.request_id)
            yield in_band_error_frame(req.format, "api_error", "internal error in ridethrough (logged)")
            return
        if isinstance(result, FallbackResult):
            yield encode_comment(f"served-by {result.tier}")
            for frame in _fallback_frames(req, result):
                yield frame
            return
        yield encode_comment(f"served-by {result.target.key}")
        async for frame in _pipe(gw, req, result):
            yield frame
    finally:
        if not task.done():
            task.cancel()


def _late_error_frame(req: InboundRequest, e: RidethroughError) -> bytes:
    if isinstance(e, AllAttemptsFailed):
        summary = "; ".join(f"{a.target}: {a.outcome}" for a in e.attempts)
        return in_band_error_frame(req.format, "overloaded_error",
                                   f"All targets failed. Attempts: {summary}")
    client_side = isinstance(e, (NoTargetCanServe, UpstreamError, ClientError))
    etype = "invalid_request_error" if client_side else "api_error"
    return in_band_error_frame(req.format, etype, e.message)


def _emit_failure(gw: Gateway, req: InboundRequest | None, e: RidethroughError, status: int,
                  started: float, fmt: str, request_id: str) -> None:
    outcome = "error" if isinstance(e, AllAttemptsFailed) else "client_error"
    if req is not None:
        _emit(gw, req, outcome, status=status)
        return
    # Refused before it was read (authentication, the body): no route, no attempts.
    gw.emit(RequestRecord(request_id, "", fmt, False, status, outcome, [],
                          ms=(gw.clock() - started) * 1000))


def _emit(gw: Gateway, req: InboundRequest, outcome: str, *, status: int = 200,
          **detail: Any) -> None:
    """The one access-log record of a request that was read: what happened, who served it,
    how long it took (``detail``: served_by, tier, ttft_ms, usage)."""
    gw.emit(RequestRecord(req.request_id, req.route_name, req.format, req.stream, status, outcome,
                          req.attempts, ms=(gw.clock() - req.started_at) * 1000,
                          key_id=req.key_id, **detail))
