"""Scripted upstreams on a FakeClock, for the executor's and the streams' unit tests.

A ``World`` holds a clock, breakers, a budget and an executor; its targets are
``ScriptedProvider``s whose every call takes the next scripted step — a body, an
``UpstreamError``, a stall, or for streams a list of reads — so a test states what the
upstreams do and asserts what the executor did, without sockets or sleeping.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson

from ridethrough.config import (
    AdaptiveTimeoutConfig,
    BreakerConfig,
    HedgeConfig,
    RetryConfig,
    RouteConfig,
    Timeouts,
)
from ridethrough.errors import ErrorClass, UpstreamError
from ridethrough.protocols.features import features_of
from ridethrough.protocols.sse import SSEParser, encode_event
from ridethrough.providers.anthropic import classify_anthropic, classify_anthropic_event
from ridethrough.providers.base import ResolvedCapabilities, UpstreamResponse
from ridethrough.providers.openai import classify_openai, classify_openai_chunk_error
from ridethrough.routing.breaker import BreakerBoard
from ridethrough.routing.budget import RetryBudget
from ridethrough.routing.clock import FakeClock
from ridethrough.routing.deadline import Deadline
from ridethrough.routing.executor import Executor
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
    counts_tokens = False

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


def drain(result: StreamResult) -> list[bytes]:
    async def collect() -> list[bytes]:
        return [frame async for frame in result.tail]
    return result.head + asyncio.run(collect())
