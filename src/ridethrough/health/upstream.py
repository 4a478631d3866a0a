"""Polling providers' own status pages, to show their word beside ours.

Off by default: it reaches the internet, and status pages trail real failures by 10–45
minutes (shared/outages.md), so they can only *confirm* what our own traffic already shows.
An unreachable or unparsable page is displayed as such and never opens an incident.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import orjson

from ridethrough.config import StatusPagesConfig
from ridethrough.health.statuspage_parse import (
    UpstreamFormatError,
    UpstreamSummary,
    judge_upstream,
    match_components,
    parse_summary,
)

log = logging.getLogger("ridethrough.health")


@dataclass(slots=True)
class UpstreamView:
    provider: str
    url: str
    checked_at: float
    ok: bool
    error: str | None = None
    summary: UpstreamSummary | None = None   # the last good one, even after an error
    fetched_at: float | None = None          # when that summary was fetched
    bad: bool = False
    text: str = ""
    missing: list[str] = field(default_factory=list)   # configured names not found upstream


def summary_url(url: str) -> str:
    return url if url.endswith(".json") else url.rstrip("/") + "/api/v2/summary.json"


class UpstreamPoller:
    def __init__(self, cfg: StatusPagesConfig, clock: Callable[[], float],
                 on_view: Callable[[UpstreamView], None] = lambda view: None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.on_view = on_view
        self.views: dict[str, UpstreamView] = {}
        self._session: aiohttp.ClientSession | None = None

    async def poll_once(self) -> list[UpstreamView]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"user-agent": "ridethrough-health", "accept": "application/json"})
        views = await asyncio.gather(*(self.fetch(p, u) for p, u in self.cfg.pages.items()))
        for view in views:
            self.views[view.provider] = view
            try:
                self.on_view(view)
            except Exception:
                log.exception("upstream status listener failed")
        return list(views)

    async def fetch(self, provider: str, url: str) -> UpstreamView:
        now = self.clock()
        previous = self.views.get(provider)
        names = self.cfg.components.get(provider, [])
        try:
            assert self._session is not None
            timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_s)
            async with self._session.get(summary_url(url), timeout=timeout) as resp:
                if resp.status != 200:
                    raise UpstreamFormatError(f"HTTP {resp.status}")
                summary = parse_summary(orjson.loads(await resp.read()))
        except (aiohttp.ClientError, TimeoutError, OSError, UpstreamFormatError,
                orjson.JSONDecodeError) as e:
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            log.info("status page of %s unreachable: %s", provider, error)
            return UpstreamView(provider, url, now, False, error,
                                previous.summary if previous else None,
                                previous.fetched_at if previous else None,
                                text="status page unreachable")
        bad, text = judge_upstream(summary, names)
        _, missing = match_components(summary, names)
        return UpstreamView(provider, url, now, True, None, summary, now, bad, text, missing)

    async def run(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:
                log.exception("status page poll failed")
            await sleep(self.cfg.interval_s)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
