"""What a person sees on /status during an outage, in headless Chromium on a phone-sized
screen: the failing provider's status, the incident and its timeline, nothing cut off.

Runs Debian's /usr/bin/chromium through Playwright (no browser download). Skipped only on
a developer machine without Chromium; in CI (CI set) it must run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ridethrough.config import HealthConfig, IncidentConfig
from ridethrough.gateway import Gateway
from ridethrough.harness import GatewayThread
from ridethrough.health import install
from ridethrough.routing.clock import FakeClock
from ridethrough.simulator import Fault, FaultKind
from support.health_records import simulated_config

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
A, O = "anthropic/claude-sonnet-4-5", "openai/gpt-4o"
TITLE = "Major outage at anthropic (claude-sonnet-4-5)"

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} not installed (scripts/install-browser.sh installs it)",
                allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402  (after the skip)


@pytest.fixture()
def gateway_in_outage(tmp_path: Path) -> Iterator[Any]:
    import anthropic

    clock = FakeClock(1_760_000_000.0)
    cfg = simulated_config(resilience={"retry": {"same_target_retries": 0}})
    gw = Gateway(cfg)
    svc = install(gw, store_path=str(tmp_path / "health.sqlite3"), clock=clock,
                  config=HealthConfig(page_name="Acme AI",
                                      incidents=IncidentConfig(open_after_s=20)))
    assert svc is not None
    thread = GatewayThread(cfg, gateway=gw)   # build_app mounts what install made
    with thread:
        async def tick_and_flush() -> None:
            svc.tick()
            await svc.flush_async()

        sdk = anthropic.Anthropic(base_url=thread.url, api_key="unused", max_retries=0)

        def traffic(seconds: int) -> None:
            for _ in range(seconds):
                sdk.messages.create(model="claude", max_tokens=16,
                                    messages=[{"role": "user", "content": "hi"}])
                clock.advance(1)
                thread.call(tick_and_flush())

        traffic(15)
        gw.providers["anthropic"].server.set_fault(Fault(FaultKind.HTTP_ERROR, status=503))
        traffic(40)
        yield thread


@pytest.fixture()
def page(tmp_path: Path) -> Iterator[Page]:
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=ARGS, viewport={"width": 390, "height": 844}, device_scale_factor=2,
            is_mobile=True, has_touch=True)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def test_status_page_during_an_outage(gateway_in_outage: Any, page: Page) -> None:
    response = page.goto(gateway_in_outage.url + "/status")
    assert response is not None and response.status == 200
    expect(page.locator("#overall")).to_have_text("Major System Outage")
    # The failing target says so, in words, next to its name; the fallback is fine.
    failing = page.locator("#component-target-anthropic-claude-sonnet-4-5")
    expect(failing.locator(".name")).to_have_text(A)
    expect(failing.locator(".status")).to_have_text("Major outage")
    expect(failing.locator(".reasons")).to_contain_text("failed")
    expect(page.locator("#component-target-openai-gpt-4o .status")).to_have_text("Operational")
    expect(page.locator("#component-route-claude .status")).to_have_text("Degraded performance")
    expect(page.locator("#component-provider-anthropic > .row .status")).to_have_text("Major outage")
    # The incident, with its timeline, is the first thing after the banner.
    incident = page.locator(".card[id^=incident-]").first
    expect(incident.locator(".name")).to_have_text(TITLE)
    expect(incident).to_contain_text("identified")
    expect(incident.locator("ol.timeline li").first).to_contain_text("failing over to openai/gpt-4o")
    # Uptime bars and the latency chart are drawn inline, and nothing overflows a phone.
    expect(page.locator("svg.bars").first).to_be_visible()
    expect(page.locator("svg.chart")).to_be_visible()
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"page is wider than the screen: {width}"
    # No request leaves the gateway's own origin (no CDN).
    origins = page.evaluate(
        "() => performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
    assert set(origins) <= {gateway_in_outage.url}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)
    assert (ARTIFACTS / "status-page.png").stat().st_size > 10_000
