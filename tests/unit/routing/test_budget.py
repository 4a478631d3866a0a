"""Retry budget: same-target retries stay a bounded fraction of traffic (no retry storms)."""

from __future__ import annotations

from ridethrough.routing.budget import RetryBudget
from ridethrough.routing.clock import FakeClock


def test_a_quiet_gateway_starts_with_its_per_second_allowance():
    b = RetryBudget(ratio=0.0, min_per_s=3, clock=FakeClock())
    assert [b.try_spend() for _ in range(4)] == [True, True, True, False]
    assert b.spent == 3 and b.refused == 1


def test_each_request_deposits_ratio_of_a_retry():
    clock = FakeClock()
    b = RetryBudget(ratio=0.2, min_per_s=0, clock=clock)
    granted = 0
    for _ in range(50):                       # an outage: every request wants a retry
        b.on_request()
        granted += b.try_spend()
    assert granted == 10                      # 20 % of 50 requests, not 50 retries
    assert b.refused == 40


def test_time_refills_at_min_per_s_up_to_the_cap():
    clock = FakeClock()
    b = RetryBudget(ratio=0.0, min_per_s=2, clock=clock, cap=5)
    while b.try_spend():
        pass
    assert not b.try_spend()
    clock.advance(0.5)                        # 1 token
    assert b.try_spend() and not b.try_spend()
    clock.advance(3600)                       # an idle hour saves up only `cap`
    assert sum(b.try_spend() for _ in range(10)) == 5


def test_deposits_are_capped_too():
    b = RetryBudget(ratio=1.0, min_per_s=0, clock=FakeClock(), cap=3)
    for _ in range(10):
        b.on_request()
    assert sum(b.try_spend() for _ in range(10)) == 3


def test_a_zero_budget_never_retries():
    b = RetryBudget(ratio=0.0, min_per_s=0, clock=FakeClock())
    b.on_request()
    assert not b.try_spend()
