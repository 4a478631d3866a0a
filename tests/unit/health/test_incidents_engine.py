"""Automatic incidents: a simulated outage, fed as request records under an injected clock,
opens an incident with the right timeline and resolves it after recovery."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ridethrough.config import HealthConfig
from ridethrough.gateway import Gateway
from ridethrough.health import attach
from ridethrough.health.incident_model import Incident
from ridethrough.health.service import HealthService
from ridethrough.records import RequestRecord
from ridethrough.routing.clock import FakeClock
from support.health_records import all_failed, failover, ok, simulated_config

A, O = "anthropic/claude-sonnet-4-5", "openai/gpt-4o"
T0 = 1_760_000_000.0


def make(store_path: str | None = None, clock: FakeClock | None = None,
         **health: object) -> tuple[HealthService, FakeClock]:
    clock = clock or FakeClock(T0)
    gw = Gateway(simulated_config(), clock=clock)
    svc = HealthService(gw, store_path=store_path, clock=clock,
                        config=HealthConfig.model_validate(health))
    attach(svc.gw, svc)
    svc.open_store()
    return svc, clock


def run(svc: HealthService, clock: FakeClock, seconds: int,
        make_record: Callable[[], RequestRecord] | None) -> None:
    """One request per second (if any), one health tick per second."""
    for _ in range(seconds):
        if make_record is not None:
            svc.gw.emit(make_record())
        clock.advance(1.0)
        svc.tick()


def only_incident(svc: HealthService) -> Incident:
    incidents = svc.engine.all()
    assert len(incidents) == 1, [i.name for i in incidents]
    return incidents[0]


def healthy() -> RequestRecord:
    return ok("claude", A)


def broken() -> RequestRecord:
    return failover("claude", A, "server_error", O)


def test_outage_opens_an_incident_with_its_timeline_and_resolves_after_quiet_period() -> None:
    svc, clock = make()
    run(svc, clock, 60, healthy)
    outage_start = clock()
    run(svc, clock, 300, broken)
    inc = only_incident(svc)
    assert inc.status == "identified"                       # we know: traffic was moved
    assert inc.name == "Major outage at anthropic (claude-sonnet-4-5)"
    assert inc.impact == "critical"
    assert inc.components == [f"target:{A}"]
    # It started when the target went bad, not when the incident was opened 60 s later.
    assert outage_start <= inc.started_at <= outage_start + 10
    assert inc.created_at - inc.started_at == pytest.approx(60, abs=1.5)
    first = inc.updates[0]
    assert "failing over to openai/gpt-4o" in first.body
    assert first.affected == [{"code": "target-anthropic-claude-sonnet-4-5",
                               "name": A, "old_status": "operational",
                               "new_status": "partial_outage"}]   # the window still held oks
    worse = inc.updates[1]
    assert worse.affected is not None and worse.affected[0]["new_status"] == "major_outage"
    assert "Partial outage → Major outage" in worse.body
    assert inc.requests_affected == inc.requests_saved >= 290   # every one saved by failover

    recovery = clock()
    run(svc, clock, 30, healthy)
    assert inc.status == "monitoring"
    assert inc.ended_at is not None and recovery <= inc.ended_at <= recovery + 10
    assert inc.monitoring_at is not None
    run(svc, clock, int(inc.monitoring_at + 590 - clock()), healthy)
    assert inc.status == "monitoring"                       # not quiet long enough yet
    run(svc, clock, 15, healthy)
    assert inc.status == "resolved" and not svc.engine.open
    assert inc.resolved_at == pytest.approx(inc.monitoring_at + 600, abs=1.5)
    assert inc.duration_s(clock()) == pytest.approx(inc.ended_at - inc.started_at)
    assert inc.duration_s(clock()) == pytest.approx(recovery - outage_start, abs=15)
    assert [u.status for u in inc.updates] == ["identified", "identified", "monitoring", "resolved"]
    assert f"{inc.requests_affected} requests were affected" in inc.updates[-1].body


def test_a_blip_shorter_than_the_threshold_opens_nothing() -> None:
    svc, clock = make()
    run(svc, clock, 30, healthy)
    run(svc, clock, 40, broken)
    run(svc, clock, 30, healthy)
    assert svc.engine.all() == []


def test_failover_discovered_after_opening_is_an_update() -> None:
    svc, clock = make()
    run(svc, clock, 90, lambda: all_failed("claude", [(A, "overloaded")]))
    inc = svc.engine.open["provider:anthropic"]
    assert inc.status == "investigating" and "failing over" not in inc.updates[0].body
    run(svc, clock, 5, broken)
    bodies = [u.body for u in inc.updates]
    assert "Failing over to openai/gpt-4o for route claude." in bodies
    assert inc.status == "identified"
    assert inc.failovers == [O]


def test_status_changes_while_open_are_updates_with_affected_components() -> None:
    svc, clock = make()
    run(svc, clock, 120, broken)
    inc = svc.engine.open["provider:anthropic"]
    svc.gw.board.get(A).hold_down(3600, "quota_exhausted")   # now held down: still major
    svc.gw.board.force(A, "down")                           # an operator drains it
    run(svc, clock, 2, None)
    change = inc.updates[-1]
    assert change.affected == [{"code": "target-anthropic-claude-sonnet-4-5", "name": A,
                                "old_status": "major_outage", "new_status": "under_maintenance"}]
    assert "Major outage → Under maintenance" in change.body


def test_flapping_reopens_the_same_incident() -> None:
    svc, clock = make()
    run(svc, clock, 120, broken)
    inc = svc.engine.open["provider:anthropic"]
    run(svc, clock, 60, healthy)
    assert inc.status == "monitoring"
    run(svc, clock, 30, broken)
    assert inc.status == "identified" and inc.ended_at is None
    assert "The problem is back." in inc.updates[-1].body
    assert len(svc.engine.all()) == 1


def test_total_failure_opens_a_route_incident_besides_provider_ones() -> None:
    svc, clock = make()
    run(svc, clock, 120, lambda: all_failed("claude", [(A, "server_error"), (O, "connect")]))
    names = sorted(i.name for i in svc.engine.all())
    assert names == ["Major outage at anthropic (claude-sonnet-4-5)",
                     "Major outage at openai (gpt-4o)", "Major outage on route claude"]
    route = svc.engine.open["route:claude"]
    assert route.requests_affected >= 110 and route.requests_saved == 0


def test_provider_status_page_confirms_but_never_opens() -> None:
    svc, clock = make()
    svc.engine.on_upstream("anthropic", True, "“Elevated errors on Claude API” (investigating)",
                           clock())
    assert svc.engine.all() == []                             # confirmation only
    run(svc, clock, 90, broken)
    svc.engine.on_upstream("anthropic", True, "“Elevated errors on Claude API” (investigating)",
                           clock())
    inc = svc.engine.open["provider:anthropic"]
    assert inc.confirmed and inc.updates[-1].kind == "confirmation"
    assert "Elevated errors on Claude API" in inc.updates[-1].body


def test_notes_postmortem_and_manual_resolution() -> None:
    svc, clock = make()
    run(svc, clock, 90, broken)
    inc = svc.engine.open["provider:anthropic"]
    svc.engine.add_note(inc, "Anthropic confirmed elevated 529s.", "identified", clock())
    assert inc.updates[-1].kind == "note" and inc.status == "identified"
    svc.engine.add_note(inc, "Closing: provider fixed it.", "resolved", clock())
    assert inc.status == "resolved" and inc.resolved_at == clock()
    svc.engine.set_postmortem(inc, "Capacity shortfall at the provider.", clock())
    assert inc.status == "postmortem" and inc.postmortem_at == clock()


def test_incidents_survive_a_restart_through_the_store(tmp_path: Path) -> None:
    db = str(tmp_path / "health.sqlite3")
    svc, clock = make(db)
    run(svc, clock, 90, broken)
    opened = svc.engine.open["provider:anthropic"]
    assert svc.flush()
    svc.store.close()

    again, _ = make(db, clock)
    carried = again.engine.open["provider:anthropic"]
    assert carried.id == opened.id and carried.updates[0].body == opened.updates[0].body
    # The recovered target resolves the carried-over incident as usual.
    run(again, clock, 30, healthy)
    assert carried.status == "monitoring"
