"""Reading providers' own status pages: Atlassian Statuspage and incident.io payloads,
replayed by a local aiohttp server; unreachable pages never open incidents."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from ridethrough.config import HealthConfig, StatusPagesConfig
from ridethrough.gateway import Gateway
from ridethrough.health import attach
from ridethrough.health.service import HealthService
from ridethrough.health.statuspage_parse import judge_upstream, match_components, parse_summary
from ridethrough.health.upstream import UpstreamPoller
from ridethrough.routing.clock import FakeClock
from support.health_records import failover, simulated_config

FIXTURES = Path(__file__).parent / "test_statuspage_fixtures"
A, O = "anthropic/claude-sonnet-4-5", "openai/gpt-4o"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def status_server(pages: dict[str, Any]) -> AsyncIterator[str]:
    """Serves pages[name] at /<name>/api/v2/summary.json; a callable may fail on purpose."""
    async def summary(request: web.Request) -> web.StreamResponse:
        body = pages[request.match_info["name"]]
        if isinstance(body, int):
            return web.Response(status=body, text="upstream trouble")
        if isinstance(body, bytes):
            return web.Response(body=body, content_type="application/json")
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/{name}/api/v2/summary.json", summary)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro_fn())  # type: ignore[arg-type]


def test_atlassian_summary_parses_every_field() -> None:
    s = parse_summary(fixture("atlassian_summary_incident.json"))
    assert (s.page_name, s.indicator, s.description) == ("Anthropic", "major", "Partial System Outage")
    statuses = {c.name: c.status for c in s.components}
    assert statuses["Claude API (api.anthropic.com)"] == "partial_outage"
    assert statuses["claude.ai"] == "major_outage"
    [inc] = s.incidents
    assert inc.name == "Elevated errors on Claude API and claude.ai" and inc.impact == "major"
    assert inc.latest_update == "The issue has been identified and a fix is being implemented."
    assert inc.shortlink == "https://stspg.io/abc123" and inc.started_at is not None
    ok = parse_summary(fixture("atlassian_summary_ok.json"))
    assert ok.indicator == "none" and not ok.incidents and ok.scheduled[0].impact == "maintenance"


def test_incident_io_variant_is_tolerated_and_matched_by_name() -> None:
    s = parse_summary(fixture("incidentio_summary_incident.json"))
    assert s.page_name == "OpenAI" and s.updated_at is None          # no updated_at, no time_zone
    statuses = {c.name: c.status for c in s.components}
    assert statuses == {"APIs": "operational", "Chat Completions": "degraded_performance",
                        "Responses": "major_outage", "Batch": "operational"}  # nameless one skipped
    assert s.components[0].group and s.components[1].group_id == s.components[0].id
    assert s.incidents[0].latest_update == "Errors are increasing as DNS caches expire."
    found, missing = match_components(s, ["chat completions", "Embeddings", "Respon"])
    assert set(found) == {"chat completions", "Respon"} and missing == ["Embeddings"]
    bad, text = judge_upstream(s, ["Chat Completions"])
    assert bad and "Chat Completions degraded performance" in text
    assert "Increased error rates" in text


def test_judging_without_component_names_uses_incidents_then_indicator() -> None:
    bad, text = judge_upstream(parse_summary(fixture("atlassian_summary_incident.json")), [])
    assert bad and "Elevated errors on Claude API" in text
    assert judge_upstream(parse_summary(fixture("atlassian_summary_ok.json")), []) == \
        (False, "All Systems Operational")
    bad, _ = judge_upstream(parse_summary({"status": {"indicator": "critical"}}), [])
    assert bad
    fine, _ = judge_upstream(parse_summary(fixture("atlassian_summary_incident.json")), ["Claude Code"])
    assert not fine          # the component we use is fine; another one's outage is not ours


def test_poller_reads_both_platforms_and_survives_broken_pages() -> None:
    async def scenario() -> None:
        pages = {"anthropic": fixture("atlassian_summary_incident.json"),
                 "openai": fixture("incidentio_summary_incident.json"),
                 "broken": 502, "garbage": b"<html>maintenance</html>"}
        async with status_server(pages) as url:
            cfg = StatusPagesConfig(enabled=True, pages={
                "anthropic": f"{url}/anthropic", "openai": f"{url}/openai",
                "broken": f"{url}/broken", "garbage": f"{url}/garbage",
                "gone": f"http://127.0.0.1:{closed_port()}"},
                components={"anthropic": ["Claude API"], "openai": ["Chat Completions", "Realtime"]})
            seen: list[str] = []
            poller = UpstreamPoller(cfg, lambda: 1000.0, lambda v: seen.append(v.provider))
            try:
                await poller.poll_once()
                v = poller.views
                assert v["anthropic"].ok and v["anthropic"].bad
                assert "Claude API (api.anthropic.com) partial outage" in v["anthropic"].text
                assert v["openai"].ok and v["openai"].bad and v["openai"].missing == ["Realtime"]
                for name in ("broken", "garbage", "gone"):
                    assert not v[name].ok and not v[name].bad and v[name].error, name
                assert "502" in (v["broken"].error or "")
                assert sorted(seen) == sorted(cfg.pages)
                # A page that goes down keeps showing its last good word, marked unreachable.
                pages["anthropic"] = 503
                await poller.poll_once()
                assert not poller.views["anthropic"].ok
                assert poller.views["anthropic"].summary is not None
                assert poller.views["anthropic"].fetched_at == 1000.0
            finally:
                await poller.close()
    run(scenario)


def service_with_pages(urls: dict[str, str], clock: FakeClock) -> HealthService:
    cfg = HealthConfig(status_pages=StatusPagesConfig(enabled=True, pages=urls,
                                                      components={"anthropic": ["Claude API"]}))
    gw = Gateway(simulated_config(), clock=clock)
    svc = HealthService(gw, store_path=None, clock=clock, config=cfg)
    attach(svc.gw, svc)
    svc.open_store()
    return svc


def test_unreachable_or_alarming_page_never_opens_an_incident_but_confirms_one() -> None:
    async def scenario() -> None:
        clock = FakeClock(1_760_000_000.0)
        pages = {"anthropic": fixture("atlassian_summary_incident.json")}
        async with status_server(pages) as url:
            svc = service_with_pages({"anthropic": f"{url}/anthropic",
                                      "openai": f"http://127.0.0.1:{closed_port()}"}, clock)
            try:
                await svc.poller.poll_once()
                svc.tick()
                assert svc.engine.all() == []            # their page alone opens nothing
                for _ in range(90):                     # our own traffic sees the outage
                    svc.gw.emit(failover("claude", A, "server_error", O))
                    clock.advance(1)
                    svc.tick()
                inc = svc.engine.open["provider:anthropic"]
                assert not inc.confirmed
                await svc.poller.poll_once()
                assert inc.confirmed and inc.updates[-1].kind == "confirmation"
                assert "anthropic's own status page" in inc.updates[-1].body
                from ridethrough.web.page import render

                html = render(svc)
                assert "Partial System Outage" in html       # their word, beside ours
                assert "openai’s own status page: unreachable" in html
                assert "provider:openai" not in svc.engine.open
            finally:
                await svc.poller.close()
    run(scenario)
