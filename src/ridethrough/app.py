"""Builds the ASGI app from a config; nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import MappingProxyType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ridethrough.api import admin, completions, forward, models, ops
from ridethrough.config import Config
from ridethrough.gateway import Gateway
from ridethrough.health import default_store_path, install
from ridethrough.web.routes import build_routes

Handler = Callable[[Gateway, Request], Awaitable[Response]]
# The two endpoints every AI call hits, and the wire format each speaks.
HOT_PATHS = MappingProxyType({"/v1/messages": completions.ANTHROPIC,
                              "/v1/chat/completions": completions.OPENAI})


def _bind(gw: Gateway, fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await fn(gw, request)

    endpoint.__name__ = fn.__name__
    return endpoint


def build_app(cfg: Config | None = None, *, gateway: Gateway | None = None,
              extra_routes: list[Route] | None = None) -> HotPath:
    if gateway is None:
        if cfg is None:
            raise TypeError("build_app needs a config or a gateway")
        gateway = Gateway(cfg)
    gw = gateway
    health = install(gw, store_path=default_store_path(gw.cfg.server.data_dir))
    health_routes = build_routes(health, gw) if health is not None else []

    async def completion(gw: Gateway, request: Request) -> Response:
        return await completions.handle(gw, request, HOT_PATHS[request.url.path])

    # A POST to a hot path never reaches this router (``HotPath`` answers it first). The
    # routes stay so that any other method gets a 405 rather than /v1/{path}'s forwarding.
    routes = [
        *(Route(path, _bind(gw, completion), methods=["POST"]) for path in HOT_PATHS),
        Route("/v1/messages/count_tokens", _bind(gw, models.count_tokens), methods=["POST"]),
        Route("/v1/models", _bind(gw, models.list_models), methods=["GET"]),
        Route("/healthz", _bind(gw, ops.healthz), methods=["GET"]),
        Route("/readyz", _bind(gw, ops.readyz), methods=["GET"]),
        Route("/admin/breakers", _bind(gw, admin.breakers), methods=["GET"]),
        Route("/admin/targets", _bind(gw, admin.set_target_state), methods=["POST"]),
        *health_routes,
        *(extra_routes or []),
        Route("/v1/{path:path}", _bind(gw, forward.forward_other),
              methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.close()

    async def http_error(request: Request, exc: Any) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            resp = await forward.not_found(request)
            resp.status_code = 405
            return resp
        return await forward.not_found(request)

    async def server_error(request: Request, exc: Exception) -> Response:
        # The last resort: a bug of ours. Never a stack trace to the client; the log has it,
        # under the same request id the client is given.
        import logging

        from ridethrough.api.errors import caller_format, error_response

        headers = {k.lower(): v for k, v in request.headers.items()}
        request_id = request.scope.get("state", {}).get("request_id") \
            or headers.get("x-request-id") or completions.new_request_id()
        logging.getLogger("ridethrough").error("unhandled error on %s (request %s)", request.url.path,
                                               request_id, exc_info=exc)
        return error_response(caller_format(headers, request.url.path), 500,
                              "internal error in ridethrough (logged)", request_id=request_id)

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, 404: http_error,
                                        405: http_error, Exception: server_error})
    app.state.gateway = gw
    return HotPath(app, gw, server_error)


class HotPath:
    """The two endpoints every AI call hits go straight to their handler.

    Starlette's middleware stack and router cost a measurable share of each request (the
    profile in docs/performance.md); everything else still goes through them.
    """

    def __init__(self, app: Starlette, gw: Gateway,
                 on_error: Callable[[Request, Exception], Awaitable[Response]]) -> None:
        self.app = app
        self.gateway = gw
        self._on_error = on_error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # routes, state, … of the Starlette app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            dialect = HOT_PATHS.get(scope["path"])
            if dialect is not None:
                request = Request(scope, receive, send)
                try:
                    response = await completions.handle(self.gateway, request, dialect)
                except Exception as e:  # never a stack trace to the client
                    response = await self._on_error(request, e)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
