"""The latency model and the timeouts derived from it, on an injected clock."""

from __future__ import annotations

import pytest

from ridethrough.config import AdaptiveTimeoutConfig, HedgeConfig, Timeouts
from ridethrough.routing.clock import FakeClock
from ridethrough.routing.latency import LatencyModel, output_bucket
from ridethrough.routing.timeouts import CallShape, TimeoutPolicy

T = "p/m"


def model(clock: FakeClock, **kw) -> LatencyModel:
    return LatencyModel(clock, min_samples=kw.pop("min_samples", 20), **kw)


def test_quantiles_need_enough_samples_then_follow_the_data():
    clock = FakeClock()
    m = model(clock)
    for i in range(19):
        m.observe(T, "first_token", 0.1 + i * 0.001)
    assert m.quantile(T, "first_token", 0.99) is None       # cold: not enough to trust
    m.observe(T, "first_token", 0.5)
    clock.advance(1.1)                                         # reads are cached for 1 s
    assert m.quantile(T, "first_token", 0.5) == pytest.approx(0.11, rel=0.03)
    assert m.quantile(T, "first_token", 1.0) == pytest.approx(0.5, rel=0.03)
    assert m.quantile(T, "headers", 0.99) is None             # phases are apart
    assert m.quantile("other/m", "first_token", 0.99) is None  # and targets


def test_the_window_rolls_old_latency_out():
    clock = FakeClock()
    m = model(clock, slice_s=60, slices=10, min_samples=5)
    for _ in range(50):
        m.observe(T, "headers", 5.0)                           # a slow spell
    clock.advance(5 * 60)
    for _ in range(50):
        m.observe(T, "headers", 0.2)
    clock.advance(1.1)
    assert m.quantile(T, "headers", 0.75) == pytest.approx(5.0, rel=0.03)  # half and half
    clock.advance(6 * 60)                                      # the slow spell is > 10 min old
    for _ in range(5):
        m.observe(T, "headers", 0.2)
    clock.advance(1.1)
    assert m.quantile(T, "headers", 0.99) == pytest.approx(0.2, rel=0.03)
    assert m.count(T, "headers") == 55


def test_json_answers_are_bucketed_by_the_output_size_asked_for():
    assert output_bucket(100) == "complete:le256"
    assert output_bucket(1000) == "complete:le1024"
    assert output_bucket(4096) == "complete:le4096"
    assert output_bucket(32000) == output_bucket(None) == output_bucket(0) == "complete:long"
    assert CallShape(stream=True, max_tokens=100).commit_phase == "first_token:long"
    # A stream's first token waits on reading the prompt: bucketed by its estimated size.
    assert CallShape(stream=True, input_tokens=500).commit_phase == "first_token:le4096"
    assert CallShape(stream=True, input_tokens=20000).commit_phase == "first_token:le32768"
    assert CallShape(stream=True, input_tokens=150000).commit_phase == "first_token:long"
    assert CallShape(stream=False, max_tokens=100).commit_phase == "complete:le256"


def policy(clock: FakeClock, **hedge) -> TimeoutPolicy:
    return TimeoutPolicy(model(clock, min_samples=5),
                         AdaptiveTimeoutConfig(multiplier=4.0, floor_first_byte_s=2.0,
                                               floor_first_token_s=3.0, floor_complete_s=10.0),
                         HedgeConfig(**hedge))


CEILINGS = Timeouts(first_byte=15, first_token=60, idle=30, total=600)


def test_timeouts_are_the_ceilings_until_learned_then_k_times_p99_clamped():
    clock = FakeClock()
    p = policy(clock)
    stream = CallShape(stream=True)
    assert p.for_attempt(T, CEILINGS, stream) is CEILINGS
    for _ in range(10):
        p.model.observe(T, "headers", 0.2)           # 4 × 0.2 = 0.8 s: below the 2 s floor
        p.model.observe(T, "first_token:long", 1.0)       # 4 × 1.0 = 4 s
    clock.advance(1.1)
    t = p.for_attempt(T, CEILINGS, stream)
    assert t.first_byte == 2.0
    assert t.first_token == pytest.approx(4.0, rel=0.03)
    assert (t.idle, t.total, t.connect) == (30, 600, CEILINGS.connect)
    for _ in range(10):
        p.model.observe(T, "complete:le1024", 30.0)  # 4 × 30 = 120 s
        p.model.observe(T, "complete:long", 200.0)   # 4 × 200 = 800 s: above the ceiling
    clock.advance(1.1)
    assert p.for_attempt(T, CEILINGS, CallShape(False, 1000)).total == pytest.approx(120, rel=0.03)
    assert p.for_attempt(T, CEILINGS, CallShape(False, 8000)).total == 600
    assert p.for_attempt(T, CEILINGS, CallShape(False, 100)).total == 600   # that bucket: cold


def test_adaptive_timeouts_can_be_turned_off():
    clock = FakeClock()
    p = TimeoutPolicy(model(clock, min_samples=1), AdaptiveTimeoutConfig(enabled=False), HedgeConfig())
    p.model.observe(T, "first_token:long", 0.1)
    clock.advance(1.1)
    assert p.for_attempt(T, CEILINGS, CallShape(stream=True)) is CEILINGS


def test_the_hedge_delay_is_a_learned_quantile_or_a_fixed_delay():
    clock = FakeClock()
    p = policy(clock)
    shape = CallShape(stream=True)
    assert p.hedge_delay(T, shape) is None           # nothing learned: no hedging yet
    for i in range(100):
        p.model.observe(T, "first_token:long", 0.1 if i < 95 else 2.0)
    clock.advance(1.1)
    assert p.hedge_delay(T, shape) == pytest.approx(2.0, rel=0.03)   # the default: p99
    p95 = policy(clock, quantile=0.95)
    p95.model = p.model
    assert p95.hedge_delay(T, shape) == pytest.approx(0.1, rel=0.03)
    assert policy(clock, delay_s=0.7).hedge_delay(T, shape) == 0.7
    assert policy(clock, enabled=False).hedge_delay(T, shape) is None
    fast = policy(clock, min_delay_s=0.25)
    for _ in range(10):
        fast.model.observe(T, "first_token:long", 0.01)
    clock.advance(1.1)
    assert fast.hedge_delay(T, shape) == 0.25        # never below min_delay_s


def test_slow_successes_are_far_past_the_p99():
    clock = FakeClock()
    p = policy(clock)
    shape = CallShape(stream=False, max_tokens=100)
    assert not p.is_slow(T, shape, 100.0, 3.0)        # cold: nothing to compare with
    for _ in range(10):
        p.model.observe(T, "complete:le256", 1.0)
    clock.advance(1.1)
    assert not p.is_slow(T, shape, 2.5, 3.0)
    assert p.is_slow(T, shape, 3.5, 3.0)


def test_sketches_round_trip_and_merge_exactly_across_workers():
    from ridethrough.routing.latency import merge_exports, sketch_from_json, sketch_to_json

    clock = FakeClock()
    a, b, both = model(clock, min_samples=1), model(clock, min_samples=1), model(clock, min_samples=1)
    for i in range(300):
        value = 0.05 + (i % 37) * 0.01
        (a if i % 3 else b).observe(T, "first_token:long", value)
        both.observe(T, "first_token:long", value)
    clock.advance(1.1)
    [key] = a.export()
    again = sketch_from_json(sketch_to_json(a._merged(a._series[(T, "first_token:long")])))
    assert again.count == a.count(T, "first_token:long")
    assert again.get_quantile_value(0.9) == a.quantile(T, "first_token:long", 0.9)
    [row] = merge_exports([a.export(), b.export()], min_samples=20)
    assert key == f"{T}|first_token:long"
    assert row["count"] == 300 and row["warm"]
    for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        assert row[name] == round(both.quantile(T, "first_token:long", q) * 1000, 1)


def test_a_limit_learned_from_short_prompts_does_not_cut_long_ones():
    clock = FakeClock()
    p = policy(clock)
    for _ in range(10):
        p.model.observe(T, "first_token:le4096", 0.5)   # short prompts: first token in 0.5 s
    clock.advance(1.1)
    assert p.for_attempt(T, CEILINGS, CallShape(True, input_tokens=300)).first_token == 3.0
    long_prompt = CallShape(True, input_tokens=120_000)
    assert p.for_attempt(T, CEILINGS, long_prompt).first_token == 60      # cold: the ceiling
    assert p.hedge_delay(T, long_prompt) is None                          # and no early hedge
