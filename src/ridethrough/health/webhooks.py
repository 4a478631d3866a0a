"""Webhooks: incident and component changes pushed to the operator's tools.

Two shapes — Statuspage's own webhook payload (so existing receivers work) and a Slack
incoming-webhook message — each signed with HMAC-SHA256 over ``<timestamp>.<body>`` so a
receiver can check both origin and freshness. Delivery happens on background workers from
a bounded queue: a slow or dead receiver costs retries, never a request's latency, and a
flood of events drops the newest and counts them instead of eating memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from ridethrough.config import WebhookConfig
from ridethrough.health.status import LABEL
from ridethrough.health.statuspage_json import iso
from ridethrough.health.tasks import cancel_and_wait

log = logging.getLogger("ridethrough.webhooks")

SIGNATURE_HEADER = "x-ridethrough-signature"
TIMESTAMP_HEADER = "x-ridethrough-timestamp"
EVENT_HEADER = "x-ridethrough-event"
DELIVERY_HEADER = "x-ridethrough-delivery"
DOCS = "https://support.atlassian.com/statuspage/docs/enable-webhook-notifications/"
MAX_BACKOFF_S = 300.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, body: bytes, timestamp: str | None, signature: str | None,
           now: float, tolerance_s: float = 300.0) -> bool:
    """What a receiver does: recompute, compare in constant time, reject stale timestamps."""
    if not timestamp or not signature:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


# -- payloads ------------------------------------------------------------------------------

def _meta(base_url: str, now: float) -> dict[str, Any]:
    return {"unsubscribe": f"{base_url.rstrip('/')}/status", "documentation": DOCS,
            "generated_at": iso(now)}


def statuspage_incident(page: dict[str, Any], incident: dict[str, Any], base_url: str,
                        now: float) -> dict[str, Any]:
    return {"meta": _meta(base_url, now), "page": page, "incident": incident}


def statuspage_component(page: dict[str, Any], component: dict[str, Any], old: str, new: str,
                         update_id: str, base_url: str, now: float) -> dict[str, Any]:
    return {"meta": _meta(base_url, now), "page": page,
            "component_update": {"id": update_id, "component_id": component["id"],
                                 "old_status": old, "new_status": new, "created_at": iso(now)},
            "component": component}


def slack_incident(page_name: str, incident: dict[str, Any], base_url: str) -> dict[str, Any]:
    latest = (incident.get("incident_updates") or [{}])[0]
    status = incident["status"]
    text = f"[{page_name}] {incident['name']} — {status}: {latest.get('body', '')}"
    link = incident.get("shortlink") or f"{base_url.rstrip('/')}/status"
    return {"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"*{incident['name']}*\n*{status.capitalize()}* — "
                                             f"{latest.get('body', '')}"}},
        {"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"impact {incident['impact']} · <{link}|status page>"}]},
    ]}


def slack_component(page_name: str, component: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    text = (f"[{page_name}] {component['name']}: {LABEL.get(old, old)} → {LABEL.get(new, new)}")
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


# -- delivery ------------------------------------------------------------------------------

@dataclass(slots=True)
class Delivery:
    hook: WebhookConfig
    event: str
    body: bytes
    id: str
    attempts: int = 0


@dataclass(slots=True)
class NotifierStats:
    delivered: int = 0
    failed: int = 0          # gave up after max_attempts
    retries: int = 0
    dropped: int = 0         # queue full
    last_error: str | None = None
    by_result: dict[str, int] = field(default_factory=dict)


class Notifier:
    def __init__(self, hooks: list[WebhookConfig], clock: Callable[[], float], *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 queue_max: int = 1000, workers: int = 2,
                 environ: dict[str, str] | None = None) -> None:
        self.hooks = hooks
        self.clock = clock
        self.sleep = sleep
        self.workers = workers
        self.env = os.environ if environ is None else environ
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=queue_max)
        self.stats = NotifierStats()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = 0

    @property
    def enabled(self) -> bool:
        return bool(self.hooks)

    def secret_of(self, hook: WebhookConfig) -> str | None:
        if hook.secret_env:
            return self.env.get(hook.secret_env) or None
        return hook.secret

    def enqueue(self, kind: str, statuspage: dict[str, Any], slack: dict[str, Any]) -> None:
        """Queue one event for every hook that wants it. Never blocks, never raises."""
        for hook in self.hooks:
            if kind not in hook.events:
                continue
            self._seq += 1
            body = orjson.dumps(statuspage if hook.format == "statuspage" else slack)
            d = Delivery(hook, kind, body, f"{int(self.clock())}-{self._seq}")
            try:
                self.queue.put_nowait(d)
            except asyncio.QueueFull:
                self.stats.dropped += 1
                log.warning("webhook queue full: dropped a %s event for %s", kind, hook.url)

    async def deliver(self, d: Delivery) -> bool:
        """POST with retries and exponential backoff; True once a 2xx comes back."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        hook = d.hook
        while d.attempts < hook.max_attempts:
            d.attempts += 1
            ts = int(self.clock())
            headers = {"content-type": "application/json", EVENT_HEADER: d.event,
                       DELIVERY_HEADER: d.id, TIMESTAMP_HEADER: str(ts),
                       "user-agent": "ridethrough-webhooks"}
            secret = self.secret_of(hook)
            if secret:
                headers[SIGNATURE_HEADER] = sign(secret, ts, d.body)
            try:
                async with self._session.post(hook.url, data=d.body, headers=headers,
                                              timeout=aiohttp.ClientTimeout(total=hook.timeout_s)) as r:
                    if 200 <= r.status < 300:
                        self.stats.delivered += 1
                        return True
                    error = f"HTTP {r.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                error = type(e).__name__
            self.stats.last_error = f"{hook.url}: {error}"
            if d.attempts < hook.max_attempts:
                self.stats.retries += 1
                await self.sleep(min(hook.backoff_s * 2 ** (d.attempts - 1), MAX_BACKOFF_S))
        self.stats.failed += 1
        log.warning("webhook %s gave up after %d attempts: %s", hook.url, d.attempts,
                    self.stats.last_error)
        return False

    async def _worker(self) -> None:
        while True:
            d = await self.queue.get()
            try:
                await self.deliver(d)
            except Exception:
                log.exception("webhook delivery crashed")
            finally:
                self.queue.task_done()

    def start(self) -> None:
        if self.enabled and not self._tasks:
            self._tasks = [asyncio.ensure_future(self._worker()) for _ in range(self.workers)]

    async def drain(self) -> None:
        """Deliver everything queued now (tests, and a clean shutdown)."""
        while not self.queue.empty():
            d = self.queue.get_nowait()
            try:
                await self.deliver(d)
            finally:
                self.queue.task_done()

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None
