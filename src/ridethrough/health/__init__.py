"""Health: passive windows, active probes, providers' status pages, automatic incidents.

One entry point for the app, ``install(gw, store_path=..., clock=...)``: it hooks the
health service onto the gateway (observer, start/close) and returns the routes of the
status page, the Statuspage-compatible JSON, feeds, badges, /metrics and the incident admin
API. Calling it twice on one gateway returns the same service's routes, so a test can
install with its own clock before the app is built.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ridethrough.config_base import data_dir as resolve_data_dir
from ridethrough.health.config import HealthConfig, cross_check_health

__all__ = ["HealthConfig", "cross_check_health", "default_store_path", "install"]


def install(gw: Any, *, store_path: str | None, clock: Callable[[], float] = time.time,
            config: HealthConfig | None = None, shared: Any = None) -> list[Any]:
    """Attach health monitoring to ``gw``; return the Starlette routes to mount.

    ``store_path`` None keeps history in memory only (lost at restart). ``shared`` (a
    ``health.shared.SharedIdentity``) makes this one of several worker processes that read
    as one gateway through the store at ``store_path``.
    """
    # Imported here: the service pulls in the web layer, which imports the gateway, which
    # imports the config, which imports this package's config module.
    from ridethrough.health.service import HealthService

    existing = getattr(gw, "health", None)
    if isinstance(existing, HealthService):
        return existing.routes()
    service = HealthService(gw, store_path=store_path, clock=clock, config=config, shared=shared)
    if not service.cfg.enabled:
        return []
    return service.attach().routes()


def default_store_path(data_dir: str | None) -> str:
    """``<data_dir>/health.sqlite3`` (``config_base.data_dir`` picks the folder)."""
    return str(resolve_data_dir(data_dir) / "health.sqlite3")


def __getattr__(name: str) -> Any:
    if name == "HealthService":  # lazily, for the import-cycle reason given in install()
        from ridethrough.health.service import HealthService

        return HealthService
    raise AttributeError(name)
