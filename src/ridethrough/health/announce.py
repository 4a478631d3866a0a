"""Incident and component changes, announced to the operator's webhooks as they happen.

The incident engine and the monitor fire listeners; this turns each event into the two
payload shapes of ``webhooks`` (Statuspage's and Slack's) and queues them on the
``Notifier``. It runs wherever judging runs: the single process, or the leading worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ridethrough.health import statuspage_json as v2
from ridethrough.health.catalog import Catalog, Component
from ridethrough.health.incident_model import Incident, new_id
from ridethrough.health.incidents import IncidentEngine, IncidentEvent
from ridethrough.health.monitor import HealthMonitor
from ridethrough.health.reader import PageInfo
from ridethrough.health.webhooks import (
    Notifier,
    slack_component,
    slack_incident,
    statuspage_component,
    statuspage_incident,
)


class Announcer:
    def __init__(self, page: PageInfo, catalog: Catalog, monitor: HealthMonitor,
                 engine: IncidentEngine, notifier: Notifier, clock: Callable[[], float]) -> None:
        self.page = page
        self.catalog = catalog
        self.monitor = monitor
        self.engine = engine
        self.notifier = notifier
        self.clock = clock
        engine.listeners.append(self.on_incident)
        monitor.listeners.append(self.on_component)

    def page_obj(self) -> dict[str, Any]:
        indicator = v2.indicator_for(self.catalog, self.monitor.status_of,
                                     list(self.engine.open.values()))
        status = v2.status_obj(indicator)
        return {"id": self.page.id, "status_indicator": status["indicator"],
                "status_description": status["description"]}

    def incident_obj(self, inc: Incident) -> dict[str, Any]:
        return v2.incident_obj(inc, self.catalog, self.monitor.status_of, self.page.id,
                               self.page.public_url, self.clock())

    def component_obj(self, c: Component) -> dict[str, Any]:
        return v2.component_obj(c, self.catalog, self.monitor.status_of(c.key), self.page.id,
                                self.monitor.since_of(c.key))

    def on_incident(self, event: IncidentEvent) -> None:
        if not self.notifier.enabled:
            return
        obj = self.incident_obj(event.incident)
        url = self.page.public_url
        self.notifier.enqueue("incident", statuspage_incident(self.page_obj(), obj, url, self.clock()),
                              slack_incident(self.page.name, obj, url))

    def on_component(self, c: Component, old: str, new: str, reasons: list[str], now: float) -> None:
        if not self.notifier.enabled:
            return
        obj = self.component_obj(c)
        self.notifier.enqueue(
            "component", statuspage_component(self.page_obj(), obj, old, new, new_id(),
                                              self.page.public_url, now),
            slack_component(self.page.name, obj, old, new))
