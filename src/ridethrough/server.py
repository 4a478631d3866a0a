"""Running the app under uvicorn (uvloop + httptools) with a graceful SIGTERM.

On SIGTERM readiness fails at once, the listening socket closes (no new connections), and
running streams get ``server.shutdown_grace_s`` to finish before the process exits.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from typing import Any

import uvicorn

from ridethrough.app import build_app
from ridethrough.config import Config
from ridethrough.gateway import Gateway


class BindRefused(Exception):
    pass


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


def make_server(cfg: Config, host: str, port: int, *, log_level: str = "warning") -> tuple[_DrainingServer, Gateway]:
    check_bind(cfg, host)
    gw = Gateway(cfg)
    app = build_app(gateway=gw)
    config = uvicorn.Config(
        app, host=host, port=port, loop="uvloop", http="httptools", lifespan="on",
        log_level=log_level, access_log=False, server_header=False, date_header=False,
        timeout_graceful_shutdown=cfg.server.shutdown_grace_s, timeout_keep_alive=30,
    )
    return _DrainingServer(config, gw), gw


def serve(cfg: Config, host: str, port: int) -> None:
    server, _ = make_server(cfg, host, port)
    server.run()
