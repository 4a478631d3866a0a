"""The executor's decisions, driven by scripted providers on a FakeClock (no sockets, no sleeping).

Each test scripts what the upstreams do — answer, fail with a given class, stream events,
stall — and asserts what the executor did: who served, how many calls each target got,
which attempts it recorded, what the breakers and the budget saw.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
import pytest

from ridethrough.config import (
    AdaptiveTimeoutConfig,
    BreakerConfig,
    HedgeConfig,
    RetryConfig,
    RouteConfig,
    Timeouts,
)
from ridethrough.errors import AllAttemptsFailed, ErrorClass, UpstreamError
from ridethrough.protocols.features import features_of
from ridethrough.protocols.sse import SSEParser, encode_event
from ridethrough.providers.anthropic import classify_anthropic, classify_anthropic_event
from ridethrough.providers.base import ResolvedCapabilities, UpstreamResponse
from ridethrough.providers.openai import classify_openai, classify_openai_chunk_error
from ridethrough.routing.breaker import BreakerBoard, State
from ridethrough.routing.budget import RetryBudget
from ridethrough.routing.clock import FakeClock
from ridethrough.routing.deadline import Deadline
from ridethrough.routing.executor import Executor, JsonResult
from ridethrough.routing.latency import LatencyModel
from ridethrough.routing.plan import Target, plan_targets
from ridethrough.routing.request import InboundRequest
from ridethrough.routing.streams import StreamResult
from ridethrough.routing.timeouts import TimeoutPolicy

C = ErrorClass

ANTHROPIC_MESSAGE = orjson.dumps({
    "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
    "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}})
OPENAI_COMPLETION = orjson.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})


def events(*frames: tuple[str, dict[str, Any]]) -> list:
    return SSEParser().feed(b"".join(encode_event(name, data) for name, data in frames))


START = events(("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 0}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}))
PING = events(("ping", {"type": "ping"}))
TOKEN = events(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": "hel"}}))
END = events(("content_block_stop", {"type": "content_block_stop", "index": 0}),
             ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                                   "stop_sequence": None},
                                "usage": {"output_tokens": 1}}),
             ("message_stop", {"type": "message_stop"}))
OVERLOADED = events(("error", {"type": "error", "error": {"type": "overloaded_error",
                                                          "message": "Overloaded"}}))


def err(cls: ErrorClass, status: int = 0, **kw: Any) -> UpstreamError:
    return UpstreamError(cls, f"scripted {cls.value}", upstream_status=status, **kw)


class Stall:
    """A read that times out: the clock moves by the read's timeout."""

    def __init__(self, after: float | None = None) -> None:
        self.after = after  # None: wait out the whole timeout and fail; else deliver a ping


class Hang:
    """A call that never answers: it waits until the executor cancels it (a lost hedge)."""


class SlowFail:
    """A call that takes ``seconds`` of the clock, then fails with ``error``."""

    def __init__(self, seconds: float, error: UpstreamError) -> None:
        self.seconds = seconds
        self.error = error


class ScriptedStream:
    def __init__(self, reads: list[Any], clock: FakeClock) -> None:
        self.reads = list(reads)
        self.clock = clock
        self.headers: dict[str, str] = {}
        self.request_id = "req_up"
        self.closed = False

    async def read(self, timeout: float):
        item = self.reads.pop(0) if self.reads else None
        if isinstance(item, Stall):
            if item.after is None or item.after > timeout:
                self.clock.advance(timeout)
                raise UpstreamError(C.IDLE_TIMEOUT, "no data in time")
            self.clock.advance(item.after)
            return PING
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        self.closed = True


class ScriptedProvider:
    """Each call takes the next step: a body (200), an UpstreamError, a callable (run, then
    its result is the step), or for streams a list of reads."""

    kind = "scripted"
    unavailable_reason = None

    def __init__(self, name: str, fmt: str, steps: list[Any], clock: FakeClock) -> None:
        self.name = name
        self.format = fmt
        self.steps = list(steps)
        self.clock = clock
        self.calls: list[Any] = []
        self.streams: list[ScriptedStream] = []
        self.cancelled = 0  # calls that were still waiting when the executor gave up on them

    async def _wait(self, step: Any) -> Any:
        if asyncio.iscoroutine(step):           # a scripted async step: its result is the step
            step = await step
        if isinstance(step, Hang):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if isinstance(step, SlowFail):
            for _ in range(3):  # a few loop turns: a hedge timer due now fires first
                await asyncio.sleep(0)
            self.clock.advance(step.seconds)
            raise step.error
        return step

    def classify(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        return (classify_anthropic if self.format == "anthropic" else classify_openai)(status, body, headers)

    def classify_stream_error(self, data: dict[str, Any]) -> UpstreamError:
        return (classify_anthropic_event if self.format == "anthropic"
                else classify_openai_chunk_error)(data)

    def fits(self, messages: Any, max_output: int) -> bool | None:
        return None

    def _next(self, call: Any) -> Any:
        self.calls.append(call)
        step = self.steps.pop(0)
        if callable(step):
            step = step()
        if isinstance(step, BaseException):
            raise step
        return step

    async def complete(self, call: Any) -> UpstreamResponse:
        body = await self._wait(self._next(call))
        return UpstreamResponse(200, body, {}, "req_up")

    async def open_stream(self, call: Any) -> ScriptedStream:
        stream = ScriptedStream(await self._wait(self._next(call)), self.clock)
        self.streams.append(stream)
        return stream


class World:
    """A clock, breakers, a budget and an executor; build targets and requests against it."""

    def __init__(self, *, breaker: dict | None = None, retry: dict | None = None,
                 budget: tuple[float, float] = (0.2, 10.0), hedge: dict | None = None,
                 adaptive: dict | None = None, hedge_tokens: float = 20.0) -> None:
        self.clock = FakeClock()
        bcfg = BreakerConfig(**(breaker or {}))
        self.board = BreakerBoard(bcfg, self.clock)
        self.budget = RetryBudget(*budget, self.clock)
        self.retry = RetryConfig(**(retry or {}))
        # Hedging and adaptive timeouts only where a test asks for them.
        self.latency = LatencyModel(self.clock, min_samples=5)
        off = {"enabled": False}
        policy = TimeoutPolicy(self.latency,
                               AdaptiveTimeoutConfig(**(off if adaptive is None else adaptive)),
                               HedgeConfig(**(off if hedge is None else hedge)))
        self.hedge_budget = RetryBudget(0.0, 0.0, self.clock, cap=20.0)
        self.hedge_budget.tokens = hedge_tokens
        self.executor = Executor(self.board, self.budget, self.retry, self.clock, self.clock.sleep,
                                 random.Random(0), policy=policy, hedge_budget=self.hedge_budget,
                                 slow_call_factor=bcfg.slow_call_factor)

    def target(self, name: str, fmt: str, steps: list[Any], *, prefill: bool = False,
               **timeouts: float) -> Target:
        provider = ScriptedProvider(name, fmt, steps, self.clock)
        return Target(provider, "m", Timeouts(**timeouts),  # type: ignore[arg-type]
                      ResolvedCapabilities(prefill=prefill))

    def continue_on(self, *targets: Target) -> None:
        """Mid-stream continuation on for route "r", asking these targets."""
        self.executor.streams.continuable_routes = {"r"}
        self.executor.streams.continuation_targets = lambda req: list(targets)

    def request(self, fmt: str = "anthropic", *, stream: bool = False,
                deadline_s: float = 300.0, hedge: bool = True) -> InboundRequest:
        if fmt == "anthropic":
            body: dict[str, Any] = {"model": "r", "max_tokens": 50,
                                    "messages": [{"role": "user", "content": "hi"}]}
        else:
            body = {"model": "r", "messages": [{"role": "user", "content": "hi"}]}
        if stream:
            body["stream"] = True
        route = RouteConfig(targets=[{"provider": "x", "model": "m"}], cache={"mode": "off"},
                            hedge=hedge)
        return InboundRequest(format=fmt, body=body, stream=stream, route_name="r", route=route,
                              features=features_of(fmt, body),
                              deadline=Deadline.start(self.clock, deadline_s), request_id="req_1")

    def run(self, req: InboundRequest, targets: list[Target], last_resort: Target | None = None):
        plan = plan_targets(targets, req.format, req.body, req.features, req.stream, self.board,
                            last_resort)
        return asyncio.run(self.executor.run(req, plan))

    def breaker(self, t: Target):
        return self.board.get(t.key)


def outcomes(req: InboundRequest) -> list[tuple[str, str]]:
    return [(a.target.split("/")[0], a.outcome) for a in req.attempts]


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


# -- streams and the commit point --------------------------------------------------------------


def drain(result: StreamResult) -> list[bytes]:
    async def collect() -> list[bytes]:
        return [frame async for frame in result.tail]
    return result.head + asyncio.run(collect())


def test_an_in_band_error_before_the_first_token_is_a_silent_failover():
    w = World(budget=(0.0, 0.0))
    a = w.target("a", "anthropic", [[START, OVERLOADED]])
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    result = w.run(req, [a, b])
    assert isinstance(result, StreamResult) and result.target is b
    assert outcomes(req) == [("a", "overloaded"), ("b", "ok")]
    assert a.provider.streams[0].closed
    frames = b"".join(drain(result))
    assert b"overloaded_error" not in frames and b"message_stop" in frames


def test_a_stream_that_ends_before_content_is_truncated_and_failed_over():
    w = World()
    a = w.target("a", "anthropic", [[START, None]])
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    assert w.run(req, [a, b]).target is b
    assert outcomes(req)[0] == ("a", "truncated")


def test_pings_without_content_hit_the_first_token_timeout():
    w = World()
    a = w.target("a", "anthropic", [[START, Stall(0.9), Stall(0.9), Stall(0.9)]],
                 first_token=1.5, idle=1.0)
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    assert w.run(req, [a, b]).target is b
    assert outcomes(req)[0] == ("a", "first_token_timeout")


@pytest.mark.parametrize("first_token,idle,cls", [(1.0, 1.0, C.FIRST_TOKEN_TIMEOUT),
                                                  (5.0, 1.0, C.IDLE_TIMEOUT)])
def test_a_stall_before_content_is_a_timeout_failover(first_token, idle, cls):
    w = World()
    a = w.target("a", "anthropic", [[START, Stall()]], first_token=first_token, idle=idle)
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    assert w.run(req, [a, b]).target is b
    assert outcomes(req)[0] == ("a", cls.value)


def test_commit_then_clean_end():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    result = w.run(req, [a])
    assert any(b"text_delta" in f for f in result.head)    # committed at the first content
    frames = drain(result)
    assert result.outcome["ok"] is True
    assert frames[-1].startswith(b"event: message_stop")
    assert a.provider.streams[0].closed


@pytest.mark.parametrize("failure,etype,outcome", [
    (OVERLOADED, b"overloaded_error", "overloaded_after_commit"),
    (None, b"api_error", "truncated_after_commit"),
    (Stall(), b"api_error", "idle_timeout_after_commit"),
])
def test_a_failure_after_commit_is_an_in_band_error_in_the_clients_format(failure, etype, outcome):
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, failure]])
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    result = w.run(req, [a, b])
    assert result.target is a                                # no failover once committed
    frames = drain(result)
    assert frames[-1].startswith(b"event: error") and etype in frames[-1]
    assert result.outcome["ok"] is False
    assert outcomes(req)[-1] == ("a", outcome)
    assert w.breaker(a).consecutive_failures == 1           # counted against the target
    assert len(b.provider.calls) == 0


END_NO_STOP = END[:-1]  # every block closed, the stop reason sent, message_stop never came
MALFORMED = SSEParser().feed(b'event: content_block_delta\ndata: {"type": "content_block_de\n\n')


@pytest.mark.parametrize("client", ["anthropic", "openai"])
def test_a_stream_complete_by_meaning_but_unterminated_is_a_success(client):
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, END_NO_STOP, None]])
    req = w.request(client, stream=True)
    result = w.run(req, [a])
    frames = drain(result)
    assert result.outcome["ok"] is True
    # The gateway ends the client's stream properly itself.
    assert frames[-1].startswith(b"event: message_stop" if client == "anthropic" else b"data: [DONE]")
    assert w.breaker(a).consecutive_failures == 0
    assert w.executor.streams.stats["ended_without_terminator"] == 1


def test_a_stream_cut_before_its_stop_reason_is_still_truncated():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, END[:1], None]])  # block closed, no stop reason
    req = w.request(stream=True)
    result = w.run(req, [a])
    frames = drain(result)
    assert result.outcome["ok"] is False and b"event: error" in frames[-1]
    assert outcomes(req)[-1] == ("a", "truncated_after_commit")


def test_a_malformed_frame_is_dropped_counted_and_the_answer_goes_on():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, MALFORMED, TOKEN, END]])
    req = w.request(stream=True)
    result = w.run(req, [a])
    frames = drain(result)
    assert result.outcome["ok"] is True
    assert sum(1 for f in frames if b"text_delta" in f) == 2
    assert not any(b"content_block_de\n" in f for f in frames)
    assert ("a", "malformed_frames") in outcomes(req)     # the target's health sees it
    assert w.executor.streams.stats["malformed_frames"] == 1


def test_a_stream_of_nothing_but_malformed_frames_fails():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, *([MALFORMED] * 20)]])
    req = w.request(stream=True)
    result = w.run(req, [a])
    drain(result)
    assert result.outcome["ok"] is False
    assert outcomes(req)[-2] == ("a", "malformed_response_after_commit")


def test_an_openai_client_gets_the_error_as_an_openai_error_chunk():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, OVERLOADED]])
    req = w.request("openai", stream=True)
    frames = drain(w.run(req, [a]))
    last = orjson.loads(frames[-1].removeprefix(b"data: "))
    assert last["error"]["type"] == "overloaded_error"


def test_a_half_open_probe_stream_closes_the_breaker_when_it_ends_well():
    w = World(breaker={"consecutive_failures": 1, "cooldown_s": 10})
    a = w.target("a", "anthropic", [err(C.CONNECT), [START, TOKEN, END]])
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    w.run(w.request(stream=True), [a, b])
    assert w.breaker(a).state is State.OPEN
    w.clock.advance(10)
    result = w.run(w.request(stream=True), [a, b])
    assert result.target is a
    # committed, but the verdict waits for the stream's end: still the one probe in flight
    assert w.breaker(a).state is State.HALF_OPEN
    drain(result)
    assert w.breaker(a).state is State.CLOSED


def test_streams_that_commit_then_die_open_the_breaker():
    # An in-band error after the first token, again and again: a commit is not a success.
    w = World(breaker={"consecutive_failures": 3, "cooldown_s": 10})
    a = w.target("a", "anthropic", [[START, TOKEN, OVERLOADED]] * 3)
    for _ in range(3):
        drain(w.run(w.request(stream=True), [a]))
    assert w.breaker(a).state is State.OPEN


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


# -- mid-stream continuation -------------------------------------------------------------------


def test_a_cut_stream_is_continued_and_the_breakers_are_told():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, None]])
    b = w.target("b", "anthropic", [[START, TOKEN, END]], prefill=True)
    w.continue_on(a, b)
    req = w.request(stream=True)
    result = w.run(req, [a])
    frames = b"".join(drain(result))
    assert result.outcome["ok"] is True and result.outcome["continued"] is True
    assert frames.count(b"event: message_start") == 1 and b"event: error" not in frames
    assert b": ridethrough continued-on b/m after truncated from a/m" in frames
    sent = orjson.loads(b.provider.calls[0].body)
    assert sent["messages"][-1] == {"role": "assistant", "content": "hel"}
    assert w.breaker(a).consecutive_failures == 1 and w.breaker(b).consecutive_failures == 0
    assert a.provider.streams[0].closed and b.provider.streams[0].closed


def test_a_client_leaving_during_a_continuation_releases_the_probe_and_the_connection():
    w = World(breaker={"consecutive_failures": 1, "cooldown_s": 10})
    a = w.target("a", "anthropic", [[START, TOKEN, None]])
    b = w.target("b", "anthropic", [[START, TOKEN, Stall(1.0), TOKEN, END]], prefill=True)
    w.continue_on(a, b)
    w.breaker(b).record_failure("connect")           # b failed once: its breaker opens
    assert w.breaker(b).state is State.OPEN
    w.clock.advance(10)                              # half-open: the next call is b's probe
    result = w.run(w.request(stream=True), [a])

    async def leave_after_the_switch() -> None:
        async for frame in result.tail:
            if frame.startswith(b": ridethrough continued-on"):
                break
        await result.tail.aclose()                   # the client went away

    asyncio.run(leave_after_the_switch())
    assert b.provider.streams[0].closed
    assert w.breaker(b).availability() is None       # the probe is free again, not held forever


def test_a_continuation_cut_again_is_continued_again_up_to_the_limit():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, None]])
    b = w.target("b", "anthropic", [[START, TOKEN, None]] * 3, prefill=True)
    w.continue_on(a, b)
    w.executor.streams.max_continuations = 2
    req = w.request(stream=True)
    result = w.run(req, [a])
    frames = drain(result)
    assert result.outcome["ok"] is False
    assert frames[-1].startswith(b"event: error")
    assert len(b.provider.calls) == 2                   # two switches, then the clean error
    assert w.executor.streams.stats["continuation_failed"] == 1
    # The second continuation carries all the text the client had: both earlier parts.
    assert orjson.loads(b.provider.calls[1].body)["messages"][-1]["content"] == "helhel"


def test_a_refused_prefill_is_not_asked_again_until_the_lesson_expires():
    w = World()
    refusal = err(C.CLIENT, 400)
    a = w.target("a", "anthropic", [[START, TOKEN, None]] * 3)
    b = w.target("b", "anthropic", [refusal, refusal], prefill=True)
    w.continue_on(a, b)
    for _ in range(2):
        drain(w.run(w.request(stream=True), [a]))
    assert len(b.provider.calls) == 1                   # learned after the first refusal
    w.clock.advance(3601)
    drain(w.run(w.request(stream=True), [a]))
    assert len(b.provider.calls) == 2                   # asked again once the lesson expired
