"""Breaker policy on an injected FakeClock: when a target is skipped, probed, and trusted again."""

from __future__ import annotations

import pytest

from ridethrough.config import BreakerConfig
from ridethrough.routing.breaker import Breaker, BreakerBoard, State
from ridethrough.routing.clock import FakeClock


def make(clock: FakeClock, **cfg) -> Breaker:
    values = {"consecutive_failures": 3, "error_rate": 0.5, "window_s": 30, "min_requests": 1000,
              "cooldown_s": 10, "max_cooldown_s": 60}
    values.update(cfg)
    return Breaker("p/m", BreakerConfig(**values), clock)


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


def fail(b: Breaker, n: int = 1, *, slow: bool = False) -> None:
    for _ in range(n):
        assert b.acquire()
        b.record_failure("timeout" if slow else "server_error", slow=slow)


# -- closed → open ---------------------------------------------------------------------


def test_opens_after_n_consecutive_failures(clock):
    b = make(clock)
    fail(b, 2)
    assert b.state is State.CLOSED and b.availability() is None
    fail(b)
    assert b.state is State.OPEN
    assert b.availability() == "breaker_open"
    assert not b.acquire()
    assert b.opened_count == 1 and b.last_error == "server_error"


def test_a_success_resets_the_consecutive_count(clock):
    b = make(clock)
    fail(b, 2)
    b.acquire()
    b.record_success()
    fail(b, 2)
    assert b.state is State.CLOSED


def test_opens_on_error_rate_over_the_window_once_enough_requests(clock):
    b = make(clock, consecutive_failures=100, min_requests=6, error_rate=0.5)
    for _ in range(2):                       # S F S F: 50 % but only 4 requests
        b.record_success()
        b.record_failure()
    assert b.state is State.CLOSED
    b.record_success()                       # 5 requests, 2 failures
    b.record_failure()                       # 6 requests, 3 failures = 50 %
    assert b.state is State.OPEN


def test_error_rate_below_threshold_stays_closed(clock):
    b = make(clock, consecutive_failures=100, min_requests=4, error_rate=0.5)
    for _ in range(10):                      # S S F: 33 %
        b.record_success()
        b.record_success()
        b.record_failure()
    assert b.state is State.CLOSED


def test_old_outcomes_slide_out_of_the_window(clock):
    b = make(clock, consecutive_failures=100, min_requests=4, error_rate=0.5, window_s=30)
    for _ in range(3):
        b.record_failure()
        b.record_success()                   # 3 failures in 6: would open on the next failure
    clock.advance(31)                        # ...but they are history now
    b.record_success()
    b.record_success()
    b.record_failure()
    assert b.state is State.CLOSED
    assert b.snapshot()["window_requests"] == 3


# -- open → half-open → closed -----------------------------------------------------------


def test_open_until_the_cooldown_then_exactly_one_probe(clock):
    b = make(clock)
    fail(b, 3)
    clock.advance(9.9)
    assert b.availability() == "breaker_open"
    assert b.recovers_at() == pytest.approx(clock() + 0.1)
    clock.advance(0.1)
    assert b.availability() is None          # due for a probe
    assert b.acquire()
    assert b.state is State.HALF_OPEN
    assert b.availability() == "breaker_half_open"
    assert not b.acquire()                   # a second request may not probe concurrently
    b.record_success()
    assert b.state is State.CLOSED and b.cooldown == 0
    assert b.acquire() and b.acquire()       # closed: no limit


def test_a_released_probe_frees_the_slot_without_a_verdict(clock):
    b = make(clock)
    fail(b, 3)
    clock.advance(10)
    assert b.acquire()
    b.release()                              # e.g. cancelled, or our own pool was full
    assert b.state is State.HALF_OPEN
    assert b.acquire()


def test_slowly_failed_probes_double_the_cooldown_up_to_the_cap(clock):
    b = make(clock, cooldown_s=10, max_cooldown_s=60)
    fail(b, 3)
    cooldowns = [b.cooldown]
    for _ in range(4):
        clock.advance(b.cooldown)
        fail(b, slow=True)                   # the probe timed out: the target is frozen
        assert b.state is State.OPEN
        cooldowns.append(b.cooldown)
    assert cooldowns == [10, 20, 40, 60, 60]
    clock.advance(59)
    assert b.availability() == "breaker_open"
    assert b.opened_count == 5


def test_success_after_recovery_restarts_from_the_base_cooldown(clock):
    b = make(clock, cooldown_s=10)
    fail(b, 3)
    clock.advance(10)
    fail(b)                                   # cooldown 20
    clock.advance(20)
    b.acquire()
    b.record_success()
    fail(b, 3)
    assert b.cooldown == 10


# -- operator overrides and hold-downs ----------------------------------------------------


def test_forced_down_drains_even_a_healthy_target(clock):
    board = BreakerBoard(BreakerConfig(), clock)
    b = board.force("p/m", "down")
    assert b.availability() == "drained" and not b.acquire()
    board.force("p/m", None)
    assert b.availability() is None


def test_forced_up_ignores_an_open_breaker_and_holds(clock):
    board = BreakerBoard(BreakerConfig(consecutive_failures=1), clock)
    b = board.get("p/m")
    fail(b)
    b.hold_down(600, "auth")
    board.force("p/m", "up")
    assert b.availability() is None and b.acquire()
    assert b.acquire()                       # no probe limit while forced up
    board.force("p/m", None)                 # back to auto: the hold is lifted, the breaker stays
    assert b.availability() == "breaker_open"


def test_board_rejects_unknown_modes(clock):
    with pytest.raises(ValueError):
        BreakerBoard(BreakerConfig(), clock).force("p/m", "sideways")


def test_hold_down_skips_the_target_for_its_duration(clock):
    b = make(clock)
    b.hold_down(600, "quota_exhausted")
    assert b.availability() == "quota_exhausted" and not b.acquire()
    assert b.recovers_at() == clock() + 600
    b.hold_down(60, "auth")                  # a shorter hold never shortens a longer one
    assert b.recovers_at() == clock() + 600
    clock.advance(600)
    assert b.availability() is None


def test_snapshot_reports_state_for_the_admin_api(clock):
    b = make(clock)
    fail(b, 3)
    snap = b.snapshot()
    assert snap["state"] == "open" and snap["available"] is False
    assert snap["skip_reason"] == "breaker_open" and snap["retry_in_s"] == 10
    assert snap["consecutive_failures"] == 3 and snap["window_error_rate"] == 1.0
    b.hold_down(100, "auth")
    snap = b.snapshot()
    assert snap["hold_reason"] == "auth" and snap["held_for_s"] == 100


def test_each_target_has_its_own_breaker(clock):
    board = BreakerBoard(BreakerConfig(consecutive_failures=1), clock)
    fail(board.get("a/m"))
    assert board.get("a/m").state is State.OPEN
    assert board.get("b/m").state is State.CLOSED
    assert board.get("a/m") is board.get("a/m")
    assert {s["target"] for s in board.snapshot()} == {"a/m", "b/m"}


def test_only_the_probe_decides_a_half_open_breaker(clock):
    b = make(clock)
    slow = [b.acquire() for _ in range(3)]           # sent while closed, still in flight
    for _ in range(3):
        b.record_failure("server_error")               # others fail: the breaker opens
    assert b.state is State.OPEN
    clock.advance(10)
    probe = b.acquire()
    assert probe and probe.probe and b.state is State.HALF_OPEN
    b.record_failure("timeout", slow[0])               # a late failure from before the opening
    assert b.state is State.HALF_OPEN and b.probe_in_flight  # neither re-opened nor freed
    b.record_success(slow[1])                           # a late success does not close it either
    assert b.state is State.HALF_OPEN
    b.release(slow[2])
    assert not b.acquire()                              # still one probe at a time
    b.record_success(probe)                             # the probe's own verdict
    assert b.state is State.CLOSED and not b.probe_in_flight


def test_a_probe_failure_reopens_with_a_longer_cool_down(clock):
    b = make(clock)
    for _ in range(3):
        b.acquire()
        b.record_failure("server_error")
    clock.advance(10)
    probe = b.acquire()
    b.record_failure("timeout", probe, slow=True)
    assert b.state is State.OPEN and b.cooldown == 20


# -- getting back to the primary promptly ----------------------------------------------


def test_fast_probe_failures_keep_the_base_cooldown(clock):
    # A provider that refuses in a millisecond is cheap to ask again: however many probes
    # fail that way, the next is due cooldown_s later, so recovery is seen within it.
    b = make(clock, cooldown_s=10, max_cooldown_s=60)
    fail(b, 3)
    for _ in range(5):
        clock.advance(10)
        fail(b)                                # refused / 503 at once
        assert b.state is State.OPEN and b.cooldown == 10
    clock.advance(10)
    probe = b.acquire()                        # the provider is back
    assert probe and probe.probe
    b.record_success(probe)
    assert b.state is State.CLOSED


# -- slow calls ------------------------------------------------------------------------


def test_a_handful_of_slow_calls_open_the_breaker(clock):
    b = make(clock, slow_call_window=10, slow_call_min=5, slow_call_rate=0.5)
    for _ in range(5):                          # healthy traffic first
        b.acquire()
        b.record_success()
    for _ in range(4):
        b.acquire()
        b.record_hedge_lost()                   # a backup answered first: late, not failed
    assert b.state is State.CLOSED
    b.acquire()
    b.record_failure("timeout", slow=True)      # 5 slow of the last 10
    assert b.state is State.OPEN and b.opened_reason == "slow_calls"
    assert b.availability() == "breaker_open"


def test_a_few_slow_calls_among_many_fast_ones_do_not_open_it(clock):
    b = make(clock, slow_call_window=10, slow_call_min=5, slow_call_rate=0.5)
    for i in range(200):                        # one in ten is slow: a healthy tail
        b.acquire()
        if i % 10 == 0:
            b.record_hedge_lost()
        else:
            b.record_success()
    assert b.state is State.CLOSED and b.opened_count == 0


def test_slow_successes_count_as_slow_calls(clock):
    b = make(clock, slow_call_window=6, slow_call_min=6, slow_call_rate=0.5)
    for _ in range(3):
        b.acquire()
        b.record_success()
    for _ in range(3):
        b.acquire()
        b.record_success(slow=True)             # answered, but far past the learned p99
    assert b.state is State.OPEN and b.opened_reason == "slow_calls"


def test_a_probe_that_loses_its_hedge_reopens_with_a_doubled_cooldown(clock):
    b = make(clock, cooldown_s=10, max_cooldown_s=60)
    fail(b, 3)
    clock.advance(10)
    probe = b.acquire()
    b.record_hedge_lost(probe)                  # still frozen: the backup answered first
    assert b.state is State.OPEN and b.cooldown == 20 and not b.probe_in_flight


def test_after_recovery_one_slow_call_does_not_reopen_it(clock):
    b = make(clock, slow_call_window=10, slow_call_min=5, slow_call_rate=0.5)
    for _ in range(5):
        b.acquire()
        b.record_hedge_lost()
    assert b.state is State.OPEN
    clock.advance(10)
    probe = b.acquire()
    b.record_success(probe)                     # recovered
    b.acquire()
    b.record_hedge_lost()                       # one late call: the tail, not a new outage
    assert b.state is State.CLOSED
