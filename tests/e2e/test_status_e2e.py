"""A real gateway, simulated providers, a real outage: the incident opens, the status API,
the CLI and the page tell the story, and it resolves after recovery.

Health runs on an injected clock (advanced one second per request, ticked on the gateway's
own loop); the gateway, the simulator and the SDK run for real over loopback sockets.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Self

import anthropic
import httpx
import pytest
from click.testing import CliRunner

from ridethrough.config import HealthConfig, IncidentConfig, StatusPagesConfig
from ridethrough.gateway import Gateway
from ridethrough.harness import GatewayThread
from ridethrough.health import install
from ridethrough.health.cli import incidents, status
from ridethrough.health.upstream import UpstreamPoller, UpstreamView
from ridethrough.keys import hash_key
from ridethrough.routing.clock import FakeClock
from ridethrough.simulator import Fault, FaultKind
from support.health_records import simulated_config

A, O = "anthropic/claude-sonnet-4-5", "openai/gpt-4o"
ADMIN = "rt-admin-e2e"


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.clock = FakeClock(1_760_000_000.0)
        cfg = simulated_config(
            server={"admin_keys": [{"name": "ops", "sha256": hash_key(ADMIN)}]},
            resilience={"breaker": {"cooldown_s": 0.2, "max_cooldown_s": 0.4},
                        "retry": {"same_target_retries": 0}})
        gw = Gateway(cfg)
        health = HealthConfig(page_name="Acme AI", incidents=IncidentConfig(
            open_after_s=30, quiet_period_s=120))
        self.svc = install(gw, store_path=str(tmp / "health.sqlite3"), clock=self.clock,
                           config=health)
        assert self.svc is not None
        self.thread = GatewayThread(cfg, gateway=gw)   # build_app mounts what install made
        self.gw = gw

    def __enter__(self) -> Self:
        self.thread.start()
        self.sdk = anthropic.Anthropic(base_url=self.thread.url, api_key="unused", max_retries=0)
        self.http = httpx.Client(base_url=self.thread.url, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.thread.stop()

    def tick(self) -> None:
        async def on_loop() -> None:
            self.svc.tick()
        self.thread.call(on_loop())

    def traffic(self, seconds: int) -> list[str]:
        """One real SDK request per health-second; returns who served each."""
        served = []
        for _ in range(seconds):
            raw = self.sdk.messages.with_raw_response.create(
                model="claude", max_tokens=16, messages=[{"role": "user", "content": "hello"}])
            served.append(raw.headers.get("x-ridethrough-target", ""))
            self.clock.advance(1)
            self.tick()
        return served

    def get(self, path: str) -> Any:
        r = self.http.get(path)
        r.raise_for_status()
        return r.json()


async def _poll_and_close(poller: UpstreamPoller) -> list[UpstreamView]:
    try:
        return await poller.poll_once()
    finally:
        await poller.close()


@pytest.fixture()
def rig(tmp_path: Path) -> Any:
    with Rig(tmp_path) as r:
        yield r


def test_outage_incident_through_a_real_gateway(rig: Rig) -> None:
    assert set(rig.traffic(10)) == {A}
    assert rig.get("/api/v2/status.json")["status"]["indicator"] == "none"

    sim = rig.gw.providers["anthropic"].server
    sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=529, error_type="overloaded_error"))
    served = rig.traffic(45)
    assert set(served) == {O}                             # every request saved by failover
    [inc] = rig.get("/api/v2/incidents/unresolved.json")["incidents"]
    assert inc["name"] == "Major outage at anthropic (claude-sonnet-4-5)"
    assert inc["status"] == "identified" and inc["impact"] == "critical"
    bodies = " ".join(u["body"] for u in inc["incident_updates"])
    assert "failing over to openai/gpt-4o" in bodies.lower()
    comps = {c["name"]: c["status"] for c in rig.get("/api/v2/components.json")["components"]}
    assert comps[A] == "major_outage" and comps[O] == "operational"
    assert comps["claude"] == "degraded_performance"      # answered, by a fallback

    # Any Statuspage watcher can follow us: our own poller reads our own page as a provider's.
    poller = UpstreamPoller(StatusPagesConfig(enabled=True, pages={"us": rig.thread.url},
                                              components={"us": [A]}), rig.clock)
    [view] = asyncio.run(_poll_and_close(poller))
    assert view.ok and view.bad and "major outage" in view.text
    assert view.summary is not None and view.summary.incidents[0].name == inc["name"]

    runner = CliRunner()
    out = runner.invoke(status, ["--url", rig.thread.url])
    assert out.exit_code == 0, out.output
    assert "Major System Outage" in out.output and "major outage" in out.output
    assert "Major outage at anthropic" in out.output
    assert "Learned latency (this gateway)" in out.output
    assert "first_token" in out.output or "complete:" in out.output
    noted = runner.invoke(incidents, ["note", inc["id"], "Anthropic confirms overload.",
                                      "--url", rig.thread.url],
                          env={"RIDETHROUGH_ADMIN_KEY": ADMIN})
    assert noted.exit_code == 0, noted.output
    denied = runner.invoke(incidents, ["note", inc["id"], "x", "--url", rig.thread.url],
                           env={"RIDETHROUGH_ADMIN_KEY": "wrong"})
    assert denied.exit_code == 1 and "401" in denied.output

    sim.clear_faults()
    asyncio.run(asyncio.sleep(0.5))                       # the real breaker's cool-down
    served = rig.traffic(10)
    assert served[-1] == A
    [inc] = rig.get("/api/v2/incidents.json")["incidents"]
    assert inc["status"] == "monitoring"
    rig.clock.advance(125)
    rig.tick()
    [inc] = rig.get("/api/v2/incidents.json")["incidents"]
    assert inc["status"] == "resolved"
    rt = inc["ridethrough"]
    assert rt["requests_affected"] >= 40 and rt["requests_saved"] == rt["requests_affected"]
    assert inc["started_at"] < inc["monitoring_at"] < inc["resolved_at"]
    assert 40 <= rt["duration_s"] <= 60
    statuses = [u["status"] for u in reversed(inc["incident_updates"])]
    assert statuses[0] == "identified" and statuses[-2:] == ["monitoring", "resolved"]
    assert "Anthropic confirms overload." in [u["body"] for u in inc["incident_updates"]]

    listed = runner.invoke(incidents, ["list", "--url", rig.thread.url])
    assert listed.exit_code == 0 and inc["id"] in listed.output and "resolved" in listed.output
    pm = runner.invoke(incidents, ["postmortem", inc["id"], "Overload at the provider.",
                                   "--url", rig.thread.url], env={"RIDETHROUGH_ADMIN_KEY": ADMIN})
    assert pm.exit_code == 0 and "post-mortem published" in pm.output

    metrics = rig.http.get("/metrics").text
    assert f'ridethrough_attempts_total{{target="{A}",outcome="overloaded"}}' in metrics
    assert 'ridethrough_requests_total{route="claude",outcome="ok",tier="live"} 65' in metrics
    page = rig.http.get("/status").text
    assert "Overload at the provider." in page and "Incident history" in page
