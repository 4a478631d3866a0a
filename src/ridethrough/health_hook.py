"""What the core knows of the health extension hooked onto a gateway: one Protocol.

``gateway.py`` and the admin API sit below health (health reads the gateway's breakers,
routes and latency), so they must not import it; this is the one call they make on it.
"""

from __future__ import annotations

from typing import Protocol


class HealthHook(Protocol):
    async def share_override(self, target: str, mode: str | None) -> dict[str, str]:
        """An operator forced ``target`` on this process (``mode`` None: back to automatic);
        carry it to every other worker. Returns fields to add to the admin answer."""
        ...
