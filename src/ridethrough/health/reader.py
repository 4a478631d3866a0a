"""What the web layer may ask of health: the read interface, and the operators' desk.

The status page, the Statuspage JSON, feeds, badges and /metrics depend on these Protocols
and on the plain values they return (``view.HealthView``, ``catalog.Catalog``), never on
how health is run. A single process (``local.LocalHealth``) and several workers sharing a
store (``shared.SharedHealth``; next, Redis) are interchangeable behind them, so a new way
of sharing health never touches a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ridethrough.health.catalog import Catalog
from ridethrough.health.history import DayBar, LatencyPoint
from ridethrough.health.incident_model import Incident
from ridethrough.health.view import HealthView


@dataclass(frozen=True, slots=True)
class PageInfo:
    """The page's identity, fixed for a run: every renderer names and links it the same."""

    name: str
    id: str
    url: str | None                  # page_url as configured; None: the address it was reached at
    server_url: str                  # where the gateway listens (links in webhooks, if no url)
    status_pages: frozenset[str]     # providers whose own status page is polled

    @property
    def public_url(self) -> str:
        """Where links sent out of band (webhooks) point."""
        return self.url.rstrip("/") if self.url else self.server_url


@dataclass(frozen=True, slots=True)
class History:
    """What the store remembers: daily uptime bars per leaf, latency points per route."""

    bars: dict[str, list[DayBar]]
    latency: dict[str, list[LatencyPoint]]


class HealthReader(Protocol):
    """What every public endpoint reads."""

    @property
    def page(self) -> PageInfo: ...

    @property
    def catalog(self) -> Catalog: ...

    def view(self) -> HealthView:
        """Now (blocking with several workers: a store read)."""
        ...

    async def view_async(self) -> HealthView: ...

    def read_history(self, leaves: list[str], routes: list[str], now: float) -> History:
        """Raises ``store.StoreUnavailable`` when the history cannot be read."""
        ...


class IncidentDesk(Protocol):
    """What operators change by hand: notes and post-mortems on incidents."""

    async def find_incident(self, incident_id: str) -> Incident | None: ...

    async def add_note(self, inc: Incident, body: str, status: str | None) -> Incident: ...

    async def set_postmortem(self, inc: Incident, body: str) -> Incident: ...


class StatusSource(HealthReader, IncidentDesk, Protocol):
    """Everything the web layer's routes need."""
