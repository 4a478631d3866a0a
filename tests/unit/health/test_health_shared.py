"""Two workers' health services on one store file, one injected clock: they judge as one
gateway, exactly one of them runs the incident, and both serve the same view.

Each "worker" here is a real ``HealthService`` in shared mode with its own gateway,
monitor, engine and leader lock (a separate open file, so ``flock`` treats the two as
different processes); ``cycle()`` runs one tick inline, so time moves only when the test
says.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ridethrough.config import HealthConfig, IncidentConfig, Thresholds
from ridethrough.gateway import Gateway
from ridethrough.health import install
from ridethrough.health import statuspage_json as v2
from ridethrough.health.monitor import Totals
from ridethrough.health.service import HealthService
from ridethrough.health.shared import SharedHealth, SharedIdentity
from ridethrough.health.status import Verdict, judge_breaker, merge_breakers
from ridethrough.routing.clock import FakeClock
from ridethrough.web import metrics
from support.health_records import failover, ok, simulated_config

A, O = "anthropic/claude-sonnet-4-5", "openai/gpt-4o"
T0 = 1_760_000_000.0


def worker(tmp: Path, clock: FakeClock, slot: int) -> HealthService:
    gw = Gateway(simulated_config(server={"data_dir": str(tmp)}), clock=clock)
    config = HealthConfig(page_name="Acme AI", thresholds=Thresholds(min_requests=6),
                          incidents=IncidentConfig(open_after_s=30, quiet_period_s=120))
    svc = install(gw, store_path=str(tmp / "health.sqlite3"), clock=clock, config=config,
                  shared=SharedIdentity(slot, 2, "run-1", T0))
    assert svc is not None and isinstance(svc.mode, SharedHealth)
    return svc


@pytest.fixture()
def pair(tmp_path: Path) -> Any:
    clock = FakeClock(T0 + 10)
    a, b = worker(tmp_path, clock, 0), worker(tmp_path, clock, 1)
    yield a, b, clock
    for svc in (a, b):
        shared(svc).lock.release()
        svc.store.close()


def shared(svc: HealthService) -> SharedHealth:
    assert isinstance(svc.mode, SharedHealth)
    return svc.mode


def tick(clock: FakeClock, *workers: HealthService, seconds: float = 1.0) -> None:
    clock.advance(seconds)
    for svc in workers:
        shared(svc).cycle()


def public(svc: HealthService) -> dict[str, Any]:
    """What /api/v2/summary.json says, built from this worker's view."""
    view = svc.view()
    return {
        "components": v2.components_list(view.catalog, view.status_of, view.since_of, svc.page_id),
        "incidents": [v2.incident_obj(i, view.catalog, view.status_of, svc.page_id, "http://x",
                                      view.now) for i in view.incidents],
        "indicator": v2.indicator_for(view.catalog, view.status_of, view.incidents),
    }


def test_status_is_judged_on_both_workers_samples_together(pair: Any) -> None:
    a, b, clock = pair
    tick(clock, a, b)                       # a takes the lock first
    assert shared(a).leading and not shared(b).leading
    for _ in range(3):                      # 3 failures each: neither alone reaches 6
        a.gw.emit(failover("claude", A, "server_error", O))
        b.gw.emit(failover("claude", A, "server_error", O))
    tick(clock, a, b)
    tick(clock, a, b)                       # the leader reads what b wrote after it
    seen = a.view()
    assert seen.status_of(f"target:{A}") == "major_outage"
    assert "100% of 6 requests failed" in "; ".join(seen.reasons[f"target:{A}"])
    assert seen.status_of(f"target:{O}") == "operational"
    assert public(a) == public(b)           # whichever worker answers
    # Each worker's own windows saw only half: what a single process would have judged.
    assert a.monitor.windows[f"target:{A}"].stats(clock(), 120).n == 3


def test_one_incident_run_by_the_leader_then_handed_over(pair: Any) -> None:
    a, b, clock = pair
    for second in range(45):                # 45 s of failover, traffic split over both
        (a if second % 2 else b).gw.emit(failover("claude", A, "server_error", O))
        tick(clock, a, b)
    [incident] = a.engine.open.values()
    assert b.engine.open == {}              # the follower runs no incident of its own
    assert [i.id for i in b.view().incidents] == [incident.id]
    assert public(a) == public(b)
    # More than either worker served (22 and 23): the leader counted the follower's too.
    assert incident.requests_affected == incident.requests_saved > 23
    assert "failing over to openai/gpt-4o" in " ".join(u.body for u in incident.updates).lower()

    asyncio.run(a.close())                  # the leader stops; b leads from its next tick
    tick(clock, b)
    assert shared(b).leading and next(iter(b.engine.open.values())).id == incident.id
    for _ in range(10):                     # the provider is back
        b.gw.emit(ok("claude", A))
        tick(clock, b)
    assert b.view().incidents[0].status == "monitoring"
    tick(clock, b, seconds=121)
    [resolved] = b.view().incidents
    assert resolved.id == incident.id and resolved.status == "resolved"
    assert len(b.store.load_incidents(50)) == 1          # never a second one


def test_an_operators_note_sent_to_a_follower_is_posted_by_the_leader(pair: Any) -> None:
    a, b, clock = pair
    for _ in range(40):
        b.gw.emit(failover("claude", A, "server_error", O))
        tick(clock, a, b)
    [incident] = b.view().incidents

    async def scenario() -> Any:
        async def lead() -> None:
            while True:
                shared(a).cycle()
                await asyncio.sleep(0.02)
        leading = asyncio.ensure_future(lead())
        try:
            return await b.add_note(incident, "The provider confirms.", "identified")
        finally:
            leading.cancel()

    noted = asyncio.run(scenario())
    assert noted.updates[-1].body == "The provider confirms." and noted.updates[-1].kind == "note"
    assert a.engine.find(incident.id).updates[-1].body == "The provider confirms."


def test_metrics_sum_every_worker_and_label_what_is_per_worker(pair: Any) -> None:
    a, b, clock = pair
    for _ in range(3):
        a.gw.emit(ok("claude", A))
    for _ in range(4):
        b.gw.emit(ok("claude", A))
    tick(clock, a, b)
    tick(clock, a, b)
    text_a, text_b = metrics.render(a), metrics.render(b)
    assert text_a == text_b
    assert 'ridethrough_requests_total{route="claude",outcome="ok",tier="live"} 7' in text_a
    assert f'ridethrough_breaker_state{{target="{A}",worker="0"}} 0' in text_a
    assert f'ridethrough_breaker_state{{target="{A}",worker="1"}} 0' in text_a
    assert "ridethrough_workers 2" in text_a


def test_totals_round_trip_and_add() -> None:
    t = Totals()
    t.requests[("r", "ok", "live")] = 2
    t.attempts[(A, "ok")] = 2
    t.latency["r"] = [1] + [0] * 14
    t.latency_sum["r"] = 30.0
    again = Totals.from_json(t.to_json())
    assert again == t
    again.merge(t)
    assert again.requests[("r", "ok", "live")] == 4 and again.latency["r"][0] == 2


def _snap(state: str, forced: str | None = None, last_error: str = "") -> dict[str, Any]:
    return {"state": state, "forced": forced, "hold_reason": None, "last_error": last_error}


def test_breakers_of_several_workers_merge_into_one_verdict() -> None:
    def verdict(*snaps: dict[str, Any]) -> Verdict:
        v = Verdict()
        judge_breaker(v, merge_breakers(list(snaps)), None)
        return v

    assert verdict(_snap("open", last_error="timeout"), _snap("open")).status == "major_outage"
    partial = verdict(_snap("open", last_error="timeout"), _snap("closed"))
    assert partial.status == "partial_outage"
    assert partial.reasons == ["circuit breaker open in 1 of 2 workers: timeout"]
    # An operator's drain reaches the one worker that took the admin call.
    assert verdict(_snap("closed", "down"), _snap("closed")).status == "operational"
    assert verdict(_snap("closed", "down"), _snap("closed", "down")).status == "under_maintenance"
    assert merge_breakers([]) is None


def test_an_operators_override_through_one_worker_reaches_the_other(pair: Any) -> None:
    a, b, clock = pair
    tick(clock, a, b)
    board_a, board_b = a.gw.board, b.gw.board
    # an operator drains A through worker a (what POST /admin/targets does)
    board_a.force(A, "down")
    asyncio.run(shared(a).set_override(A, "down"))
    assert board_b.get(A).forced is None
    tick(clock, a, b)
    assert board_b.get(A).forced == "down" and board_a.get(A).forced == "down"
    # a hold-down on another target of worker b is left alone by later overrides
    board_b.get(O).hold_down(600, "auth")
    held_until = board_b.get(O).held_until
    asyncio.run(shared(b).set_override(A, None))            # restored through worker b
    assert board_b.get(A).forced is None
    tick(clock, a, b)
    assert board_a.get(A).forced is None
    assert board_b.get(O).held_until == held_until


def test_an_older_override_map_read_late_does_not_undo_a_newer_one(pair: Any) -> None:
    a, _, clock = pair
    tick(clock, a)
    older = shared(a).tables.set_override("run-1", O, "up")
    newer = shared(a).tables.set_override("run-1", A, "down")
    shared(a)._apply_overrides(newer)
    assert a.gw.board.get(A).forced == "down" and a.gw.board.get(O).forced == "up"
    shared(a)._apply_overrides(older)                       # a slow exchange's stale read
    assert a.gw.board.get(A).forced == "down"
    shared(a)._apply_overrides(None)                        # no map (e.g. a new store file)
    assert a.gw.board.get(A).forced == "down" and a.gw.board.get(O).forced == "up"


def test_a_restore_reaches_a_worker_whose_drain_was_local_only(pair: Any) -> None:
    a, b, clock = pair
    tick(clock, a, b)
    a.gw.board.force(A, "down")      # drained through a while the store was down: a only
    asyncio.run(shared(b).set_override(A, None))            # restored through b, store back
    tick(clock, a, b)
    assert a.gw.board.get(A).forced is None
    # and a repeated drain reaches a worker whose state drifted from the map
    asyncio.run(shared(a).set_override(A, "down"))
    tick(clock, a, b)
    b.gw.board.force(A, None)        # b drifted (e.g. a local-only restore)
    asyncio.run(shared(a).set_override(A, "down"))          # the operator repeats the drain
    tick(clock, a, b)
    assert b.gw.board.get(A).forced == "down"
