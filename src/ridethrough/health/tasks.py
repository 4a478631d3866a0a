"""Stopping background tasks: cancel them all, wait for each, log what failed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("ridethrough.health")


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    tasks = list(tasks)
    for t in tasks:
        t.cancel()
    for t in tasks:
        try:
            await t
        except asyncio.CancelledError:
            pass
        except Exception:  # a background task's error must not stop the others' shutdown
            log.exception("background task ended with an error")
