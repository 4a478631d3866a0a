"""The timeout-shaped outage, through both official SDKs over real sockets.

The primary freezes in each shape seen on 2025-03-07 ("Connection Timed Out"): the port
takes no connection, the request gets no headers, the headers come and then nothing (a JSON
body or a stream's first token never arrive), or a stream stalls after it started. The
gateway runs with its *default* timeouts (15 s for stream headers, 600 s for a JSON answer),
so the only way these tests finish promptly is the behaviour under test: once the latency
model has learned the primary (a warm-up of healthy calls), an attempt past its p99 gets a
backup request to the secondary, which answers; the frozen attempt is cancelled as
``hedge_lost``, never waited out; and after a handful of such slow calls the breaker opens,
so later requests skip the primary without waiting at all.
"""

from __future__ import annotations

import pytest

from ridethrough.config import Timeouts
from ridethrough.simulator import Fault, FaultKind

SDKS = pytest.mark.parametrize("sdk,route", [("anthropic", "claude-first"), ("openai", "gpt-first")],
                               ids=["anthropic-sdk", "openai-sdk"])
MODES = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
DEFAULTS = Timeouts().model_dump()
WARM_UP = 25      # above adaptive.min_samples (20): the primary's latency is learned
AFTER_ONSET = 8

SHAPES = {
    "no_accept": lambda: Fault(FaultKind.NO_ACCEPT),
    "no_headers": lambda: Fault(FaultKind.HANG_BEFORE_HEADERS),
    # JSON: headers, then no body. Stream: headers, then no first token.
    "headers_then_silence": lambda: Fault(FaultKind.HANG_AFTER_HEADERS),
}


def default_timeouts_config(kit, **overrides):
    providers = {name: {"timeouts": dict(DEFAULTS)} for name in ("a_primary", "o_backup",
                                                                 "o_primary", "a_backup")}
    # The simulator answers in a few ms, so its learned p99 is tiny: a hedge no sooner than
    # 0.5 s keeps a CPU stall of this shared machine during the warm-up from being hedged.
    return kit.config(providers=providers, resilience={"hedge": {"min_delay_s": 0.5}},
                      **overrides)


def reason(seen) -> str:
    return seen.headers.get("x-ridethrough-fallback-reason", "")


@pytest.mark.parametrize("shape", list(SHAPES))
@MODES
@SDKS
def test_a_frozen_primary_is_hedged_then_skipped(resilience_kit, start_gateway, sdk, route,
                                                   stream, shape):
    kit = resilience_kit
    gt = start_gateway(default_timeouts_config(kit))
    primary, secondary = kit.ROUTES[route]
    p_sim, s_sim = kit.sim(gt, primary), kit.sim(gt, secondary)
    for i in range(WARM_UP):
        prompt = f"warm {i}"
        assert kit.answered_by(kit.ask(sdk, gt.url, route, prompt, stream=stream), primary, prompt)

    p_sim.set_fault(SHAPES[shape]())
    seen_all = []
    for i in range(AFTER_ONSET):
        prompt = f"frozen {shape} {i}"
        seen = kit.ask(sdk, gt.url, route, prompt, stream=stream)
        assert kit.answered_by(seen, secondary, prompt), seen   # every request answered
        seen_all.append(seen)

    primary_key = kit.target_key(primary)
    # The frozen attempts were cut short by the backup's answer, never waited out. (When the
    # port stops accepting, connections the gateway already had are dropped too: a request
    # on one of them fails at once as `connect` instead, which is just as quick.)
    reasons = [reason(s) for s in seen_all]
    assert any(f"{primary_key}=hedge_lost" in r for r in reasons), reasons
    assert not any(f"{primary_key}=timeout" in r or "first_token_timeout" in r for r in reasons)
    # A handful of slow calls opened the breaker: the last requests did not touch the primary.
    breaker = gt.gateway.board.get(primary_key)
    assert breaker.opened_count >= 1
    assert breaker.opened_reason == "slow_calls" or shape == "no_accept", breaker.opened_reason
    assert f"{primary_key}=breaker_open" in reasons[-1], reasons[-1]
    assert s_sim.stats.total == AFTER_ONSET
    stats = gt.gateway.executor.hedge_stats
    assert 1 <= stats["started"] <= 6 and stats["won"] == stats["started"]


@SDKS
def test_a_stream_that_stalls_after_it_started_ends_in_a_clean_in_band_error(
        resilience_kit, start_gateway, sdk, route):
    kit = resilience_kit
    short_idle = dict(DEFAULTS, idle=1.0)   # after commit only the idle gap bounds a stream
    cfg = kit.config(providers={"a_primary": {"timeouts": short_idle},
                                "o_primary": {"timeouts": short_idle}})
    gt = start_gateway(cfg)
    primary, _ = kit.ROUTES[route]
    kit.sim(gt, primary).set_fault(Fault(FaultKind.STALL_MID_STREAM, after_tokens=3))
    seen = kit.ask(sdk, gt.url, route, "stall after commit", stream=True)
    assert seen.target == kit.target_key(primary)
    assert seen.text and not seen.finished
    assert seen.in_band and seen.error_type == "api_error", seen


@SDKS
def test_healthy_traffic_sends_few_extra_requests(resilience_kit, start_gateway, sdk, route):
    """In a healthy steady state hedges fire only past the p99, within a 5 % budget."""
    kit = resilience_kit
    gt = start_gateway(default_timeouts_config(kit))
    primary, secondary = kit.ROUTES[route]
    n = 120
    for i in range(n):
        prompt = f"steady {i}"
        seen = kit.ask(sdk, gt.url, route, prompt, stream=bool(i % 2))
        assert seen.error is None and seen.finished, seen
    extra = kit.sim(gt, secondary).stats.total
    started = gt.gateway.executor.hedge_stats["started"]
    assert kit.sim(gt, primary).stats.total == n
    assert extra <= started <= 0.05 * n            # a backup cancelled early never arrives


def test_what_was_learned_is_shown_in_metrics_status_json_and_the_page(resilience_kit,
                                                                         start_gateway):
    import httpx

    kit = resilience_kit
    gt = start_gateway(default_timeouts_config(kit))
    primary, _ = kit.ROUTES["claude-first"]
    for i in range(WARM_UP):
        kit.ask("anthropic", gt.url, "claude-first", f"learn {i}", stream=True)
    key = kit.target_key(primary)
    health = httpx.get(gt.url + "/api/ridethrough/health.json").json()
    [learned] = health["latency"]                    # one process: one entry
    rows = {r["phase"]: r for r in learned["targets"] if r["target"] == key}
    short = "first_token:le4096"                     # short prompts: the smallest bucket
    assert rows[short]["count"] == WARM_UP and rows[short]["warm"]
    # Learned: the stream's first-token timeout is now far below its 60 s ceiling.
    assert rows[short]["timeout_s"] < DEFAULTS["first_token"]
    metrics = httpx.get(gt.url + "/metrics").text
    assert f'ridethrough_target_latency_seconds{{target="{key}",phase="{short}",quantile="0.99"}}' \
        in metrics
    assert f'ridethrough_attempt_timeout_seconds{{target="{key}",phase="headers"}}' in metrics
    assert 'ridethrough_hedges_total{result="started"} 0' in metrics
    page = httpx.get(gt.url + "/status").text
    assert "Learned latency" in page and key in page
