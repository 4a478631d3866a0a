"""The Statuspage v2 JSON we serve, checked field by field against shared/statuspage.md and
read back by our own poller's parser; plus feeds, badges, /metrics and the admin API."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from ridethrough.app import build_app
from ridethrough.config import HealthConfig
from ridethrough.gateway import Gateway
from ridethrough.health import install
from ridethrough.health.service import HealthService
from ridethrough.health.statuspage_parse import parse_summary
from ridethrough.keys import hash_key
from ridethrough.routing.clock import FakeClock
from support.health_records import failover, ok, simulated_config

A, O = "anthropic/claude-sonnet-4-5", "openai/gpt-4o"
ADMIN = "rt-admin-secret"
COMPONENT_STATUSES = {"operational", "degraded_performance", "partial_outage", "major_outage",
                      "under_maintenance"}
INCIDENT_STATUSES = {"investigating", "identified", "monitoring", "resolved", "postmortem"}
IMPACTS = {"none", "minor", "major", "critical"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@pytest.fixture()
def setup() -> tuple[TestClient, HealthService, FakeClock]:
    clock = FakeClock(1_760_000_000.0)
    cfg = simulated_config(server={"admin_keys": [{"name": "ops", "sha256": hash_key(ADMIN)}]})
    gw = Gateway(cfg, clock=clock)
    svc = install(gw, store_path=None, clock=clock, config=HealthConfig(page_name="Acme AI"))
    assert svc is not None
    svc.open_store()
    # One resolved incident (anthropic, two minutes) and one open one (anthropic again).
    for seconds, make in ((120, lambda: failover("claude", A, "server_error", O)),
                          (700, lambda: ok("claude", A)),
                          (120, lambda: failover("claude", A, "overloaded", O))):
        for _ in range(seconds):
            gw.emit(make())
            clock.advance(1)
            svc.tick()
    svc.flush()
    client = TestClient(build_app(gateway=gw))
    return client, svc, clock


def is_time(v: Any) -> bool:
    return isinstance(v, str) and bool(ISO.match(v)) and datetime.fromisoformat(v) is not None


def check_page(p: dict[str, Any]) -> None:
    assert set(p) >= {"id", "name", "url", "updated_at", "time_zone"}
    assert p["name"] == "Acme AI" and p["url"].endswith("/status") and is_time(p["updated_at"])


def check_component(c: dict[str, Any], page_id: str) -> None:
    for key, kind in (("id", str), ("page_id", str), ("group", bool), ("name", str),
                      ("position", int), ("showcase", bool), ("only_show_if_degraded", bool)):
        assert isinstance(c[key], kind), key
    assert c["page_id"] == page_id
    assert c["group_id"] is None or isinstance(c["group_id"], str)
    assert c["description"] is None or isinstance(c["description"], str)
    assert c["status"] in COMPONENT_STATUSES
    assert c["start_date"] is None or re.match(r"^\d{4}-\d\d-\d\d$", c["start_date"])
    assert is_time(c["created_at"]) and is_time(c["updated_at"])
    if c["group"]:
        assert isinstance(c["components"], list) and c["components"]
    else:
        assert "components" not in c


def check_incident(i: dict[str, Any], page_id: str) -> None:
    for key in ("id", "name", "shortlink"):
        assert isinstance(i[key], str) and i[key], key
    assert i["page_id"] == page_id
    assert i["status"] in INCIDENT_STATUSES and i["impact"] in IMPACTS
    for key in ("created_at", "updated_at", "started_at"):
        assert is_time(i[key]), key
    for key in ("monitoring_at", "resolved_at"):
        assert i[key] is None or is_time(i[key]), key
    assert (i["resolved_at"] is None) == (i["status"] not in ("resolved", "postmortem"))
    assert i["components"]
    for c in i["components"]:
        check_component(c, page_id)
    updates = i["incident_updates"]
    assert updates
    times = [u["created_at"] for u in updates]
    assert times == sorted(times, reverse=True)            # newest first
    for u in updates:
        assert set(u) >= {"id", "incident_id", "status", "body", "created_at", "updated_at",
                          "display_at", "deliver_notifications", "affected_components"}
        assert u["incident_id"] == i["id"] and u["status"] in INCIDENT_STATUSES
        assert isinstance(u["body"], str) and isinstance(u["deliver_notifications"], bool)
        assert all(is_time(u[k]) for k in ("created_at", "updated_at", "display_at"))
        ac = u["affected_components"]
        assert ac is None or all(set(a) == {"code", "name", "old_status", "new_status"} for a in ac)
    assert updates[0]["status"] == i["status"]


def test_summary_and_every_v2_endpoint_match_the_statuspage_shape(
        setup: tuple[TestClient, HealthService, FakeClock]) -> None:
    client, _, _ = setup
    summary = client.get("/api/v2/summary.json")
    assert summary.status_code == 200 and summary.headers["content-type"] == "application/json"
    assert summary.headers["access-control-allow-origin"] == "*"
    s = summary.json()
    assert set(s) == {"page", "status", "components", "incidents", "scheduled_maintenances"}
    check_page(s["page"])
    page_id = s["page"]["id"]
    assert s["status"] == {"indicator": "critical", "description": "Major System Outage"}
    for c in s["components"]:
        check_component(c, page_id)
    by_name = {c["name"]: c for c in s["components"]}
    assert by_name[A]["status"] == "major_outage" and by_name[O]["status"] == "operational"
    assert by_name["anthropic"]["group"] and by_name[A]["group_id"] == by_name["anthropic"]["id"]
    assert by_name["claude"]["group_id"] == by_name["Routes"]["id"]
    assert [i["status"] for i in s["incidents"]] == ["identified"]   # unresolved only
    for i in s["incidents"]:
        check_incident(i, page_id)
    assert s["scheduled_maintenances"] == []

    st = client.get("/api/v2/status.json").json()
    assert set(st) == {"page", "status"} and st["status"]["indicator"] == "critical"
    comps = client.get("/api/v2/components.json").json()["components"]
    assert [c["id"] for c in comps] == [c["id"] for c in s["components"]]
    every = client.get("/api/v2/incidents.json").json()["incidents"]
    assert [i["status"] for i in every] == ["identified", "resolved"]   # newest first, all states
    for i in every:
        check_incident(i, page_id)
    resolved = every[1]
    assert resolved["ridethrough"]["requests_affected"] >= 100
    assert resolved["ridethrough"]["requests_saved"] == resolved["ridethrough"]["requests_affected"]
    assert resolved["ridethrough"]["failovers"] == [O]
    unresolved = client.get("/api/v2/incidents/unresolved.json").json()["incidents"]
    assert [i["id"] for i in unresolved] == [every[0]["id"]]
    for path in ("", "/upcoming", "/active"):
        r = client.get(f"/api/v2/scheduled-maintenances{path}.json").json()
        assert r["scheduled_maintenances"] == [] and r["page"]["id"] == page_id


def test_our_summary_reads_back_through_our_own_poller_parser(
        setup: tuple[TestClient, HealthService, FakeClock]) -> None:
    client, svc, _ = setup
    parsed = parse_summary(client.get("/api/v2/summary.json").json())
    assert parsed.page_name == "Acme AI" and parsed.indicator == "critical"
    statuses = {c.name: c.status for c in parsed.components}
    assert statuses == {c.name: svc.monitor.status_of(c.key) for c in svc.catalog.components.values()}
    assert [i.name for i in parsed.incidents] == ["Major outage at anthropic (claude-sonnet-4-5)"]
    assert parsed.incidents[0].components == [A]
    assert parsed.incidents[0].latest_update == svc.engine.open["provider:anthropic"].updates[-1].body
    opened = svc.engine.open["provider:anthropic"].started_at
    assert parsed.incidents[0].started_at == pytest.approx(opened, abs=0.001)


def test_feeds_are_valid_atom_and_rss(setup: tuple[TestClient, HealthService, FakeClock]) -> None:
    client, _, _ = setup
    atom = client.get("/history.atom")
    assert atom.headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = ET.fromstring(atom.content)
    titles = [e.findtext("a:title", namespaces=ns) for e in feed.findall("a:entry", ns)]
    assert titles == ["Major outage at anthropic (claude-sonnet-4-5)"] * 2
    assert "Resolved" in (feed.findall("a:entry", ns)[1].findtext("a:content", namespaces=ns) or "")
    rss = ET.fromstring(client.get("/history.rss").content)
    assert len(rss.findall("./channel/item")) == 2
    assert rss.findtext("./channel/item/guid")


def test_badges_show_each_components_status(setup: tuple[TestClient, HealthService, FakeClock]) -> None:
    client, _, _ = setup
    for ref, text in ((f"{A}.svg", "major outage"), ("claude.svg", "degraded performance"),
                      ("openai.svg", "operational"), ("target-openai-gpt-4o.svg", "operational")):
        r = client.get(f"/badge/{ref}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml", ref
        svg = ET.fromstring(r.content)
        assert text in (svg.findtext("{http://www.w3.org/2000/svg}title") or ""), ref
    missing = client.get("/badge/nope.svg")
    assert missing.status_code == 404 and b"unknown" in missing.content


def test_metrics_are_prometheus_text(setup: tuple[TestClient, HealthService, FakeClock]) -> None:
    client, _, _ = setup
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert 'ridethrough_requests_total{route="claude",outcome="ok",tier="live"} 940' in text
    assert f'ridethrough_attempts_total{{target="{A}",outcome="overloaded"}} 120' in text
    assert f'ridethrough_component_status{{component="{A}",kind="target"}} 3' in text
    assert 'ridethrough_request_duration_seconds_bucket{route="claude",le="+Inf"} 940' in text
    assert "ridethrough_incidents_open 1" in text
    assert "ridethrough_health_store_up 1" in text
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+]+$')
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line


def test_status_page_html_shows_the_picture(setup: tuple[TestClient, HealthService, FakeClock]) -> None:
    client, _, _ = setup
    r = client.get("/status")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "Major System Outage" in html and "Active incidents" in html
    assert "Major outage at anthropic (claude-sonnet-4-5)" in html
    assert "Failing over to openai/gpt-4o" in html or "failing over to openai/gpt-4o" in html
    assert '<svg class="bars"' in html and '<svg class="chart"' in html
    assert "http://" not in html.split("<footer")[0].replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert '<meta name="viewport"' in html


def test_incident_admin_needs_an_admin_key_and_records_notes(
        setup: tuple[TestClient, HealthService, FakeClock]) -> None:
    client, svc, _ = setup
    inc_id = svc.engine.open["provider:anthropic"].id
    url = f"/admin/incidents/{inc_id}/notes"
    assert client.get("/admin/incidents").status_code == 401
    assert client.post(url, json={"body": "x"}, headers={"x-api-key": "wrong"}).status_code == 401
    auth = {"authorization": f"Bearer {ADMIN}"}
    listed = client.get("/admin/incidents", headers=auth).json()["incidents"]
    assert listed[0]["id"] == inc_id
    r = client.post(url, json={"body": "Provider confirmed 529s.", "status": "identified"}, headers=auth)
    assert r.status_code == 200
    assert r.json()["incident_updates"][0]["body"] == "Provider confirmed 529s."
    assert client.post(url, json={"body": ""}, headers=auth).status_code == 400
    assert client.post(url, json={"body": "x", "status": "bogus"}, headers=auth).status_code == 400
    assert client.post("/admin/incidents/nope/notes", json={"body": "x"}, headers=auth).status_code == 404
    resolved_id = svc.engine.history[0].id
    pm = client.post(f"/admin/incidents/{resolved_id}/postmortem",
                     json={"body": "Root cause: capacity."}, headers=auth).json()
    assert pm["status"] == "postmortem" and pm["postmortem_body"] == "Root cause: capacity."
    stored = {d["id"]: d for d in svc.store.load_incidents()}
    assert stored[resolved_id]["postmortem"] == "Root cause: capacity."
    assert stored[inc_id]["updates"][-1]["kind"] == "note"


def test_admin_api_is_refused_without_configured_admin_keys() -> None:
    clock = FakeClock(1_760_000_000.0)
    gw = Gateway(simulated_config(), clock=clock)
    install(gw, store_path=None, clock=clock)
    client = TestClient(build_app(gateway=gw))
    assert client.get("/admin/incidents").status_code == 403
    assert client.get("/api/v2/status.json").json()["status"]["indicator"] == "none"


def test_install_is_idempotent_per_gateway() -> None:
    gw = Gateway(simulated_config())
    first = install(gw, store_path=None)
    again = install(gw, store_path=None)
    assert first is not None and first is again and gw.health is first
    assert gw.observers.count(first.monitor.observe) == 1
    assert len(gw.on_start) == 1 and len(gw.on_close) == 1
