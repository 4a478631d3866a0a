"""Breakers end to end: a dead target stops receiving traffic, and gets it back when it heals.

The gateway runs on an injected ``FakeClock`` (and its ``sleep``), so cool-downs pass when
the test says so; what is asserted is what the simulators received and who answered.
"""

from __future__ import annotations

import threading

import pytest

from ridethrough.routing.breaker import State
from ridethrough.routing.clock import FakeClock
from ridethrough.simulator import Fault, FaultKind

ROUTE = "claude-first"


@pytest.fixture()
def fake() -> FakeClock:
    return FakeClock()


def _breaker_cfg(kit, **breaker):
    values = {"consecutive_failures": 3, "cooldown_s": 15, "max_cooldown_s": 120,
              "min_requests": 1000}
    values.update(breaker)
    return kit.config(resilience={"breaker": values})


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_breaker_opens_and_the_dead_target_stops_receiving_traffic(
        resilience_kit, start_gateway, fake, sdk, stream):
    kit = resilience_kit
    gt = start_gateway(_breaker_cfg(kit), clock=fake, sleep=fake.sleep)
    primary, secondary = kit.ROUTES[ROUTE]
    p_sim, s_sim = kit.sim(gt, primary), kit.sim(gt, secondary)
    p_sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503))

    # Request 1: the primary fails twice (one same-target retry); request 2: its third
    # consecutive failure opens the breaker, so the retry is not even tried.
    for i in range(2):
        prompt = f"opening {i}"
        assert kit.answered_by(kit.ask(sdk, gt.url, ROUTE, prompt, stream=stream), secondary, prompt)
    assert p_sim.stats.total == 3
    breaker = gt.gateway.board.get(kit.target_key(primary))
    assert breaker.state is State.OPEN

    for i in range(6):
        prompt = f"while open {i}"
        seen = kit.ask(sdk, gt.url, ROUTE, prompt, stream=stream)
        assert kit.answered_by(seen, secondary, prompt), seen
        assert seen.headers["x-ridethrough-attempts"] == "1"
        assert f"{kit.target_key(primary)}=breaker_open" in seen.headers["x-ridethrough-fallback-reason"]
    assert p_sim.stats.total == 3            # not one more request reached the dead target
    assert s_sim.stats.total == 8


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_half_open_recovery_sends_traffic_back(resilience_kit, start_gateway, fake, sdk, stream):
    kit = resilience_kit
    gt = start_gateway(_breaker_cfg(kit), clock=fake, sleep=fake.sleep)
    primary, secondary = kit.ROUTES[ROUTE]
    p_sim, s_sim = kit.sim(gt, primary), kit.sim(gt, secondary)
    breaker = gt.gateway.board.get(kit.target_key(primary))
    p_sim.set_fault(Fault(FaultKind.RESET))
    while breaker.state is not State.OPEN:
        kit.ask(sdk, gt.url, ROUTE, "trip", stream=stream)
    p_sim.clear_faults()
    p_sim.stats.reset()

    # The provider healed, but the cool-down has not passed: still no traffic.
    fake.advance(14)
    assert kit.answered_by(kit.ask(sdk, gt.url, ROUTE, "too early", stream=stream), secondary, "too early")
    assert p_sim.stats.total == 0

    # Past the cool-down the next request is the probe; its success closes the breaker.
    fake.advance(2)
    assert kit.answered_by(kit.ask(sdk, gt.url, ROUTE, "probe", stream=stream), primary, "probe")
    assert breaker.state is State.CLOSED
    s_before = s_sim.stats.total
    for i in range(3):
        prompt = f"recovered {i}"
        assert kit.answered_by(kit.ask(sdk, gt.url, ROUTE, prompt, stream=stream), primary, prompt)
    assert p_sim.stats.total == 4
    assert s_sim.stats.total == s_before


def _open_the_primary(kit, start_gateway, fake):
    """A gateway on the fake clock whose primary's breaker 500s have just opened."""
    gt = start_gateway(_breaker_cfg(kit), clock=fake, sleep=fake.sleep)
    primary, _ = kit.ROUTES[ROUTE]
    p_sim = kit.sim(gt, primary)
    breaker = gt.gateway.board.get(kit.target_key(primary))
    p_sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=500))
    while breaker.state is not State.OPEN:
        kit.ask("anthropic", gt.url, ROUTE, "trip", stream=False)
    return gt, p_sim, breaker


def test_a_probe_refused_at_once_keeps_the_base_cooldown(resilience_kit, start_gateway, fake):
    """A 500 in a millisecond costs nothing: the breaker asks again after the same 15 s, so
    a provider that comes back gets its traffic back within one cool-down."""
    kit = resilience_kit
    gt, p_sim, breaker = _open_the_primary(kit, start_gateway, fake)
    primary, secondary = kit.ROUTES[ROUTE]
    p_sim.stats.reset()

    for i in range(3):
        fake.advance(15.5)                  # cool-down 15 s: one probe, which fails fast
        prompt = f"p{i}"
        assert kit.answered_by(kit.ask("anthropic", gt.url, ROUTE, prompt, stream=False),
                               secondary, prompt)
        assert p_sim.stats.total == i + 1   # the probe only: no retry once re-opened
        assert breaker.state is State.OPEN and breaker.cooldown == 15
    p_sim.clear_faults()                    # the provider recovers
    fake.advance(15.5)
    assert kit.answered_by(kit.ask("anthropic", gt.url, ROUTE, "back", stream=False), primary, "back")
    assert breaker.state is State.CLOSED


def test_a_probe_that_times_out_reopens_with_a_doubled_cooldown(resilience_kit, start_gateway,
                                                                 fake):
    kit = resilience_kit
    gt, p_sim, breaker = _open_the_primary(kit, start_gateway, fake)
    primary, secondary = kit.ROUTES[ROUTE]
    p_sim.set_fault(Fault(FaultKind.HANG_BEFORE_HEADERS))   # now it freezes
    p_sim.stats.reset()

    fake.advance(15.5)                      # cool-down 15 s: one probe, which times out
    assert kit.answered_by(kit.ask("anthropic", gt.url, ROUTE, "p1", stream=False), secondary, "p1")
    assert p_sim.stats.total == 1           # the probe only: no same-target retry once re-opened
    assert breaker.state is State.OPEN and breaker.cooldown == 30

    fake.advance(16)                        # the old cool-down would have passed; the new has not
    kit.ask("anthropic", gt.url, ROUTE, "p2", stream=False)
    assert p_sim.stats.total == 1
    fake.advance(15)
    p_sim.clear_faults()
    assert kit.answered_by(kit.ask("anthropic", gt.url, ROUTE, "p3", stream=False), primary, "p3")
    assert breaker.state is State.CLOSED


def test_half_open_lets_exactly_one_probe_through(resilience_kit, start_gateway, fake):
    """While the (slow) probe is in flight, concurrent requests go elsewhere."""
    kit = resilience_kit
    roomy = {"first_byte": 10, "first_token": 10, "idle": 10, "total": 10}  # slow, not hung
    cfg = kit.config(providers={"a_primary": {"timeouts": roomy}},
                     resilience={"breaker": {"consecutive_failures": 3, "cooldown_s": 15}})
    gt = start_gateway(cfg, clock=fake, sleep=fake.sleep)
    primary, secondary = kit.ROUTES[ROUTE]
    p_sim, s_sim = kit.sim(gt, primary), kit.sim(gt, secondary)
    breaker = gt.gateway.board.get(kit.target_key(primary))
    p_sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503))
    while breaker.state is not State.OPEN:
        kit.ask("openai", gt.url, ROUTE, "trip", stream=False)
    p_sim.stats.reset()
    s_sim.stats.reset()
    p_sim.set_fault(Fault(FaultKind.SLOW_TOKENS, token_delay_s=0.02))   # ~1 s to answer
    fake.advance(16)

    results = {}
    probe = threading.Thread(target=lambda: results.__setitem__(
        "probe", kit.ask("openai", gt.url, ROUTE, "slow probe", stream=False)))
    probe.start()
    while p_sim.stats.total == 0:           # the probe has reached the primary
        threading.Event().wait(0.005)
    others = [kit.ask("openai", gt.url, ROUTE, f"meanwhile {i}", stream=False) for i in range(3)]
    probe.join(10)

    assert kit.answered_by(results["probe"], primary, "slow probe")
    for i, seen in enumerate(others):
        assert kit.answered_by(seen, secondary, f"meanwhile {i}"), seen
        assert "breaker_half_open" in seen.headers["x-ridethrough-fallback-reason"]
    assert p_sim.stats.total == 1
    assert breaker.state is State.CLOSED


def test_every_breaker_open_goes_to_the_soonest_recovering_target(resilience_kit, start_gateway, fake):
    kit = resilience_kit
    gt = start_gateway(_breaker_cfg(kit, consecutive_failures=1), clock=fake, sleep=fake.sleep)
    primary, secondary = kit.ROUTES[ROUTE]
    p_sim, s_sim = kit.sim(gt, primary), kit.sim(gt, secondary)
    p_sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503))
    kit.ask("anthropic", gt.url, ROUTE, "open the primary", stream=False)   # opens at t
    fake.advance(5)
    s_sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503))
    kit.ask("anthropic", gt.url, ROUTE, "open the secondary", stream=False)  # opens at t+5
    board = gt.gateway.board
    assert board.get(kit.target_key(primary)).state is State.OPEN
    assert board.get(kit.target_key(secondary)).state is State.OPEN

    p_sim.reset()
    s_sim.reset()
    # Both open, neither due: instead of failing at once, try the one due back first.
    seen = kit.ask("anthropic", gt.url, ROUTE, "both open", stream=False)
    assert kit.answered_by(seen, primary, "both open"), seen
    assert s_sim.stats.total == 0


def test_every_breaker_open_goes_to_the_last_resort(resilience_kit, start_gateway, fake):
    kit = resilience_kit
    cfg = kit.config(
        providers={"last": {"kind": "simulated", "format": "openai", "token_delay_s": 0,
                            "timeouts": kit.FAST_TIMEOUTS}},
        routes={ROUTE: {"last_resort": "last/gpt-4o-mini"}},
        resilience={"breaker": {"consecutive_failures": 1}},
    )
    gt = start_gateway(cfg, clock=fake, sleep=fake.sleep)
    primary, secondary = kit.ROUTES[ROUTE]
    for name in (primary, secondary):
        kit.sim(gt, name).set_fault(Fault(FaultKind.HTTP_ERROR, status=503))
    kit.ask("openai", gt.url, ROUTE, "open both", stream=False)
    for name in (primary, secondary):
        assert gt.gateway.board.get(kit.target_key(name)).state is State.OPEN
        kit.sim(gt, name).reset()

    seen = kit.ask("openai", gt.url, ROUTE, "to the last resort", stream=True)
    assert seen.error is None and seen.finished, seen
    assert seen.target == "last/gpt-4o-mini"
    assert seen.text.startswith("[last] Here is a short answer about: to the last resort")
    assert kit.sim(gt, primary).stats.total == 0 and kit.sim(gt, secondary).stats.total == 0
