"""The executor's decisions, driven by scripted providers on a FakeClock (no sockets, no sleeping).

Each test scripts what the upstreams do — answer, fail with a given class, stall — and
asserts what the executor did: who served, how many calls each target got, which attempts
it recorded, what the breakers and the budget saw. Streams once opened: test_streams.py.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ridethrough.errors import AllAttemptsFailed, UpstreamError
from ridethrough.providers.anthropic import classify_anthropic
from ridethrough.routing.breaker import State
from ridethrough.routing.executor import JsonResult
from ridethrough.routing.streams import StreamResult
from support.scripted import (
    ANTHROPIC_MESSAGE,
    END,
    OPENAI_COMPLETION,
    START,
    TOKEN,
    C,
    Hang,
    SlowFail,
    World,
    drain,
    err,
    outcomes,
)

# -- JSON ------------------------------------------------------------------------------------


def test_the_first_healthy_target_serves():
    w = World()
    a, b = w.target("a", "anthropic", [ANTHROPIC_MESSAGE]), w.target("b", "openai", [])
    req = w.request()
    result = w.run(req, [a, b])
    assert isinstance(result, JsonResult) and result.target is a
    assert outcomes(req) == [("a", "ok")]
    assert len(b.provider.calls) == 0


def test_server_error_is_retried_once_on_the_same_target_then_fails_over():
    w = World()
    a = w.target("a", "anthropic", [err(C.SERVER, 503), err(C.SERVER, 503)])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request()
    t0 = w.clock()
    result = w.run(req, [a, b])
    assert result.target is b
    assert outcomes(req) == [("a", "server_error"), ("a", "server_error"), ("b", "ok")]
    assert len(a.provider.calls) == 2
    assert 0.125 <= w.clock() - t0 <= 0.375          # one jittered backoff of 0.25 s
    assert w.budget.spent == 1
    # Failover across formats: the client still gets an Anthropic message.
    assert orjson.loads(result.body)["type"] == "message"


def test_overload_recovering_on_the_retry_is_served_by_the_same_target():
    w = World()
    a = w.target("a", "anthropic", [err(C.OVERLOADED, 529), ANTHROPIC_MESSAGE])
    req = w.request()
    assert w.run(req, [a, w.target("b", "openai", [])]).target is a
    assert outcomes(req) == [("a", "overloaded"), ("a", "ok")]


def test_an_empty_budget_means_no_same_target_retry():
    w = World(budget=(0.0, 0.0))
    a = w.target("a", "anthropic", [err(C.SERVER, 500)])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request()
    assert w.run(req, [a, b]).target is b
    assert len(a.provider.calls) == 1 and w.budget.refused == 1


def test_no_same_target_retry_when_the_deadline_cannot_afford_it():
    w = World()
    a = w.target("a", "anthropic", [err(C.SERVER, 500)])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request(deadline_s=1.1)                   # needs backoff + 1 s left
    assert w.run(req, [a, b]).target is b
    assert len(a.provider.calls) == 1


def test_retries_are_capped_by_config():
    w = World(retry={"same_target_retries": 2})
    a = w.target("a", "anthropic", [err(C.SERVER, 500)] * 3)
    req = w.request()
    with pytest.raises(AllAttemptsFailed):
        w.run(req, [a])
    assert len(a.provider.calls) == 3


def test_rate_limit_fails_over_at_once_and_spares_the_breaker():
    w = World(breaker={"consecutive_failures": 1})
    a = w.target("a", "anthropic", [err(C.RATE_LIMITED, 429, retry_after=5)])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request()
    assert w.run(req, [a, b]).target is b
    assert len(a.provider.calls) == 1
    assert w.breaker(a).state is State.CLOSED and w.breaker(a).consecutive_failures == 0


def test_rate_limit_on_the_last_target_waits_retry_after_once():
    w = World()
    a = w.target("a", "anthropic", [err(C.RATE_LIMITED, 429, retry_after=3), ANTHROPIC_MESSAGE])
    req = w.request()
    t0 = w.clock()
    assert w.run(req, [a]).target is a
    assert w.clock() - t0 == 3
    assert w.budget.spent == 1


def test_a_retry_after_too_long_is_not_waited_for():
    w = World()
    a = w.target("a", "anthropic", [err(C.RATE_LIMITED, 429, retry_after=60)])
    req = w.request()
    with pytest.raises(AllAttemptsFailed):
        w.run(req, [a])
    assert len(a.provider.calls) == 1 and w.clock() == 1000.0


def test_a_client_error_is_returned_and_nothing_else_is_tried():
    w = World(breaker={"consecutive_failures": 1})
    body = orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": "no"}})
    a = w.target("a", "anthropic", [classify_anthropic(400, body, {})])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request("anthropic")
    with pytest.raises(UpstreamError) as exc:
        w.run(req, [a, b])
    assert exc.value.error_class is C.CLIENT and exc.value.body == body
    assert len(b.provider.calls) == 0
    assert w.breaker(a).state is State.CLOSED


def test_a_400_after_translation_is_ours_and_fails_over():
    w = World()
    a = w.target("a", "anthropic", [err(C.CLIENT, 400)])   # the OpenAI client's request, translated
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request("openai")
    assert w.run(req, [a, b]).target is b
    assert outcomes(req)[0] == ("a", "translation_error")


@pytest.mark.parametrize("cls,hold", [(C.QUOTA, "quota_exhausted"), (C.AUTH, "auth"),
                                      (C.MODEL_NOT_FOUND, "model_not_found")])
def test_quota_auth_and_missing_model_hold_the_target_down(cls, hold):
    w = World()
    a = w.target("a", "openai", [err(cls, 429)])
    b = w.target("b", "anthropic", [ANTHROPIC_MESSAGE])
    assert w.run(w.request(), [a, b]).target is b
    assert len(a.provider.calls) == 1                       # never retried in place
    assert w.breaker(a).availability() == hold
    w.clock.advance(299)
    assert w.breaker(a).availability() == hold


def test_local_saturation_fails_over_without_charging_the_provider():
    w = World(breaker={"consecutive_failures": 1})
    a = w.target("a", "anthropic", [err(C.LOCAL_SATURATION)] * 3)
    b = w.target("b", "openai", [OPENAI_COMPLETION] * 3)
    for _ in range(3):
        assert w.run(w.request(), [a, b]).target is b
    assert w.breaker(a).state is State.CLOSED and w.breaker(a).consecutive_failures == 0


def test_a_breaker_that_opens_mid_request_cancels_the_retry():
    w = World(breaker={"consecutive_failures": 1})
    a = w.target("a", "anthropic", [err(C.SERVER, 500)])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request()
    assert w.run(req, [a, b]).target is b
    assert len(a.provider.calls) == 1
    assert w.breaker(a).state is State.OPEN


def test_the_deadline_stops_the_failover():
    w = World()

    def hang():
        w.clock.advance(10)
        return err(C.TIMEOUT)

    a = w.target("a", "anthropic", [hang])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request(deadline_s=5)
    with pytest.raises(AllAttemptsFailed) as exc:
        w.run(req, [a, b])
    assert [(x.target, x.outcome) for x in exc.value.attempts] == [("a/m", "timeout"),
                                                                    ("b/m", "skipped:deadline")]
    assert len(b.provider.calls) == 0


def test_everything_failed_lists_every_attempt():
    w = World()
    a = w.target("a", "anthropic", [err(C.CONNECT)])
    b = w.target("b", "openai", [err(C.OVERLOADED, 529), err(C.OVERLOADED, 529)])
    req = w.request()
    with pytest.raises(AllAttemptsFailed) as exc:
        w.run(req, [a, b])
    assert [(x.target, x.outcome, x.status) for x in exc.value.attempts] == [
        ("a/m", "connect", 0), ("b/m", "overloaded", 529), ("b/m", "overloaded", 529)]


@pytest.mark.parametrize("body,cls", [
    (b'{"id": "msg_1", "type": "message", "content": [{"type"', C.MALFORMED),
    (b'[1, 2]', C.MALFORMED),
    (b'{"id": "msg_1", "type": "message"}', C.MALFORMED),
    (orjson.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "x"}}),
     C.OVERLOADED),
])
def test_a_bad_200_is_a_failure_not_an_answer(body, cls):
    w = World(budget=(0.0, 0.0))
    a = w.target("a", "anthropic", [body])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request()
    assert w.run(req, [a, b]).target is b
    assert outcomes(req)[0] == ("a", cls.value)


def test_a_200_carrying_a_client_error_is_not_relayed_as_the_callers_mistake():
    w = World()
    bad = orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": "?"}})
    a = w.target("a", "anthropic", [bad])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request()
    assert w.run(req, [a, b]).target is b
    assert outcomes(req)[0] == ("a", "malformed_response")


def test_every_breaker_open_still_tries_the_soonest_instead_of_failing_at_once():
    w = World(breaker={"consecutive_failures": 1})
    a = w.target("a", "anthropic", [err(C.SERVER, 500), ANTHROPIC_MESSAGE])
    b = w.target("b", "openai", [err(C.SERVER, 500)])
    with pytest.raises(AllAttemptsFailed):
        w.run(w.request(), [a, b])
    assert w.breaker(a).state is State.OPEN and w.breaker(b).state is State.OPEN
    req = w.request()
    assert w.run(req, [a, b]).target is a                # forced, despite the open breaker
    assert w.breaker(a).state is State.CLOSED             # and its success closed it


# -- hedged requests -----------------------------------------------------------------------

FIXED_HEDGE = {"delay_s": 0.5}


def test_a_hung_attempt_is_hedged_and_the_backup_wins():
    w = World(hedge=FIXED_HEDGE)
    a = w.target("a", "anthropic", [Hang()])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request()
    result = w.run(req, [a, b])
    assert isinstance(result, JsonResult) and result.target is b
    assert outcomes(req) == [("b", "ok"), ("a", "hedge_lost")]
    assert [r.hedge for r in req.attempts] == [True, False]
    assert a.provider.cancelled == 1               # the loser's call was cancelled at once
    assert w.executor.hedge_stats == {"started": 1, "won": 1, "budget_refused": 0}
    # Late, not failed: the breaker's error window is untouched, the slow-call window is not.
    breaker = w.breaker(a)
    assert breaker.consecutive_failures == 0 and breaker.snapshot()["slow_call_rate"] == 1.0


def test_an_attempt_that_answers_before_the_hedge_delay_is_not_hedged():
    w = World(hedge=FIXED_HEDGE)
    a = w.target("a", "anthropic", [ANTHROPIC_MESSAGE])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request()
    assert w.run(req, [a, b]).target is a
    assert outcomes(req) == [("a", "ok")]
    assert b.provider.calls == [] and w.executor.hedge_stats["started"] == 0


def test_a_hung_stream_is_hedged_and_the_backup_stream_is_served():
    w = World(hedge=FIXED_HEDGE)
    a = w.target("a", "anthropic", [Hang()])
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    result = w.run(req, [a, b])
    assert isinstance(result, StreamResult) and result.target is b
    assert drain(result)[-1].startswith(b"event: message_stop")
    assert ("a", "hedge_lost") in outcomes(req) and a.provider.cancelled == 1


def test_without_hedge_budget_the_attempt_runs_to_its_timeout_then_fails_over():
    w = World(hedge=FIXED_HEDGE, hedge_tokens=0.0)
    a = w.target("a", "anthropic", [SlowFail(5.0, err(C.TIMEOUT))])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request()
    assert w.run(req, [a, b]).target is b
    assert outcomes(req) == [("a", "timeout"), ("b", "ok")]
    assert w.executor.hedge_stats["budget_refused"] == 1 and w.executor.hedge_stats["started"] == 0


def test_a_route_can_turn_hedging_off():
    w = World(hedge=FIXED_HEDGE)
    a = w.target("a", "anthropic", [SlowFail(5.0, err(C.TIMEOUT))])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request(hedge=False)
    assert w.run(req, [a, b]).target is b
    assert outcomes(req) == [("a", "timeout"), ("b", "ok")]   # one after the other, never both
    assert w.executor.hedge_stats["started"] == 0


def test_no_hedge_before_the_target_latency_is_learned_then_at_its_p99():
    w = World(hedge={})                              # hedge at the learned p99 (min 5 samples)
    a = w.target("a", "anthropic", [ANTHROPIC_MESSAGE] * 5 + [Hang()])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    for _ in range(5):                               # healthy calls teach the model
        assert w.run(w.request(), [a, b]).target is a
    assert w.executor.hedge_stats["started"] == 0
    w.clock.advance(1.1)                             # quantile reads are cached for 1 s
    req = w.request()
    assert w.run(req, [a, b]).target is b            # then a hangs: hedged at its p99
    assert outcomes(req) == [("b", "ok"), ("a", "hedge_lost")]


def test_hedge_losses_open_the_slow_call_breaker_and_the_target_is_then_skipped():
    w = World(hedge=FIXED_HEDGE, breaker={"slow_call_min": 3, "slow_call_window": 3})
    a = w.target("a", "anthropic", [Hang(), Hang(), Hang()])
    b = w.target("b", "openai", [OPENAI_COMPLETION] * 4)
    for _ in range(3):
        assert w.run(w.request(), [a, b]).target is b
    assert w.breaker(a).state is State.OPEN and w.breaker(a).opened_reason == "slow_calls"
    req = w.request()
    assert w.run(req, [a, b]).target is b
    assert outcomes(req) == [("a", "skipped:breaker_open"), ("b", "ok")]
    assert len(a.provider.calls) == 3 and w.executor.hedge_stats["started"] == 3


# -- per-attempt budgets and slow calls ----------------------------------------------------


def test_an_attempt_leaves_part_of_the_deadline_for_the_targets_after_it():
    w = World()
    a = w.target("a", "anthropic", [SlowFail(15.0, err(C.TIMEOUT))])
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    req = w.request(deadline_s=30.0)
    t0 = w.clock()
    assert w.run(req, [a, b]).target is b            # a's freeze did not eat b's time
    assert a.provider.calls[0].deadline.expires_at - t0 == pytest.approx(15.0)
    assert b.provider.calls[0].deadline.expires_at == pytest.approx(req.deadline.expires_at)


def test_the_reserve_for_a_warm_target_is_what_it_needs():
    w = World(adaptive={"floor_complete_s": 2.0, "multiplier": 4.0})
    b = w.target("b", "openai", [OPENAI_COMPLETION])
    for _ in range(5):
        w.latency.observe(b.key, "complete:le256", 0.5)   # b answers in 0.5 s: it needs ~2 s
    a = w.target("a", "anthropic", [SlowFail(28.0, err(C.TIMEOUT))])
    req = w.request(deadline_s=30.0)
    t0 = w.clock()
    assert w.run(req, [a, b]).target is b
    assert a.provider.calls[0].deadline.expires_at - t0 == pytest.approx(28.0, abs=0.05)


def test_adaptive_timeouts_replace_the_ceilings_once_learned():
    w = World(adaptive={"multiplier": 4.0, "floor_complete_s": 1.0})
    a = w.target("a", "anthropic", [ANTHROPIC_MESSAGE] * 6, total=600)
    req = w.request()
    w.run(req, [a])
    assert a.provider.calls[0].timeouts.total == 600          # cold: the configured ceiling
    for _ in range(5):
        w.latency.observe(a.key, "complete:le256", 0.5)
    for _ in range(5):
        w.run(w.request(), [a])
    assert a.provider.calls[-1].timeouts.total == pytest.approx(2.0, rel=0.03)   # 4 × p99


def test_a_timeout_is_charged_to_the_target_unless_it_was_given_too_little_time():
    w = World(breaker={"consecutive_failures": 1})
    a = w.target("a", "anthropic", [SlowFail(1.0, err(C.TIMEOUT)), SlowFail(12.0, err(C.TIMEOUT))])
    with pytest.raises(AllAttemptsFailed):
        w.run(w.request(deadline_s=1.0), [a])      # a 1 s deadline: no fair chance, not charged
    assert w.breaker(a).state is State.CLOSED
    with pytest.raises(AllAttemptsFailed):
        w.run(w.request(deadline_s=12.0), [a])     # 12 s and still nothing: evidence
    assert w.breaker(a).state is State.OPEN


def test_a_429_while_others_can_answer_holds_the_target_back_briefly():
    w = World(breaker={"rate_limit_hold_s": 2.0})
    a = w.target("a", "anthropic", [err(C.RATE_LIMITED, 429)] + [ANTHROPIC_MESSAGE] * 3)
    b = w.target("b", "openai", [OPENAI_COMPLETION] * 3)
    assert w.run(w.request(), [a, b]).target is b
    req = w.request()
    assert w.run(req, [a, b]).target is b          # not asked again at once
    assert outcomes(req)[0] == ("a", "skipped:rate_limited")
    w.clock.advance(3.1)                            # the jittered hold (1–3 s) is over
    assert w.run(w.request(), [a, b]).target is a
    assert len(a.provider.calls) == 2


def test_a_backup_that_loses_to_the_original_is_not_a_slow_call():
    # The original answers after the hedge delay but before the backup: the backup is
    # cancelled as hedge_lost, yet nothing says the backup's target is slow.
    w = World(hedge=FIXED_HEDGE)

    async def original_answers_late() -> bytes:
        for _ in range(5):                # lets the hedge timer fire and the backup start
            await asyncio.sleep(0)
        return ANTHROPIC_MESSAGE

    a = w.target("a", "anthropic", [original_answers_late])
    b = w.target("b", "openai", [Hang()])
    req = w.request()
    result = w.run(req, [a, b])
    assert result.target is a
    assert outcomes(req) == [("a", "ok"), ("b", "hedge_lost")]
    assert w.executor.hedge_stats["started"] == 1 and w.executor.hedge_stats["won"] == 0
    assert w.breaker(b).snapshot()["slow_call_rate"] == 0.0     # not held against b


def test_a_backup_refused_as_a_client_error_does_not_end_a_race_the_original_wins():
    w = World(hedge=FIXED_HEDGE)

    async def original_answers_late() -> bytes:
        for _ in range(5):                # the hedge timer fires, the backup is refused
            await asyncio.sleep(0)
        return ANTHROPIC_MESSAGE

    a = w.target("a", "anthropic", [original_answers_late])
    b = w.target("b", "anthropic", [err(C.CLIENT, 400)])
    req = w.request()
    assert w.run(req, [a, b]).target is a
    assert ("a", "ok") in outcomes(req) and ("b", "client_error") in outcomes(req)


def test_a_backup_refused_as_a_client_error_is_raised_if_nothing_commits():
    w = World(hedge=FIXED_HEDGE)
    a = w.target("a", "anthropic", [SlowFail(5.0, err(C.SERVER, 503)), SlowFail(5.0, err(C.SERVER, 503))])
    b = w.target("b", "anthropic", [err(C.CLIENT, 400)])
    req = w.request()
    with pytest.raises(UpstreamError) as ei:
        w.run(req, [a, b])
    assert ei.value.error_class is C.CLIENT   # the caller's own error, as alone it would be
