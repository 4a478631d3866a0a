"""Running the app under uvicorn (uvloop + httptools) with a graceful SIGTERM.

On SIGTERM readiness fails at once, the listening socket closes (no new connections), and
running streams get ``server.shutdown_grace_s`` to finish before the process exits.

``serve`` is one process. ``serve_workers`` is N of them on one port (``supervisor``): each
worker (``run_worker``) is that same server on its own ``SO_REUSEPORT`` socket, with health
shared through the store (``health.shared``) and its pid in an ``x-ridethrough-worker``
response header, so an operator can tell which process answered.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import uvicorn

from ridethrough.app import build_app
from ridethrough.config import Config
from ridethrough.errors import RidethroughError
from ridethrough.gateway import Gateway

log = logging.getLogger("ridethrough")
WORKER_HEADER = b"x-ridethrough-worker"


class BindRefused(RidethroughError):
    """``serve`` would expose the provider keys: a public address without gateway keys."""

    code = "bind_refused"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback
                       for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def check_bind(cfg: Config, host: str) -> None:
    """Without gateway keys, anyone who can reach the port spends our provider keys."""
    if not cfg.server.gateway_keys and not is_loopback(host):
        raise BindRefused(
            f"refusing to listen on {host}: no server.gateway_keys are configured, so only "
            "127.0.0.1 is allowed (add a key made with `ridethrough hash-key`)")


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.gateway.draining = True
        super().handle_exit(sig, frame)


def configure_logging(level: str = "info") -> None:
    root = logging.getLogger("ridethrough")
    if root.handlers:
        return
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(err)
    root.setLevel(level.upper())
    access = logging.getLogger("ridethrough.access")
    out = logging.StreamHandler(sys.stdout)
    out.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(out)
    access.propagate = False


def _uvicorn_config(app: Any, cfg: Config, host: str, port: int,
                    log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, loop="uvloop", http="httptools", lifespan="on",
        log_level=log_level, access_log=False, server_header=False, date_header=False,
        # uvicorn annotates this `int | None` but only passes it to asyncio.timeout(), which
        # takes seconds as a float; truncating would turn a 0.5 s grace into none.
        timeout_graceful_shutdown=cfg.server.shutdown_grace_s,  # type: ignore[arg-type]
        timeout_keep_alive=30,
        # We are the first hop; X-Forwarded-* rewriting cost time per request for nothing.
        proxy_headers=False,
    )


def tune_gc() -> None:
    """Freeze what start-up allocated and collect less often.

    Cyclic GC passes over the start-up heap (config, SDK-sized libraries, the app) paused the
    loop for milliseconds and made the p99 at 16 connections (docs/performance.md). Request
    objects are short-lived and acyclic, so fewer, smaller collections lose nothing.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def make_server(cfg: Config, host: str, port: int, *,
                log_level: str = "warning") -> tuple[_DrainingServer, Gateway]:
    check_bind(cfg, host)
    gw = Gateway(cfg)
    app = build_app(gateway=gw)
    return _DrainingServer(_uvicorn_config(app, cfg, host, port, log_level), gw), gw


def serve(cfg: Config, host: str, port: int) -> None:
    server, _ = make_server(cfg, host, port)
    tune_gc()
    server.run()


# -- several workers ------------------------------------------------------------------------

def _bind(host: str, port: int, *, listen: bool) -> socket.socket:
    family, type_, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        if listen:
            sock.listen(2048)
            sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, not listening, socket that holds the port for the workers' ``SO_REUSEPORT``
    sockets (and resolves port 0). It takes no connections: with no worker listening, a
    connection is refused. A plain bind first, so a port some other program (or another
    gateway's workers) listens on is refused rather than silently shared. (``SO_REUSEADDR``
    on the reservation too: without it, TIME_WAIT sockets of a previous single-process run
    would block a restart for a minute.)"""
    family, type_, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, type_, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(addr)
        if port == 0:
            port = probe.getsockname()[1]
    return _bind(host, port, listen=False)


class WorkerHeader:
    """ASGI wrapper: every response says which worker process answered it."""

    def __init__(self, app: Any, value: str) -> None:
        self.app = app
        self.value = value.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_tagged(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (WORKER_HEADER, self.value)]}
            await send(message)

        await self.app(scope, receive, send_tagged)


class _WorkerServer(_DrainingServer):
    def __init__(self, config: uvicorn.Config, gateway: Gateway,
                 on_started: Callable[[], None]) -> None:
        super().__init__(config, gateway)
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.on_started()


def _exit_with_parent(server: _DrainingServer) -> None:
    """A worker whose supervisor vanished (SIGKILL) drains and exits instead of lingering."""
    parent = os.getppid()

    def watch() -> None:
        while not server.should_exit:
            time.sleep(1.0)
            if os.getppid() != parent:
                log.error("supervisor %d is gone; this worker drains and exits", parent)
                server.handle_exit(signal.SIGTERM, None)
                return

    threading.Thread(target=watch, name="ridethrough-parent-watch", daemon=True).start()


def run_worker(cfg: Config, host: str, port: int, ident: Any, ready: Any) -> None:
    """One worker process (the target of the supervisor's spawn)."""
    from ridethrough.health import default_store_path, install

    configure_logging()
    sock = _bind(host, port, listen=True)
    gw = Gateway(cfg)
    # Health first, as one of several workers; build_app's own install() then finds it.
    install(gw, store_path=default_store_path(cfg.server.data_dir), shared=ident)
    app = WorkerHeader(build_app(gateway=gw), str(os.getpid()))
    server = _WorkerServer(_uvicorn_config(app, cfg, host, port), gw, ready.set)
    _exit_with_parent(server)
    tune_gc()
    server.run(sockets=[sock])


def serve_workers(cfg: Config, host: str, port: int, workers: int, *,
                  announce: Callable[[int], None] = lambda port: None) -> int:
    """Run ``workers`` gateway processes on one port until SIGTERM/SIGINT; the exit code."""
    from ridethrough.health.shared import SharedIdentity
    from ridethrough.supervisor import Supervisor

    check_bind(cfg, host)
    reservation = reserve_port(host, port)
    port = reservation.getsockname()[1]
    session, started_at = uuid.uuid4().hex, time.time()
    ctx = multiprocessing.get_context("spawn")  # no forked event loops, locks or threads

    def start(slot: int, ready: Any) -> Any:
        ident = SharedIdentity(slot, workers, session, started_at)
        p = ctx.Process(target=run_worker, args=(cfg, host, port, ident, ready),
                        name=f"ridethrough-worker-{slot}")
        p.start()
        return p

    announce(port)
    try:
        return Supervisor(workers, start, ctx.Event,
                          stop_timeout_s=cfg.server.shutdown_grace_s + 15).run()
    finally:
        reservation.close()
