"""The executor: one attempt at a time under one deadline, until a target answers.

For each planned target it claims the breaker, prepares the call (passthrough or
translation), and sends it. JSON answers are validated before they count as success.
Streams are read up to the commit point — the first content event — so every failure
before it (HTTP error, reset, stall, in-band error, truncation) is a silent failover. After
commit, a failure becomes an in-band error event in the client's format and is recorded as
a failure. Each error's class picks the action (errors.ACTIONS): retry once on the same
target, fail over, hold the target down, or return the error to the client.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ridethrough.config import RetryConfig
from ridethrough.errors import (
    ACTIONS,
    AllAttemptsFailed,
    AttemptRecord,
    ErrorClass,
    UpstreamError,
)
from ridethrough.providers.base import UpstreamStream
from ridethrough.providers.http import redact_text
from ridethrough.routing.breaker import BreakerBoard, Claim
from ridethrough.routing.budget import RetryBudget
from ridethrough.routing.clock import Clock, Sleep
from ridethrough.routing.plan import Plan, Target
from ridethrough.routing.relay import StreamRelay, in_band_error_frame
from ridethrough.routing.request import InboundRequest, PreparedCall, prepare_call

log = logging.getLogger("ridethrough.executor")


@dataclass(slots=True)
class JsonResult:
    target: Target
    body: bytes                       # in the client's format
    obj: dict[str, Any]               # same, parsed (for the cache and usage)
    headers: dict[str, str]
    upstream_request_id: str | None
    usage: dict[str, Any]


@dataclass(slots=True)
class StreamResult:
    target: Target
    head: list[bytes]                 # frames buffered before and at the commit point
    tail: AsyncIterator[bytes]        # the rest, already guarded by the post-commit handler
    headers: dict[str, str]
    upstream_request_id: str | None
    relay: StreamRelay
    upstream: UpstreamStream | None = None
    release: Callable[[], None] | None = None  # the breaker claim, if no verdict is reached
    on_end: Callable[[], None] | None = None   # run once the stream is over, however it ended
    outcome: dict[str, Any] = field(default_factory=dict)  # filled when the stream ends

    async def close(self) -> None:
        """Release the upstream even if the client left before the tail was ever read."""
        await self.tail.aclose()  # type: ignore[attr-defined]
        if self.upstream is not None:
            await self.upstream.aclose()
        if "ok" not in self.outcome and self.release is not None:
            self.release()


class Executor:
    def __init__(self, board: BreakerBoard, budget: RetryBudget, retry: RetryConfig,
                 clock: Clock, sleep: Sleep, rng: random.Random | None = None) -> None:
        self.board = board
        self.budget = budget
        self.retry = retry
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        # Targets that rejected the ``stream_options`` we add to learn a stream's usage (some
        # OpenAI-compatible servers refuse unknown fields): we stop adding it there.
        self.no_stream_options: set[str] = set()

    async def run(self, req: InboundRequest, plan: Plan) -> JsonResult | StreamResult:
        req.attempts.extend(plan.skipped)
        candidates = plan.candidates
        for i, target in enumerate(candidates):
            others_left = i < len(candidates) - 1
            breaker = self.board.get(target.key)
            tries = 0
            waited_retry_after = False
            without_usage = target.key in self.no_stream_options
            while True:
                if req.deadline.expired:
                    req.attempts.append(AttemptRecord(target.key, "skipped:deadline"))
                    raise AllAttemptsFailed("the request's deadline passed", req.attempts)
                claim = None if plan.forced else breaker.acquire()
                if not plan.forced and not claim:
                    req.attempts.append(AttemptRecord(target.key, f"skipped:{breaker.availability()}"))
                    break
                tries += 1
                t0 = self.clock()
                prepared: PreparedCall | None = None
                try:
                    try:
                        prepared = prepare_call(req, target, inject_usage=not without_usage)
                        if req.stream:
                            result: JsonResult | StreamResult = await self._stream(
                                req, target, prepared, t0, claim)
                        else:
                            result = await self._json(req, target, prepared)
                    except (UpstreamError, asyncio.CancelledError):
                        raise
                    except Exception as unexpected:
                        # An upstream answer our parsing or translation choked on is that
                        # target's failure, not a 500 for the client.
                        log.exception("unexpected error serving from %s", target.key)
                        raise UpstreamError(ErrorClass.MALFORMED,
                                            f"could not process the answer: {type(unexpected).__name__}",
                                            target=target.key) from None
                except UpstreamError as e:
                    if _rejected_stream_options(e, prepared):
                        # Our addition may be what was refused: ask again without it (the
                        # loop cannot repeat: the next call omits the field). Not a try of
                        # its own; the target is remembered only if the call then succeeds
                        # (a body echoing the request names the field whatever was wrong).
                        without_usage = True
                        tries -= 1
                        breaker.release(claim)
                        continue
                    err = self._reclassify(e, prepared)
                    self._record_failure(req, target, err, t0, prepared)
                    action = ACTIONS[err.error_class]
                    if err.error_class is ErrorClass.CLIENT:
                        breaker.release(claim)
                        raise err from None  # the caller's own error, as the target sent it
                    if action.counts_for_breaker and not _deadline_spent(err, req):
                        breaker.record_failure(err.error_class.value, claim)
                    else:
                        breaker.release(claim)
                    if action.hold_down_s:
                        breaker.hold_down(action.hold_down_s, err.error_class.value)
                    if action.retry_same and tries <= self.retry.same_target_retries:
                        backoff = self.retry.backoff_s * (0.5 + self.rng.random())
                        if req.deadline.remaining() > backoff + 1.0 and self.budget.try_spend():
                            await self.sleep(backoff)
                            if not plan.forced and breaker.availability() is not None:
                                break
                            continue
                    if (err.error_class is ErrorClass.RATE_LIMITED and not others_left
                            and not waited_retry_after and err.retry_after is not None
                            and err.retry_after <= self.retry.max_retry_after_wait_s
                            and err.retry_after + 1.0 < req.deadline.remaining()
                            and self.budget.try_spend()):
                        waited_retry_after = True
                        await self.sleep(err.retry_after)
                        continue
                    break
                except BaseException:
                    breaker.release(claim)
                    raise
                else:
                    if not req.stream:
                        breaker.record_success(claim)
                    if without_usage and target.key not in self.no_stream_options:
                        log.warning("%s refuses stream_options; its streams go without usage "
                                    "counts from now on", target.key)
                        self.no_stream_options.add(target.key)
                    req.attempts.append(AttemptRecord(
                        target.key, "ok", (self.clock() - t0) * 1000,
                        upstream_request_id=result.upstream_request_id,
                        dropped=prepared.dropped if prepared else ()))
                    return result
        raise AllAttemptsFailed("every target of the route failed", req.attempts)

    # -- helpers ---------------------------------------------------------------------------

    def _reclassify(self, e: UpstreamError, prepared: PreparedCall | None) -> UpstreamError:
        # A 4xx that follows our translation is our fault, not the client's: fail over, loudly.
        if e.error_class is ErrorClass.CLIENT and prepared is not None and prepared.translated:
            log.error("translated request rejected by %s: %s", e.target, e.message)
            e.error_class = ErrorClass.TRANSLATION
        return e

    def _record_failure(self, req: InboundRequest, target: Target, err: UpstreamError, t0: float,
                        prepared: PreparedCall | None) -> None:
        req.attempts.append(AttemptRecord(
            target.key, err.error_class.value, (self.clock() - t0) * 1000, status=err.status,
            dropped=prepared.dropped if prepared else (), detail=redact_text(err.message, None)[:200]))

    async def _json(self, req: InboundRequest, target: Target, prepared: PreparedCall) -> JsonResult:
        resp = await target.provider.complete(prepared.call)
        try:
            obj = orjson.loads(resp.body)
        except orjson.JSONDecodeError:
            raise UpstreamError(ErrorClass.MALFORMED, "upstream answered 200 with invalid JSON",
                                target=target.key, status=200) from None
        if not isinstance(obj, dict):
            raise UpstreamError(ErrorClass.MALFORMED, "upstream answer is not an object",
                                target=target.key, status=200)
        if obj.get("type") == "error" or (obj.get("error") and "choices" not in obj):
            err = target.provider.classify(200, resp.body, {})  # type: ignore[attr-defined]
            err.target = target.key
            if err.error_class is ErrorClass.CLIENT:
                # A 200 that carries an error is the upstream misbehaving, never the caller's
                # mistake: relaying it would hand the client an error body with status 200.
                err.error_class = ErrorClass.MALFORMED
            raise err
        if target.format == "anthropic":
            ok = obj.get("type") == "message" and isinstance(obj.get("content"), list)
        else:
            ok = isinstance(obj.get("choices"), list) and len(obj["choices"]) > 0
        if not ok:
            raise UpstreamError(ErrorClass.MALFORMED, "upstream answer lacks its content",
                                target=target.key, status=200)
        usage = dict(obj.get("usage") or {})
        if target.format != req.format:
            from ridethrough.protocols import translate

            if req.format == "anthropic":
                obj = translate.openai_to_anthropic_response(obj, model=target.model)
            else:
                obj = translate.anthropic_to_openai_response(obj, model=target.model)
            body = orjson.dumps(obj)
        else:
            body = resp.body
        return JsonResult(target, body, obj, resp.headers, resp.request_id, usage)

    async def _stream(self, req: InboundRequest, target: Target, prepared: PreparedCall,
                      t0: float, claim: Claim | None = None) -> StreamResult:
        upstream = await target.provider.open_stream(prepared.call)
        relay = StreamRelay(
            target.format, req.format, model=target.model,
            client_include_usage=req.client_include_usage, strip_usage=prepared.strip_usage,
            accumulate=req.route.cache.mode != "off" and not req.no_store,
        )
        head: list[bytes] = []
        first_token_at = t0 + target.timeouts.first_token
        try:
            while not (relay.content_seen or relay.terminal_seen):
                ft_left = first_token_at - self.clock()
                timeout = min(target.timeouts.idle, ft_left, req.deadline.remaining())
                if timeout <= 0:
                    raise UpstreamError(ErrorClass.FIRST_TOKEN_TIMEOUT, "no content in time",
                                        target=target.key)
                try:
                    events = await upstream.read(timeout)
                except UpstreamError as e:
                    if e.error_class is ErrorClass.IDLE_TIMEOUT and ft_left <= target.timeouts.idle:
                        e.error_class = ErrorClass.FIRST_TOKEN_TIMEOUT
                    raise
                if events is None:
                    raise UpstreamError(ErrorClass.TRUNCATED, "stream ended before any content",
                                        target=target.key)
                for ev in events:
                    head.extend(relay.feed(ev))
        except BaseException as e:
            await upstream.aclose()
            if isinstance(e, UpstreamError) and e.target is None:
                e.target = target.key
            raise
        # Committed: from here on the client sees this target's answer. The breaker's verdict
        # waits for the stream's end: a stream that commits and then dies (an in-band error
        # after the first token) is a failure, and counting its commit as a success would
        # keep the breaker closed through exactly that kind of outage.
        result = StreamResult(target, head, _empty(), upstream.headers, upstream.request_id, relay,
                              upstream, release=functools.partial(self.board.get(target.key).release, claim))
        result.tail = self._tail(req, target, upstream, relay, result, claim)
        return result

    async def _tail(self, req: InboundRequest, target: Target, upstream: UpstreamStream,
                    relay: StreamRelay, result: StreamResult,
                    claim: Claim | None = None) -> AsyncIterator[bytes]:
        outcome = result.outcome
        try:
            while not relay.terminal_seen:
                # After commit only the idle gap bounds a stream: the deadline exists to answer
                # before the client gives up, and a client reading a live stream has not.
                events = await upstream.read(target.timeouts.idle)
                if events is None:
                    raise UpstreamError(ErrorClass.TRUNCATED, "stream ended without its terminal event",
                                        target=target.key)
                for ev in events:
                    frames = relay.feed(ev)
                    if relay.terminal_seen:
                        # The verdict before the last frames leave: a client that has read
                        # the end of its stream must find the breaker already told.
                        frames = [*frames, *relay.finish()]
                        outcome["ok"] = True
                        self.board.get(target.key).record_success(claim)
                    for frame in frames:
                        yield frame
                    if relay.terminal_seen:
                        break
            if "ok" not in outcome:  # the terminal event came before commit, with the head
                outcome["ok"] = True
                self.board.get(target.key).record_success(claim)
                for frame in relay.finish():
                    yield frame
        except (UpstreamError, ValueError, KeyError, TypeError, AttributeError) as raw:
            e = raw if isinstance(raw, UpstreamError) else UpstreamError(
                ErrorClass.MALFORMED, f"could not process the stream: {type(raw).__name__}")
            e.target = e.target or target.key
            outcome["ok"] = False
            outcome["error"] = e
            self.board.get(target.key).record_failure(e.error_class.value, claim)
            req.attempts.append(AttemptRecord(target.key, f"{e.error_class.value}_after_commit",
                                              detail=redact_text(e.message, None)[:200]))
            etype = "overloaded_error" if e.error_class is ErrorClass.OVERLOADED else "api_error"
            yield in_band_error_frame(req.format, etype,
                                      f"the upstream stream from {target.key} failed after it "
                                      f"started: {e.error_class.value}")
        except asyncio.CancelledError:
            outcome["ok"] = False
            outcome["cancelled"] = True
            raise
        finally:
            if "ok" not in outcome:  # closed early (client gone): no verdict on the target
                self.board.get(target.key).release(claim)
            await upstream.aclose()
            if result.on_end is not None:
                result.on_end()


def _rejected_stream_options(err: UpstreamError, prepared: PreparedCall | None) -> bool:
    if prepared is None or not prepared.injected_stream_options or err.status not in (400, 422):
        return False
    return b"stream_options" in (err.body or b"") or "stream_options" in err.message


_TIME_CLASSES = frozenset({ErrorClass.TIMEOUT, ErrorClass.FIRST_TOKEN_TIMEOUT, ErrorClass.IDLE_TIMEOUT})


def _deadline_spent(err: UpstreamError, req: InboundRequest) -> bool:
    """A timeout that fired because the *request's* deadline ran out says nothing about
    the target (the client asked for less time than the target's own limits allow)."""
    return err.error_class in _TIME_CLASSES and req.deadline.remaining() < 0.05


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover
