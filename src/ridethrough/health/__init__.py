"""Health: passive windows, active probes, providers' status pages, automatic incidents.

One entry point for the app, ``install(gw, store_path=..., clock=...)``: it builds the
health service and hooks it onto the gateway (observer, start/close) — the service never
attaches itself. ``app.py`` then mounts the web layer's routes on what ``install`` returned
(a ``reader.StatusSource``). Calling it twice on one gateway returns the same service, so a
test (or a worker process) can install with its own clock or identity before the app is
built.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ridethrough.config import HealthConfig
from ridethrough.config import data_dir as resolve_data_dir
from ridethrough.health.service import HealthService

__all__ = ["HealthService", "attach", "default_store_path", "install"]


def install(gw: Any, *, store_path: str | None, clock: Callable[[], float] = time.time,
            config: HealthConfig | None = None, shared: Any = None) -> HealthService | None:
    """Attach health monitoring to ``gw``; the service, or None when health is disabled.

    ``store_path`` None keeps history in memory only (lost at restart). ``shared`` (a
    ``health.shared.SharedIdentity``) makes this one of several worker processes that read
    as one gateway through the store at ``store_path``.
    """
    existing = getattr(gw, "health", None)
    if isinstance(existing, HealthService):
        return existing
    service = HealthService(gw, store_path=store_path, clock=clock, config=config, shared=shared)
    if not service.cfg.enabled:
        return None
    return attach(gw, service)


def attach(gw: Any, service: HealthService) -> HealthService:
    """Hook ``service`` onto the gateway: it sees every request record and lives as long."""
    gw.observers.append(service.monitor.observe)
    gw.on_start.append(service.start)
    gw.on_close.append(service.close)
    gw.health = service
    return service


def default_store_path(data_dir: str | None) -> str:
    """``<data_dir>/health.sqlite3`` (``config.data_dir`` picks the folder)."""
    return str(resolve_data_dir(data_dir) / "health.sqlite3")
