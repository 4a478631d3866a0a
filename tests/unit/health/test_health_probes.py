"""Active probes against the real simulator: one-token requests that feed the health windows
and the breaker, and take the half-open trial so no user request has to."""

from __future__ import annotations

import asyncio

import orjson

from ridethrough.config import HealthConfig, ProbeConfig
from ridethrough.gateway import Gateway
from ridethrough.health import attach
from ridethrough.health.probes import probe_body
from ridethrough.health.service import HealthService
from ridethrough.routing.clock import FakeClock
from ridethrough.simulator import Fault, FaultKind
from support.health_records import simulated_config

A, O = "anthropic/claude-sonnet-4-5", "openai/gpt-4o"


def make() -> tuple[HealthService, FakeClock]:
    gw_clock = FakeClock(1000.0)       # the breakers' clock: cool-downs pass when we say so
    cfg = simulated_config(resilience={"breaker": {"consecutive_failures": 2, "cooldown_s": 30}})
    gw = Gateway(cfg, clock=gw_clock)
    health = HealthConfig(probes={A: ProbeConfig(interval_s=60, prompt="hi"),
                                  O: ProbeConfig(max_tokens=16)})
    svc = HealthService(gw, store_path=None, clock=FakeClock(1_760_000_000.0), config=health)
    attach(svc.gw, svc)
    return svc, gw_clock


def test_probe_request_is_one_token_in_the_targets_own_format() -> None:
    svc, _ = make()
    body = orjson.loads(probe_body(svc.prober.targets[A], svc.cfg.probes[A]))
    assert body == {"model": "claude-sonnet-4-5", "max_tokens": 1,
                    "messages": [{"role": "user", "content": "hi"}]}
    assert orjson.loads(probe_body(svc.prober.targets[O], svc.cfg.probes[O]))["max_tokens"] == 16


def test_probes_feed_windows_and_breaker_and_serve_the_half_open_trial() -> None:
    async def scenario() -> None:
        svc, gw_clock = make()
        gw = svc.gw
        await gw.start()
        try:
            sim = gw.providers["anthropic"].server
            ok = await svc.prober.probe(A)
            assert ok.outcome == "ok" and ok.ms >= 0
            sim_requests = [r for r in sim.last_requests if r.path == "/v1/messages"]
            assert orjson.loads(sim_requests[-1].body)["max_tokens"] == 1

            sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503))
            assert (await svc.prober.probe(A)).outcome == "server_error"
            assert (await svc.prober.probe(A)).outcome == "server_error"
            breaker = gw.board.get(A)
            assert breaker.state.value == "open"           # probes alone opened it
            skipped = await svc.prober.probe(A)
            assert skipped.outcome == "skipped:breaker_open"
            svc.tick()
            st = svc.monitor.states[f"target:{A}"]
            assert st.stats.n == 3 and st.stats.failures == 2   # skips are not fed
            assert st.status == "major_outage"
            assert "circuit breaker open: server_error" in st.reasons

            assert not svc.prober.due(A, gw_clock())         # cooling down, interval not over
            gw_clock.advance(31)                             # cool-down over: due at once
            assert svc.prober.next_at[A] > gw_clock()        # …though its interval is not
            assert svc.prober.due(A, gw_clock())
            sim.clear_faults()
            trial = await svc.prober.probe(A)
            assert trial.outcome == "ok" and breaker.state.value == "closed"
            from ridethrough.web import metrics

            svc.tick()
            text = metrics.render(svc)
            assert f'ridethrough_probes_total{{target="{A}",outcome="server_error"}} 2' in text
            assert f'ridethrough_probes_total{{target="{A}",outcome="ok"}} 2' in text
        finally:
            await gw.close()
    asyncio.run(scenario())


def test_probe_loop_runs_on_its_own_and_skips_drained_targets() -> None:
    async def scenario() -> None:
        svc, _ = make()
        gw = svc.gw
        await gw.start()
        try:
            gw.board.force(O, "down")
            ticks = 0

            async def sleep(_: float) -> None:
                nonlocal ticks
                ticks += 1
                if ticks >= 3:
                    raise asyncio.CancelledError
                await asyncio.sleep(0.05)

            try:
                await svc.prober.run(sleep)
            except asyncio.CancelledError:
                pass
            assert svc.prober.last[A].outcome == "ok"
            assert svc.prober.last[O].outcome == "skipped:drained"
        finally:
            await gw.close()
    asyncio.run(scenario())
