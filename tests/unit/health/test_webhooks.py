"""Webhooks: signed, retried with backoff, never blocking — checked by a real receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from ridethrough.config import HealthConfig, WebhookConfig
from ridethrough.gateway import Gateway
from ridethrough.health import attach
from ridethrough.health.service import HealthService
from ridethrough.health.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Notifier,
    sign,
    verify,
)
from ridethrough.routing.clock import FakeClock
from support.health_records import failover, ok, simulated_config

SECRET = "whsec-test-1234"
A, O = "anthropic/claude-sonnet-4-5", "openai/gpt-4o"


@dataclass
class Receiver:
    fail_first: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        call = {"path": request.path, "headers": dict(request.headers), "body": body,
                "valid": verify(SECRET, body, request.headers.get(TIMESTAMP_HEADER),
                                request.headers.get(SIGNATURE_HEADER), time.time())}
        self.calls.append(call)
        if not call["valid"]:
            return web.Response(status=401)
        if len(self.calls) <= self.fail_first:
            return web.Response(status=500)
        self.accepted.append({**call, "json": orjson.loads(body)})
        return web.Response(status=204)


@asynccontextmanager
async def receiver(fail_first: int = 0) -> AsyncIterator[tuple[str, Receiver]]:
    r = Receiver(fail_first)
    app = web.Application()
    app.router.add_post("/{name}", r.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", r
    finally:
        await runner.cleanup()


def test_signature_covers_timestamp_and_body() -> None:
    body = b'{"a":1}'
    sig = sign(SECRET, 1700000000, body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify(SECRET, body, "1700000000", sig, 1700000100)
    assert not verify(SECRET, body + b" ", "1700000000", sig, 1700000100)     # body changed
    assert not verify(SECRET, body, "1700000001", sig, 1700000100)            # timestamp changed
    assert not verify("other", body, "1700000000", sig, 1700000100)           # wrong secret
    assert not verify(SECRET, body, "1700000000", sig, 1700009999)            # replayed later
    assert not verify(SECRET, body, None, sig, 1700000000)


def test_failed_deliveries_are_retried_with_backoff_and_the_same_signature_scheme() -> None:
    async def scenario() -> None:
        async with receiver(fail_first=2) as (url, rx):
            slept: list[float] = []

            async def sleep(s: float) -> None:
                slept.append(s)

            hook = WebhookConfig(url=f"{url}/hook", secret_env="RT_HOOK_SECRET", backoff_s=1.0)
            n = Notifier([hook], time.time, sleep=sleep, environ={"RT_HOOK_SECRET": SECRET})
            n.enqueue("incident", {"incident": {"name": "x"}}, {"text": "x"})
            await n.drain()
            await n.close()
            assert len(rx.calls) == 3 and all(c["valid"] for c in rx.calls)
            assert slept == [1.0, 2.0]                                  # exponential backoff
            assert len({c["headers"][DELIVERY_HEADER] for c in rx.calls}) == 1   # idempotency key
            assert rx.accepted[0]["json"] == {"incident": {"name": "x"}}
            assert rx.accepted[0]["headers"][EVENT_HEADER] == "incident"
            assert (n.stats.delivered, n.stats.retries, n.stats.failed) == (1, 2, 0)
    asyncio.run(scenario())


def test_a_dead_receiver_is_given_up_on_and_a_full_queue_drops_instead_of_blocking() -> None:
    async def scenario() -> None:
        async def sleep(s: float) -> None:
            return None

        dead = WebhookConfig(url="http://127.0.0.1:9/never", secret=SECRET, max_attempts=3)
        n = Notifier([dead], time.time, sleep=sleep, queue_max=2)
        for _ in range(5):
            n.enqueue("incident", {}, {})                  # returns at once, always
        assert n.stats.dropped == 3 and n.queue.qsize() == 2
        await n.drain()
        await n.close()
        assert n.stats.failed == 2 and n.stats.delivered == 0 and n.stats.last_error
    asyncio.run(scenario())


def test_incident_lifecycle_reaches_statuspage_and_slack_receivers_signed() -> None:
    async def scenario() -> None:
        async with receiver(fail_first=2) as (url, rx):
            async def sleep(s: float) -> None:
                return None

            clock = FakeClock(1_760_000_000.0)
            cfg = HealthConfig(page_name="Acme AI", page_url="https://status.acme.test", webhooks=[
                WebhookConfig(url=f"{url}/statuspage", secret=SECRET, events=["incident", "component"]),
                WebhookConfig(url=f"{url}/slack", format="slack", secret=SECRET, events=["incident"]),
            ])
            gw = Gateway(simulated_config(), clock=clock)
            svc = HealthService(gw, store_path=None, clock=clock, config=cfg, sleep=sleep)
            attach(svc.gw, svc)
            svc.open_store()
            for make, seconds in ((lambda: failover("claude", A, "server_error", O), 90),
                                  (lambda: ok("claude", A), 700)):
                for _ in range(seconds):
                    gw.emit(make())
                    svc.tick()
                    clock.advance(1)
            await svc.notifier.drain()
            await svc.notifier.close()
            assert all(c["valid"] for c in rx.calls)
            assert len(rx.calls) == len(rx.accepted) + 2         # the two failures were retried
            sp = [a["json"] for a in rx.accepted if a["path"] == "/statuspage"]
            incidents = [p for p in sp if "incident" in p]
            statuses = [p["incident"]["status"] for p in incidents]
            assert statuses[0] == "identified" and statuses[-2:] == ["monitoring", "resolved"]
            first = incidents[0]
            assert set(first["meta"]) == {"unsubscribe", "documentation", "generated_at"}
            assert first["page"]["id"] == svc.page_id
            assert set(first["page"]) == {"id", "status_indicator", "status_description"}
            assert first["incident"]["shortlink"].startswith("https://status.acme.test/status#")
            changes = [p for p in sp if "component_update" in p]
            assert changes, "component changes are sent too"
            cu = changes[0]["component_update"]
            assert set(cu) == {"id", "component_id", "old_status", "new_status", "created_at"}
            assert changes[0]["component"]["id"] == cu["component_id"]
            slack = [a["json"] for a in rx.accepted if a["path"] == "/slack"]
            assert slack and all("text" in s and s["blocks"] for s in slack)
            assert "Acme AI" in slack[0]["text"] and "anthropic" in slack[0]["text"]
            assert all("component_update" not in s for s in slack)   # slack hook: incidents only
    asyncio.run(scenario())
