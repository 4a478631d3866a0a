"""The executor: attempts under one deadline, until a target answers.

For each planned target it claims the breaker, prepares the call (passthrough or
translation), and sends it under timeouts learned from the target's own latency
(routing/timeouts.py), leaving enough of the deadline for the targets after it. An attempt
still short of its commit point past the target's hedge delay gets a backup request to the
next available target, in parallel; the first to commit wins and the other is cancelled.
JSON answers are validated before they count as success.
Streams are read up to the commit point — the first content event — so every failure
before it (HTTP error, reset, stall, in-band error, truncation) is a silent failover. After
commit, a failure becomes an in-band error event in the client's format and is recorded as
a failure. Each error's class picks the action (errors.ACTIONS): retry once on the same
target, fail over, hold the target down, or return the error to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ridethrough.config import AdaptiveTimeoutConfig, HedgeConfig, RetryConfig
from ridethrough.errors import (
    ACTIONS,
    AllAttemptsFailed,
    AttemptRecord,
    ClientError,
    ErrorClass,
    UpstreamError,
)
from ridethrough.protocols.splice import Cut, NotContinuable, SpliceMismatch, splicer_for, view_for
from ridethrough.protocols.sse import encode_comment, in_band_error_frame
from ridethrough.providers.base import UpstreamStream
from ridethrough.redact import redact_text
from ridethrough.routing.breaker import Breaker, BreakerBoard, Claim
from ridethrough.routing.budget import RetryBudget
from ridethrough.routing.clock import Clock, Sleep
from ridethrough.routing.continuation import continuation_request, order_candidates
from ridethrough.routing.deadline import Deadline
from ridethrough.routing.latency import LatencyModel
from ridethrough.routing.plan import Plan, Target
from ridethrough.routing.relay import StreamRelay
from ridethrough.routing.request import InboundRequest, PreparedCall, prepare_call
from ridethrough.routing.retry import RetryPolicy
from ridethrough.routing.timeouts import CallShape, TimeoutPolicy

log = logging.getLogger("ridethrough.executor")

PREFILL_REFUSAL_TTL_S = 3600.0  # a target that refused a prefill is not asked again for this long


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


@dataclass(slots=True, eq=False)
class _Attempt:
    """One target being tried (its retries included), as the hedge race sees it."""

    target: Target
    started: float
    hedge: bool = False                 # started as a backup while another was running
    hedge_at: float | None = None       # when to start a backup for it (None: never/already)
    lost: bool = False                  # another attempt won the race: it is being cancelled


class Executor:
    def __init__(self, board: BreakerBoard, budget: RetryBudget, retry: RetryConfig,
                 clock: Clock, sleep: Sleep, rng: random.Random | None = None, *,
                 policy: TimeoutPolicy | None = None, hedge_budget: RetryBudget | None = None,
                 slow_call_factor: float = 3.0, max_continuations: int = 2) -> None:
        self.board = board
        self.budget = budget
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.retry_policy = RetryPolicy(retry, budget, self.rng)
        # Without a policy (unit tests of other decisions): configured timeouts, no hedging.
        self.policy = policy or TimeoutPolicy(
            LatencyModel(clock), AdaptiveTimeoutConfig(enabled=False), HedgeConfig(enabled=False))
        self.latency = self.policy.model
        self.hedge_budget = hedge_budget or RetryBudget(0.05, 0.1, clock, cap=20.0)
        self.slow_call_factor = slow_call_factor
        self.hedge_stats = {"started": 0, "won": 0, "budget_refused": 0}
        # Targets that rejected the ``stream_options`` we add to learn a stream's usage (some
        # OpenAI-compatible servers refuse unknown fields): we stop adding it there.
        self.no_stream_options: set[str] = set()
        # Mid-stream continuation: the gateway supplies the route's available targets; those
        # that answered a continuation (a prefill) with a 400 are not asked again.
        self.continuation_targets: Callable[[InboundRequest], list[Target]] | None = None
        self.continuable_routes: set[str] = set()  # routes with a target that takes a prefill
        self.max_continuations = max_continuations
        self.no_prefill: dict[str, float] = {}  # target -> until when it is not asked
        self.stream_stats = {"continued": 0, "continuation_failed": 0, "prefill_refused": 0,
                             "malformed_frames": 0, "ended_without_terminator": 0}

    async def run(self, req: InboundRequest, plan: Plan) -> JsonResult | StreamResult:
        """Try the plan's targets in order until one commits. While an attempt has not
        committed past its target's hedge delay, the next available target is started in
        parallel (budget permitting); the first to commit wins and the others are cancelled."""
        req.attempts.extend(plan.skipped)
        pending = list(plan.candidates)
        shape = _shape(req)
        hedging = not plan.forced and req.route.hedge
        running: dict[asyncio.Future[Any], _Attempt] = {}
        timer: asyncio.Future[None] | None = None
        # A client error or the deadline raised by one attempt while another still runs: the
        # other may yet commit, so it is raised only if none does (as it would be alone).
        held: BaseException | None = None
        try:
            while True:
                if not running:
                    if held is not None:
                        raise held
                    if not pending:
                        raise AllAttemptsFailed("every target of the route failed", req.attempts)
                    attempt = _Attempt(pending.pop(0), self.clock())
                    delay = self.policy.hedge_delay(attempt.target.key, shape) \
                        if hedging and self._next_available(pending) is not None else None
                    if delay is None:
                        # Nothing to race against: run it inline (no task, no timer).
                        result = await self._serve_from(req, plan, attempt, pending, running)
                        if result is not None:
                            return result
                        continue
                    attempt.hedge_at = attempt.started + delay
                    running[asyncio.ensure_future(
                        self._serve_from(req, plan, attempt, pending, running))] = attempt
                due = [a.hedge_at for a in running.values() if a.hedge_at is not None]
                if due and timer is None:
                    timer = asyncio.ensure_future(self.sleep(max(0.0, min(due) - self.clock())))
                waits: set[asyncio.Future[Any]] = set(running)
                if timer is not None:
                    waits.add(timer)
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                winner: tuple[_Attempt, JsonResult | StreamResult] | None = None
                finished = [t for t in done if t is not timer]
                for task in finished:  # results before errors: a commit is never thrown away
                    attempt = running.pop(task)
                    if task.cancelled():
                        continue
                    error = task.exception()
                    if error is not None:
                        held = held or error
                        continue
                    result = task.result()
                    if result is None:
                        continue
                    if winner is None:
                        winner = (attempt, result)
                    elif isinstance(result, StreamResult):  # committed in the same instant
                        await result.close()
                if winner is not None:
                    attempt, result = winner
                    try:
                        await self._cancel_losers(running)
                    except BaseException:
                        if isinstance(result, StreamResult):  # the client left meanwhile
                            await result.close()
                        raise
                    if attempt.hedge:
                        self.hedge_stats["won"] += 1
                    return result
                if finished and timer is not None:
                    # An attempt ended: the timer was armed for it, re-arm for those left.
                    timer.cancel()
                    timer = None
                elif timer is not None and timer in done:
                    timer = None
                    self._maybe_hedge(req, plan, pending, running, shape)
        finally:
            if timer is not None:
                timer.cancel()
            if running:
                await self._cancel_losers(running, lost=False)

    def _next_available(self, pending: list[Target]) -> Target | None:
        return next((t for t in pending if self.board.get(t.key).availability() is None), None)

    def _maybe_hedge(self, req: InboundRequest, plan: Plan, pending: list[Target],
                     running: dict[asyncio.Future[Any], _Attempt], shape: CallShape) -> None:
        now = self.clock()
        late = [a for a in running.values() if a.hedge_at is not None and a.hedge_at <= now]
        if not late:
            return
        for a in late:
            a.hedge_at = None  # one backup per attempt
        nxt = self._next_available(pending)
        if nxt is None:
            return
        if not self.hedge_budget.try_spend():
            self.hedge_stats["budget_refused"] += 1
            return
        pending.remove(nxt)
        self.hedge_stats["started"] += 1
        backup = _Attempt(nxt, now, hedge=True)
        # A backup may itself be hedged by the target after it, once past its own delay.
        delay = self.policy.hedge_delay(nxt.key, shape) \
            if self._next_available(pending) is not None else None
        backup.hedge_at = now + delay if delay is not None else None
        running[asyncio.ensure_future(self._serve_from(req, plan, backup, pending, running))] = backup

    async def _cancel_losers(self, running: dict[asyncio.Future[Any], _Attempt], *,
                             lost: bool = True) -> None:
        """Cancel every other attempt at once (its connection is closed). ``lost``: it lost
        a hedge race (recorded as ``hedge_lost``, a slow call, never a failure)."""
        for task, attempt in running.items():
            attempt.lost = lost
            task.cancel()
        results = await asyncio.gather(*running, return_exceptions=True)
        for result in results:
            if isinstance(result, StreamResult):  # committed in the same instant: close it
                await result.close()
        running.clear()

    async def _serve_from(self, req: InboundRequest, plan: Plan, attempt: _Attempt,
                          pending: list[Target],
                          running: dict[asyncio.Future[Any], _Attempt]) -> JsonResult | StreamResult | None:
        """Every try at one target (retries included). The result, or None once it gave up
        (its attempts are recorded). A client error or an expired deadline raise."""
        target = attempt.target
        shape = _shape(req)
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
                return None
            tries += 1
            t0 = self.clock()
            timeouts = self.policy.for_attempt(target.key, target.timeouts, shape)
            granted = self._attempt_budget(req, target, shape, pending, running, attempt)
            prepared: PreparedCall | None = None
            try:
                try:
                    prepared = prepare_call(req, target, inject_usage=not without_usage)
                    prepared.call.timeouts = timeouts
                    prepared.call.deadline = Deadline(self.clock, t0 + granted)
                    if req.stream:
                        result: JsonResult | StreamResult = await self._stream(
                            req, target, prepared, t0, claim, shape)
                    else:
                        result = await self._json(req, target, prepared)
                        elapsed = self.clock() - t0
                        slow = self.policy.is_slow(target.key, shape, elapsed, self.slow_call_factor)
                        self.latency.observe(target.key, shape.commit_phase, elapsed)
                except (UpstreamError, ClientError, asyncio.CancelledError):
                    raise  # ClientError: prepare_call could not read the request (request_side)
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
                timed_out = err.error_class in _TIME_CLASSES
                if action.counts_for_breaker and (
                        not timed_out or self._had_a_fair_chance(target, shape, granted)):
                    breaker.record_failure(err.error_class.value, claim, slow=timed_out)
                else:
                    breaker.release(claim)
                if action.hold_down_s:
                    breaker.hold_down(action.hold_down_s, err.error_class.value)
                others_left = self._next_available(pending) is not None or len(running) > 1
                if err.error_class is ErrorClass.RATE_LIMITED and others_left:
                    self._hold_rate_limited(breaker, err)
                wait = self.retry_policy.wait(err, tries=tries, remaining=req.deadline.remaining(),
                                              others_left=others_left,
                                              waited_retry_after=waited_retry_after)
                if wait is None:
                    return None
                waited_retry_after = waited_retry_after or wait.retry_after
                await self.sleep(wait.seconds)
                if not wait.retry_after and not plan.forced and breaker.availability() is not None:
                    return None  # the breaker opened meanwhile (other requests' failures)
            except asyncio.CancelledError:
                if attempt.lost:
                    elapsed = self.clock() - t0
                    req.attempts.append(AttemptRecord(target.key, "hedge_lost", elapsed * 1000,
                                                      hedge=attempt.hedge))
                    # Late only if it was past its own hedge delay: a backup that started
                    # late and lost to the original answering after all is no slow call.
                    delay = self.policy.hedge_delay(target.key, shape)
                    if delay is not None and elapsed >= delay:
                        breaker.record_hedge_lost(claim)
                    else:
                        breaker.release(claim)
                else:
                    breaker.release(claim)
                raise
            except BaseException:
                breaker.release(claim)
                raise
            else:
                if not req.stream:
                    breaker.record_success(claim, slow=slow)
                if without_usage and target.key not in self.no_stream_options:
                    log.warning("%s refuses stream_options; its streams go without usage "
                                "counts from now on", target.key)
                    self.no_stream_options.add(target.key)
                req.attempts.append(AttemptRecord(
                    target.key, "ok", (self.clock() - t0) * 1000,
                    upstream_request_id=result.upstream_request_id,
                    dropped=prepared.dropped if prepared else (), hedge=attempt.hedge))
                return result

    def _attempt_budget(self, req: InboundRequest, target: Target, shape: CallShape,
                        pending: list[Target], running: dict[asyncio.Future[Any], _Attempt],
                        attempt: _Attempt) -> float:
        """This try's share of the deadline: all that is left if no other target could
        answer after it, else what is left minus what the later targets need (at most
        ``reserve_share`` of it), so a freeze never spends the time a failover needed."""
        left = req.deadline.remaining()
        later = [t for t in pending if self.board.get(t.key).availability() is None]
        if not later:
            return left
        # What each later target needs when healthy: its learned timeout, else its ceiling.
        need = sum(self.policy.fair_wait(t.key, t.timeouts, shape) for t in later)
        return left - min(need, left * self.policy.cfg.reserve_share)

    def _had_a_fair_chance(self, target: Target, shape: CallShape, granted: float) -> bool:
        """A timeout is evidence against the target unless the time it was given was short
        of what it normally needs: its learned (clamped) timeout once warm; while cold, the
        phase's floor × the multiplier (12 s by default), never above its ceiling. A client
        asking for 5 s from a cold target is no evidence; 14 s of silence is."""
        if self.latency.quantile(target.key, shape.commit_phase, 0.99) is not None:
            need = self.policy.fair_wait(target.key, target.timeouts, shape)
        else:
            cfg = self.policy.cfg
            floor = cfg.floor_first_token_s if shape.stream else cfg.floor_complete_s
            ceiling = target.timeouts.first_token if shape.stream else target.timeouts.total
            need = min(ceiling, floor * cfg.multiplier)
        return granted >= need * 0.99

    def _hold_rate_limited(self, breaker: Breaker, err: UpstreamError) -> None:
        """A 429 while other targets can answer: skip this one for a short, jittered while
        (or its Retry-After), instead of asking it first on every call."""
        bcfg = breaker.cfg
        if err.retry_after is not None:
            hold = min(err.retry_after, bcfg.rate_limit_max_hold_s)
        else:
            hold = bcfg.rate_limit_hold_s * (0.5 + self.rng.random())
        if hold > 0:
            breaker.hold_down(hold, ErrorClass.RATE_LIMITED.value)

    # -- helpers ---------------------------------------------------------------------------

    def _reclassify(self, e: UpstreamError, prepared: PreparedCall | None) -> UpstreamError:
        # A 4xx that follows our translation is our fault, not the client's: fail over, loudly.
        if e.error_class is ErrorClass.CLIENT and prepared is not None and prepared.translated:
            log.error("translated request rejected by %s: %s", e.target, e.message)
            return e.reclassified(ErrorClass.TRANSLATION)
        return e

    def _record_failure(self, req: InboundRequest, target: Target, err: UpstreamError, t0: float,
                        prepared: PreparedCall | None) -> None:
        req.attempts.append(AttemptRecord(
            target.key, err.error_class.value, (self.clock() - t0) * 1000, status=err.upstream_status,
            dropped=prepared.dropped if prepared else (), detail=redact_text(err.message, None)[:200]))

    async def _json(self, req: InboundRequest, target: Target, prepared: PreparedCall) -> JsonResult:
        resp = await target.provider.complete(prepared.call)
        try:
            obj = orjson.loads(resp.body)
        except orjson.JSONDecodeError:
            raise UpstreamError(ErrorClass.MALFORMED, "upstream answered 200 with invalid JSON",
                                target=target.key, upstream_status=200) from None
        if not isinstance(obj, dict):
            raise UpstreamError(ErrorClass.MALFORMED, "upstream answer is not an object",
                                target=target.key, upstream_status=200)
        if obj.get("type") == "error" or (obj.get("error") and "choices" not in obj):
            err = target.provider.classify(200, resp.body, {})
            # A 200 that carries an error is the upstream misbehaving, never the caller's
            # mistake: relaying it would hand the client an error body with status 200.
            raise err.reclassified(ErrorClass.MALFORMED if err.error_class is ErrorClass.CLIENT
                                   else None, target=target.key)
        if target.format == "anthropic":
            ok = obj.get("type") == "message" and isinstance(obj.get("content"), list)
        else:
            ok = isinstance(obj.get("choices"), list) and len(obj["choices"]) > 0
        if not ok:
            raise UpstreamError(ErrorClass.MALFORMED, "upstream answer lacks its content",
                                target=target.key, upstream_status=200)
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
                      t0: float, claim: Claim | None, shape: CallShape) -> StreamResult:
        upstream = await target.provider.open_stream(prepared.call)
        self.latency.observe(target.key, "headers", self.clock() - t0)
        relay = StreamRelay(
            target.format, req.format, model=target.model,
            client_include_usage=req.client_include_usage, strip_usage=prepared.strip_usage,
            accumulate=req.route.cache.mode != "off" and not req.no_store,
            classify=target.provider.classify_stream_error,
            view=view_for(req.format) if self._may_continue(req) else None,
        )
        head = await self._read_to_commit(target, upstream, relay, prepared, t0)
        elapsed = self.clock() - t0
        result_slow = self.policy.is_slow(target.key, shape, elapsed, self.slow_call_factor)
        self.latency.observe(target.key, shape.commit_phase, elapsed)
        # Committed: from here on the client sees this target's answer. The breaker's verdict
        # waits for the stream's end: a stream that commits and then dies (an in-band error
        # after the first token) is a failure, and counting its commit as a success would
        # keep the breaker closed through exactly that kind of outage.
        result = StreamResult(target, head, _empty(), upstream.headers, upstream.request_id, relay,
                              upstream, release=functools.partial(self.board.get(target.key).release, claim))
        result.tail = self._tail(req, target, upstream, relay, result, claim, slow=result_slow)
        return result

    async def _read_to_commit(self, target: Target, upstream: UpstreamStream, relay: StreamRelay,
                              prepared: PreparedCall, t0: float) -> list[bytes]:
        """The frames up to and including the first content (or the whole answer, if it
        ended first). Every failure here is silent: the client has seen nothing yet."""
        timeouts, deadline = prepared.call.timeouts, prepared.call.deadline
        head: list[bytes] = []
        first_token_at = t0 + timeouts.first_token
        try:
            while not (relay.content_seen or relay.terminal_seen):
                ft_left = first_token_at - self.clock()
                timeout = min(timeouts.idle, ft_left, deadline.remaining())
                if timeout <= 0:
                    raise UpstreamError(ErrorClass.FIRST_TOKEN_TIMEOUT, "no content in time",
                                        target=target.key)
                try:
                    events = await upstream.read(timeout)
                except UpstreamError as e:
                    if e.error_class is ErrorClass.IDLE_TIMEOUT and (
                            ft_left <= timeouts.idle or timeout < timeouts.idle):
                        raise e.reclassified(ErrorClass.FIRST_TOKEN_TIMEOUT) from None
                    raise
                if events is None:
                    ending = relay.end_of_stream()  # an empty answer, complete but unterminated
                    if ending is None:
                        raise UpstreamError(ErrorClass.TRUNCATED, "stream ended before any content",
                                            target=target.key)
                    head.extend(ending)
                    break
                for ev in events:
                    head.extend(relay.feed(ev))
        except UpstreamError as e:
            await upstream.aclose()
            if e.target is None:
                raise e.reclassified(target=target.key) from None
            raise
        except BaseException:
            await upstream.aclose()
            raise
        return head

    async def _rest(self, target: Target, upstream: UpstreamStream, relay: StreamRelay,
                    verdict: Callable[[], None]) -> AsyncGenerator[bytes, None]:
        """The frames after the commit point, to the stream's end: its terminator, or the
        upstream closing on an answer complete by meaning. ``verdict`` runs before the last
        frames leave: a client that has read the end of its stream must find the breaker
        already told. Raises ``UpstreamError`` if the stream is cut, stalls or fails."""
        while not relay.terminal_seen:
            # After commit only the idle gap bounds a stream: the deadline exists to answer
            # before the client gives up, and a client reading a live stream has not.
            events = await upstream.read(target.timeouts.idle)
            if events is None:
                ending = relay.end_of_stream()
                if ending is None:
                    raise UpstreamError(ErrorClass.TRUNCATED, "stream ended before the answer "
                                        "was complete", target=target.key)
                self.stream_stats["ended_without_terminator"] += 1
                verdict()
                for frame in ending:
                    yield frame
                return
            for ev in events:
                frames = relay.feed(ev)
                if relay.terminal_seen:
                    frames = [*frames, *relay.finish()]
                    verdict()
                for frame in frames:
                    yield frame
                if relay.terminal_seen:
                    return
        verdict()  # the terminal event came before commit, with the head
        for frame in relay.finish():
            yield frame

    async def _tail(self, req: InboundRequest, target: Target, upstream: UpstreamStream,
                    relay: StreamRelay, result: StreamResult,
                    claim: Claim | None = None, *, slow: bool = False) -> AsyncIterator[bytes]:
        outcome = result.outcome
        breaker = self.board.get(target.key)

        def verdict() -> None:
            outcome["ok"] = True
            breaker.record_success(claim, slow=slow)

        try:
            try:
                async with contextlib.aclosing(self._rest(target, upstream, relay, verdict)) as rest:
                    async for frame in rest:
                        yield frame
            except (UpstreamError, ValueError, KeyError, TypeError, AttributeError) as raw:
                e = _post_commit_error(raw, target)
                outcome["ok"] = False
                outcome["error"] = e
                breaker.record_failure(e.error_class.value, claim)
                req.attempts.append(AttemptRecord(target.key, f"{e.error_class.value}_after_commit",
                                                  detail=redact_text(e.message, None)[:200]))
                await upstream.aclose()  # its connection is done with, whatever comes next
                async with contextlib.aclosing(self._continue(req, result, e)) as more:
                    async for frame in more:
                        yield frame
                if not outcome.get("ok"):
                    e = outcome["error"]  # the last failure (a continuation may have been cut too)
                    etype = "overloaded_error" if e.error_class is ErrorClass.OVERLOADED else "api_error"
                    yield in_band_error_frame(req.format, etype,
                                              f"the upstream stream from {e.target} failed after "
                                              f"it started: {e.error_class.value}")
        except asyncio.CancelledError:
            # The client left: no verdict on the target, and the claim (a probe's, perhaps)
            # is released in ``finally`` — marking it failed here would leave it held forever.
            outcome["cancelled"] = True
            raise
        finally:
            if "ok" not in outcome:  # closed early (client gone): no verdict on the target
                breaker.release(claim)
            await upstream.aclose()
            self._note_malformed(req, target, relay)
            if result.on_end is not None:
                result.on_end()

    # -- mid-stream continuation -----------------------------------------------------------

    def _may_continue(self, req: InboundRequest) -> bool:
        """Continuation is on for the route and can be faithful for this request: one
        choice, and no extended thinking (a prefill cannot carry a thinking block)."""
        if not req.route.continuation or self.max_continuations <= 0 \
                or req.route_name not in self.continuable_routes:
            return False
        body = req.body
        if (body.get("n") or 1) != 1:
            return False
        thinking = body.get("thinking")
        return not (isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"))

    async def _continue(self, req: InboundRequest, result: StreamResult,
                        err: UpstreamError) -> AsyncGenerator[bytes, None]:
        """After a committed stream died: ask a target that takes a prefill to continue the
        answer from the text the client has, and splice its stream into the client's. A
        continuation that fails before its first token is silent (the next is asked); one
        that fails after it is cut again, and continued again, up to ``max_continuations``.
        Sets ``outcome["ok"]`` if the answer was completed; otherwise the caller sends the
        last error (a refused prefill never masks it)."""
        view = result.relay.view
        if view is None or self.continuation_targets is None:
            return
        outcome = result.outcome
        cut_target, switches = result.target, 0
        while True:
            if switches >= self.max_continuations:
                self.stream_stats["continuation_failed"] += 1
                return
            try:
                cut = view.cut()
            except NotContinuable as why:
                log.info("%s: not continued after %s: %s", req.request_id, err.error_class.value, why)
                return
            creq = continuation_request(req, cut, self.clock)
            for target in order_candidates(self.continuation_targets(req), cut_target,
                                           self._refusing_prefill()):
                attempt = await self._continuation_attempt(req, creq, target, view, cut)
                if attempt is None:
                    continue
                upstream, relay, head, claim, t0 = attempt
                assert relay.view is not None and relay.splicer is not None
                view = relay.view  # what the client has now includes this stream's head
                splicer = relay.splicer
                breaker = self.board.get(target.key)
                switches += 1
                self.stream_stats["continued"] += 1
                judged = False

                def verdict(breaker: Breaker = breaker, claim: Claim | None = claim) -> None:
                    nonlocal judged
                    judged = True
                    outcome["ok"] = True
                    breaker.record_success(claim)

                # From here the claim and the connection are ours until judged or closed,
                # whatever happens to the client (a disconnect closes this generator at a
                # yield: the finally below still runs).
                try:
                    yield encode_comment(f"ridethrough continued-on {target.key} after "
                                         f"{err.error_class.value} from {cut_target.key}")
                    for frame in head:
                        yield frame
                    async with contextlib.aclosing(self._rest(target, upstream, relay, verdict)) as rest:
                        async for frame in rest:
                            yield frame
                except (UpstreamError, ValueError, KeyError, TypeError, AttributeError) as raw:
                    err = _post_commit_error(raw, target)
                    judged = True
                    breaker.record_failure(err.error_class.value, claim)
                    req.attempts.append(AttemptRecord(
                        target.key, f"{err.error_class.value}_after_commit", (self.clock() - t0) * 1000,
                        detail=redact_text(err.message, None)[:200], continuation=True))
                    outcome["error"] = err
                    cut_target = target
                    break
                finally:
                    if not judged:  # the client left: no verdict on the target
                        breaker.release(claim)
                    await upstream.aclose()
                    self._note_malformed(req, target, relay)
                req.attempts.append(AttemptRecord(target.key, "ok", (self.clock() - t0) * 1000,
                                                  upstream_request_id=upstream.request_id,
                                                  continuation=True))
                outcome["continued"] = True
                outcome["usage"] = splicer.client_usage or _combined_usage(relay.usage, cut)
                return
            else:
                self.stream_stats["continuation_failed"] += 1
                return  # no target could take it: the caller sends the last error

    def _refusing_prefill(self) -> set[str]:
        """Targets that refused a continuation lately: not asked again for a while (a model
        may be swapped behind its name, so the lesson expires)."""
        now = self.clock()
        for key in [k for k, until in self.no_prefill.items() if until <= now]:
            del self.no_prefill[key]
        return set(self.no_prefill)

    async def _continuation_attempt(
        self, req: InboundRequest, creq: InboundRequest, target: Target, view: Any, cut: Cut,
    ) -> tuple[UpstreamStream, StreamRelay, list[bytes], Claim | None, float] | None:
        """Open the continuation on ``target`` and read it to its first content. None if it
        failed before that (recorded; a refused prefill is learned, never counted against
        the target) — the client has seen nothing of it."""
        breaker = self.board.get(target.key)
        claim = breaker.acquire()
        if not claim:
            return None
        if not self.budget.try_spend():  # a continuation is one more request: a retry
            breaker.release(claim)
            req.attempts.append(AttemptRecord(target.key, "skipped:retry_budget", continuation=True))
            return None
        t0 = self.clock()
        shape = _shape(creq)
        try:
            prepared = prepare_call(creq, target, inject_usage=target.key not in self.no_stream_options)
            prepared.call.timeouts = self.policy.for_attempt(target.key, target.timeouts, shape)
            upstream = await target.provider.open_stream(prepared.call)
            # A copy of the view: frames read before this stream's commit reach the client
            # only if it commits, and a failed try must not have changed what the next sees.
            relay = StreamRelay(target.format, req.format, model=target.model,
                                client_include_usage=req.client_include_usage,
                                strip_usage=prepared.strip_usage, accumulate=False,
                                classify=target.provider.classify_stream_error,
                                view=copy.deepcopy(view), splicer=splicer_for(view, cut))
            head = await self._read_to_commit(target, upstream, relay, prepared, t0)
        except (ClientError, SpliceMismatch) as e:
            # Not the target's fault: the continuation did not fit what the client has.
            breaker.release(claim)
            req.attempts.append(AttemptRecord(target.key, "continuation_mismatch",
                                              detail=redact_text(str(e), None)[:200], continuation=True))
            return None
        except UpstreamError as e:
            if e.error_class is ErrorClass.CLIENT:
                # The original request was fine elsewhere: what this target refuses is the
                # prefill. Learned, logged, never shown (the client's error is the cut's).
                breaker.release(claim)
                self.no_prefill[target.key] = self.clock() + PREFILL_REFUSAL_TTL_S
                self.stream_stats["prefill_refused"] += 1
                log.warning("%s refused a continuation (prefill): %s; not asked again",
                            target.key, redact_text(e.message, None)[:200])
                req.attempts.append(AttemptRecord(target.key, "prefill_refused", status=e.upstream_status,
                                                  continuation=True))
                return None
            err = self._reclassify(e, None)
            if ACTIONS[err.error_class].counts_for_breaker:
                breaker.record_failure(err.error_class.value, claim)
            else:
                breaker.release(claim)
            req.attempts.append(AttemptRecord(
                target.key, err.error_class.value, (self.clock() - t0) * 1000, status=err.upstream_status,
                detail=redact_text(err.message, None)[:200], continuation=True))
            return None
        except BaseException:
            breaker.release(claim)
            raise
        return upstream, relay, head, claim, t0

    def _note_malformed(self, req: InboundRequest, target: Target, relay: StreamRelay) -> None:
        """Frames dropped as unreadable reach the target's health (a neutral outcome: the
        answer was delivered) and the metrics."""
        if relay.malformed:
            self.stream_stats["malformed_frames"] += relay.malformed
            req.attempts.append(AttemptRecord(target.key, "malformed_frames",
                                              detail=f"{relay.malformed} dropped"))


def _combined_usage(upstream_usage: dict[str, Any], cut: Cut) -> dict[str, Any]:
    """For the access log when the client asked for no usage: the continuation's own count
    (in its target's words) plus what the client had before the cut."""
    usage = dict(upstream_usage)
    for key in ("output_tokens", "completion_tokens"):
        if isinstance(usage.get(key), int):
            usage[key] += cut.output_tokens
    return usage


def _post_commit_error(raw: BaseException, target: Target) -> UpstreamError:
    if isinstance(raw, UpstreamError):
        return raw if raw.target else raw.reclassified(target=target.key)
    return UpstreamError(ErrorClass.MALFORMED, f"could not process the stream: {type(raw).__name__}",
                         target=target.key)


def _rejected_stream_options(err: UpstreamError, prepared: PreparedCall | None) -> bool:
    """A 400/422 naming ``stream_options`` among its fields, to a request where we added it:
    asked again without it. Only a success then proves the field was the problem (a 422 may
    name the caller's own field too), so the caller's own refusal still reaches the caller."""
    if prepared is None or not prepared.injected_stream_options or err.upstream_status not in (400, 422):
        return False
    return any(f.split(".")[0] == "stream_options" for f in err.fields)


_TIME_CLASSES = frozenset({ErrorClass.TIMEOUT, ErrorClass.FIRST_TOKEN_TIMEOUT, ErrorClass.IDLE_TIMEOUT})


def _shape(req: InboundRequest) -> CallShape:
    f = req.features
    return CallShape(req.stream, f.max_output_tokens or None, f.estimated_input_tokens)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover
