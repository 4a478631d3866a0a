"""Resilience policies end to end, seen from the SDK and counted at the simulators.

The end-to-end deadline, 429 handling, client errors, local saturation, the honest
"everything failed" error (and that the SDKs do not multiply it), hold-downs for bad keys
and exhausted quota, and the retry budget.
"""

from __future__ import annotations

import threading

import anthropic
import openai
import pytest

from ridethrough.routing.breaker import State
from ridethrough.routing.clock import FakeClock
from ridethrough.simulator import Fault, FaultKind

BOTH = pytest.mark.parametrize("sdk", ["anthropic", "openai"])
MODES = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
# Each SDK on the route whose primary speaks its own format (passthrough), so a client
# error from the primary is the caller's own and comes back unchanged.
SAME_FORMAT_ROUTE = {"anthropic": "claude-first", "openai": "gpt-first"}
CROSS_FORMAT_ROUTE = {"anthropic": "gpt-first", "openai": "claude-first"}


def _all_failed_shape(sdk: str, seen) -> list[dict]:
    """The 'everything failed' error as the SDK raised it; returns its attempt list."""
    assert seen.error is not None, seen
    assert seen.headers.get("x-should-retry") == "false"
    body = seen.error.body
    if sdk == "anthropic":
        assert isinstance(seen.error, anthropic.APIStatusError)
        assert seen.status == 529 and seen.error_type == "overloaded_error"
        err = body["error"]
    else:
        assert isinstance(seen.error, openai.APIStatusError)
        assert seen.status == 503
        err = body
        assert err["code"] == "all_targets_failed"
    assert err["message"].startswith("All targets failed")
    return err["attempts"]


# -- the deadline ------------------------------------------------------------------------


@MODES
@BOTH
def test_deadline_holds_when_every_target_hangs(resilience_kit, start_gateway, sdk, stream):
    """Targets that would each wait 30 s: the SDK's own timeout (2 s, sent as
    x-stainless-timeout / -read-timeout) sets the deadline (1 s: the timeout less the 1 s
    margin, but at least half of it), and the client gets ridethrough's error before its
    own timeout fires — and does not retry it. The primary's attempt left part of the
    deadline for the secondary (which hangs too), instead of spending all of it."""
    kit = resilience_kit
    slow = {"connect": 5, "first_byte": 30, "first_token": 30, "idle": 30, "total": 30}
    cfg = kit.config(providers={name: {"timeouts": slow} for name in
                                ("a_primary", "o_backup", "o_primary", "a_backup")})
    gt = start_gateway(cfg)
    route = SAME_FORMAT_ROUTE[sdk]
    primary, secondary = kit.ROUTES[route]
    for name in (primary, secondary):
        kit.sim(gt, name).set_fault(Fault(FaultKind.HANG_BEFORE_HEADERS))

    seen = kit.ask(sdk, gt.url, route, "deadline", stream=stream, max_retries=2, timeout=2.0)

    assert not isinstance(seen.error, (anthropic.APITimeoutError, openai.APITimeoutError)), seen
    attempts = _all_failed_shape(sdk, seen)
    assert [(a["target"], a["outcome"]) for a in attempts] == [
        (kit.target_key(primary), "timeout"), (kit.target_key(secondary), "timeout")]
    assert kit.sim(gt, primary).stats.total == 1      # no SDK retry, no gateway retry
    assert kit.sim(gt, secondary).stats.total == 1


# -- 429 ---------------------------------------------------------------------------------


@MODES
@BOTH
def test_429_fails_over_at_once(resilience_kit, start_gateway, sdk, stream):
    kit = resilience_kit
    gt = start_gateway(kit.config())
    route = SAME_FORMAT_ROUTE[sdk]
    primary, secondary = kit.ROUTES[route]
    kit.sim(gt, primary).set_fault(Fault(FaultKind.HTTP_ERROR, status=429, retry_after=5))
    seen = kit.ask(sdk, gt.url, route, "rate limited", stream=stream)
    assert kit.answered_by(seen, secondary, "rate limited"), seen
    assert kit.sim(gt, primary).stats.total == 1
    # Rate limiting is the provider protecting itself, not a fault: the breaker is untouched.
    b = gt.gateway.board.get(kit.target_key(primary))
    assert b.consecutive_failures == 0 and b.state is State.CLOSED


def test_429_on_the_only_target_waits_retry_after_once(resilience_kit, start_gateway):
    kit = resilience_kit
    fake = FakeClock()
    cfg = kit.config(routes={"solo": {"targets": [{"provider": "a_primary",
                                                   "model": "claude-sonnet-4-6"}]}})
    gt = start_gateway(cfg, clock=fake, sleep=fake.sleep)
    p_sim = kit.sim(gt, "a_primary")
    p_sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=429, retry_after=3))
    t0 = fake()
    seen = kit.ask("anthropic", gt.url, "solo", "nowhere else", stream=False, max_retries=2)
    attempts = _all_failed_shape("anthropic", seen)
    assert [a["outcome"] for a in attempts] == ["rate_limited", "rate_limited"]
    assert p_sim.stats.total == 2                    # once, then once after Retry-After
    assert fake() - t0 >= 3                          # the wait happened (on the fake clock)


# -- client errors -------------------------------------------------------------------------


@MODES
@BOTH
def test_client_error_from_a_same_format_primary_is_returned_not_retried(
        resilience_kit, start_gateway, sdk, stream):
    kit = resilience_kit
    gt = start_gateway(kit.config())
    route = SAME_FORMAT_ROUTE[sdk]
    primary, secondary = kit.ROUTES[route]
    if stream:
        # A streamed OpenAI-format call carries the stream_options ridethrough adds; once the
        # target has served one with it, a 400 naming no field is never put down to it.
        assert kit.answered_by(kit.ask(sdk, gt.url, route, "warm", stream=True), primary, "warm")
        kit.reset_sims(gt)
    kit.sim(gt, primary).set_fault(Fault(FaultKind.HTTP_ERROR, status=400))
    seen = kit.ask(sdk, gt.url, route, "bad request", stream=stream, max_retries=2)
    assert seen.status == 400, seen
    assert seen.error_type == "invalid_request_error"
    assert seen.headers.get("x-should-retry") == "false"
    assert kit.sim(gt, primary).stats.total == 1
    assert kit.sim(gt, secondary).stats.total == 0
    b = gt.gateway.board.get(kit.target_key(primary))
    assert b.consecutive_failures == 0          # the caller's mistake says nothing of the target


@BOTH
def test_a_400_after_translation_is_ours_and_fails_over(resilience_kit, start_gateway, sdk):
    kit = resilience_kit
    gt = start_gateway(kit.config())
    route = CROSS_FORMAT_ROUTE[sdk]
    primary, secondary = kit.ROUTES[route]
    kit.sim(gt, primary).set_fault(Fault(FaultKind.HTTP_ERROR, status=400))
    seen = kit.ask(sdk, gt.url, route, "translated", stream=False)
    assert kit.answered_by(seen, secondary, "translated"), seen
    assert "translation_error" in seen.headers["x-ridethrough-fallback-reason"]
    assert kit.sim(gt, primary).stats.total == 1


@BOTH
def test_a_200_carrying_an_error_is_failed_over_not_relayed(resilience_kit, start_gateway, sdk):
    """An upstream that answers 200 with an invalid_request_error body is misbehaving; the
    client must not receive that body as if its own request were wrong (with status 200)."""
    kit = resilience_kit
    gt = start_gateway(kit.config())
    route = SAME_FORMAT_ROUTE[sdk]
    primary, secondary = kit.ROUTES[route]
    kit.sim(gt, primary).set_fault(Fault(FaultKind.INBAND_ERROR_BEFORE_FIRST_TOKEN,
                                         error_type="invalid_request_error"))
    seen = kit.ask(sdk, gt.url, route, "odd 200", stream=False)
    assert kit.answered_by(seen, secondary, "odd 200"), seen
    assert "malformed_response" in seen.headers["x-ridethrough-fallback-reason"]


# -- local saturation ------------------------------------------------------------------------


@MODES
@BOTH
def test_local_saturation_fails_over_and_leaves_the_primary_breaker_closed(
        resilience_kit, start_gateway, sdk, stream):
    kit = resilience_kit
    route = "claude-first"
    primary, secondary = kit.ROUTES[route]
    roomy = {"first_byte": 10, "first_token": 10, "idle": 10, "total": 10}  # slow, not hung
    cfg = kit.config(providers={primary: {"max_concurrency": 1, "pool_timeout": 0.05,
                                          "timeouts": roomy}},
                     resilience={"breaker": {"consecutive_failures": 1}})
    gt = start_gateway(cfg)
    p_sim, s_sim = kit.sim(gt, primary), kit.sim(gt, secondary)
    p_sim.set_fault(Fault(FaultKind.SLOW_TOKENS, token_delay_s=0.01))

    results = {}
    first = threading.Thread(target=lambda: results.__setitem__(
        "slow", kit.ask(sdk, gt.url, route, "slow one", stream=stream)))
    first.start()
    while p_sim.stats.total == 0:           # the slow request holds the primary's only slot
        threading.Event().wait(0.005)
    rest = []
    threads = [threading.Thread(target=lambda i=i: rest.append(
        (i, kit.ask(sdk, gt.url, route, f"crowded {i}", stream=stream)))) for i in range(3)]
    for t in threads:
        t.start()
    for t in [*threads, first]:
        t.join(15)

    assert kit.answered_by(results["slow"], primary, "slow one")
    for i, seen in rest:
        assert kit.answered_by(seen, secondary, f"crowded {i}"), seen
        assert "local_saturation" in seen.headers["x-ridethrough-fallback-reason"]
    assert len(rest) == 3
    assert p_sim.stats.total == 1
    assert s_sim.stats.total == 3
    b = gt.gateway.board.get(kit.target_key(primary))
    assert b.state is State.CLOSED and b.consecutive_failures == 0


# -- everything failed -------------------------------------------------------------------


@MODES
@BOTH
def test_everything_failed_is_one_honest_error_the_sdk_does_not_retry(
        resilience_kit, start_gateway, sdk, stream):
    kit = resilience_kit
    gt = start_gateway(kit.config())
    route = SAME_FORMAT_ROUTE[sdk]
    primary, secondary = kit.ROUTES[route]
    kit.sim(gt, primary).set_fault(Fault(FaultKind.REFUSE))
    kit.sim(gt, secondary).set_fault(Fault(FaultKind.HTTP_ERROR, status=529))

    # Default max_retries=2: the SDK would make 3 requests if the gateway let it.
    seen = kit.ask(sdk, gt.url, route, "all down", stream=stream, max_retries=2)

    attempts = _all_failed_shape(sdk, seen)
    assert [(a["target"], a["outcome"]) for a in attempts] == [
        (kit.target_key(primary), "connect"),
        (kit.target_key(secondary), "overloaded"),   # one same-target retry...
        (kit.target_key(secondary), "overloaded"),   # ...then nothing is left
    ]
    assert all("ms" in a for a in attempts)
    assert attempts[1]["status"] == 529
    assert kit.sim(gt, primary).stats.total == 0
    assert kit.sim(gt, secondary).stats.total == 2   # one client request's worth, not three


# -- hold-downs --------------------------------------------------------------------------


HOLD_DOWNS = [
    ("gpt-first", Fault(FaultKind.HTTP_ERROR, status=429, error_code="insufficient_quota"),
     "quota_exhausted"),
    ("gpt-first", Fault(FaultKind.HTTP_ERROR, status=401), "auth"),
    ("claude-first", Fault(FaultKind.HTTP_ERROR, status=401), "auth"),
    ("claude-first", Fault(FaultKind.HTTP_ERROR, status=402), "quota_exhausted"),
]


@pytest.mark.parametrize("route,fault,reason", HOLD_DOWNS,
                         ids=["openai-insufficient_quota", "openai-401", "anthropic-401",
                              "anthropic-402-billing"])
def test_quota_and_bad_key_hold_the_target_down(resilience_kit, start_gateway, route, fault, reason):
    kit = resilience_kit
    fake = FakeClock()
    gt = start_gateway(kit.config(), clock=fake, sleep=fake.sleep)
    primary, secondary = kit.ROUTES[route]
    p_sim = kit.sim(gt, primary)
    p_sim.set_fault(fault)
    seen = kit.ask("openai", gt.url, route, "held", stream=False)
    assert kit.answered_by(seen, secondary, "held"), seen
    assert p_sim.stats.total == 1                    # not retried on the same target

    # Fixed upstream, but the hold lasts 10 minutes: no traffic, no probing meanwhile.
    p_sim.clear_faults()
    fake.advance(300)
    for i in range(3):
        seen = kit.ask("anthropic", gt.url, route, f"still held {i}", stream=True)
        assert kit.answered_by(seen, secondary, f"still held {i}"), seen
        assert f"{kit.target_key(primary)}={reason}" in seen.headers["x-ridethrough-fallback-reason"]
    assert p_sim.stats.total == 1
    snap = gt.gateway.board.get(kit.target_key(primary)).snapshot()
    assert snap["hold_reason"] == reason and snap["available"] is False

    fake.advance(301)
    assert kit.answered_by(kit.ask("anthropic", gt.url, route, "back", stream=False), primary, "back")


# -- the retry budget ------------------------------------------------------------------------


def test_retry_budget_limits_same_target_retries(resilience_kit, start_gateway):
    """Each request deposits 0.5 of a retry and nothing refills with time: of 4 failing
    requests only every second one may retry the same target."""
    kit = resilience_kit
    fake = FakeClock()
    cfg = kit.config(resilience={"retry": {"budget_ratio": 0.5, "budget_min_per_s": 0},
                                 "breaker": {"consecutive_failures": 1000, "min_requests": 1000}})
    gt = start_gateway(cfg, clock=fake, sleep=fake.sleep)
    primary, secondary = kit.ROUTES["claude-first"]
    p_sim = kit.sim(gt, primary)
    p_sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503))
    for i in range(4):
        seen = kit.ask("anthropic", gt.url, "claude-first", f"budget {i}", stream=False)
        assert kit.answered_by(seen, secondary, f"budget {i}"), seen
    assert p_sim.stats.total == 4 + 2
    assert gt.gateway.budget.spent == 2 and gt.gateway.budget.refused == 2


def test_without_budget_pressure_every_failing_request_retries_once(resilience_kit, start_gateway):
    kit = resilience_kit
    fake = FakeClock()
    cfg = kit.config(resilience={"breaker": {"consecutive_failures": 1000, "min_requests": 1000}})
    gt = start_gateway(cfg, clock=fake, sleep=fake.sleep)
    primary, _ = kit.ROUTES["claude-first"]
    kit.sim(gt, primary).set_fault(Fault(FaultKind.HTTP_ERROR, status=503))
    for i in range(4):
        kit.ask("anthropic", gt.url, "claude-first", f"no pressure {i}", stream=False)
    assert kit.sim(gt, primary).stats.total == 8
