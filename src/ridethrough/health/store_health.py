"""Whether the history store accepts writes, and since when: shown on the page, never fatal.

Design decision 5: a failing store must not become the outage. Every writer (a single
process's flush, a worker's exchange with the others) reports here, so the log says it once
per change and the page shows the same state whoever wrote last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("ridethrough.health")


@dataclass(slots=True)
class StoreHealth:
    ok: bool = True
    error: str | None = None
    since: float | None = None
    last_write: float | None = None
    notes: list[str] = field(default_factory=list)

    def failed(self, error: str, now: float) -> None:
        if self.ok or self.error != error:
            log.error("health store unavailable (requests unaffected, history not recorded): %s",
                      error)
        if self.ok:
            self.since = now
        self.ok, self.error = False, error

    def succeeded(self, now: float, notes: list[str]) -> None:
        if not self.ok:
            log.warning("health store available again after: %s", self.error)
        self.ok, self.error, self.since, self.last_write = True, None, None, now
        self.notes = list(notes)
