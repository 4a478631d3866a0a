"""The executor: attempts under one deadline, until a target answers.

For each planned target it claims the breaker, prepares the call (passthrough or
translation), and sends it under timeouts learned from the target's own latency
(routing/timeouts.py), leaving enough of the deadline for the targets after it. An attempt
still short of its commit point past the target's hedge delay gets a backup request to the
next available target, in parallel; the first to commit wins and the other is cancelled.
JSON answers are validated before they count as success.
Streams are read up to the commit point — the first content event — so every failure
before it (HTTP error, reset, stall, in-band error, truncation) is a silent failover; what
happens after it is routing/streams.py's. Each error's class picks the action
(errors.ACTIONS), the retry policy (routing/retry.py) whether to wait and try the same
target again: retry once, fail over, hold the target down, or return the error to the client.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
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
from ridethrough.redact import attempt_detail
from ridethrough.routing.breaker import Breaker, BreakerBoard
from ridethrough.routing.budget import RetryBudget
from ridethrough.routing.clock import Clock, Sleep
from ridethrough.routing.deadline import Deadline
from ridethrough.routing.latency import LatencyModel
from ridethrough.routing.plan import Plan, Target
from ridethrough.routing.request import InboundRequest, PreparedCall, prepare_call, shape_of
from ridethrough.routing.retry import RetryPolicy
from ridethrough.routing.streams import StreamResult, Streams
from ridethrough.routing.timeouts import CallShape, TimeoutPolicy

log = logging.getLogger("ridethrough.executor")


@dataclass(slots=True)
class JsonResult:
    target: Target
    body: bytes                       # in the client's format
    obj: dict[str, Any]               # same, parsed (for the cache and usage)
    headers: dict[str, str]
    upstream_request_id: str | None
    usage: dict[str, Any]


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
        self.accepts_stream_options: set[str] = set()  # served a stream with it: never the cause
        self.streams = Streams(board, budget, clock, self.policy, slow_call_factor=slow_call_factor,
                               max_continuations=max_continuations,
                               no_stream_options=self.no_stream_options)

    async def run(self, req: InboundRequest, plan: Plan) -> JsonResult | StreamResult:
        """Try the plan's targets in order until one commits. While an attempt has not
        committed past its target's hedge delay, the next available target is started in
        parallel (budget permitting); the first to commit wins and the others are cancelled."""
        req.attempts.extend(plan.skipped)
        pending = list(plan.candidates)
        shape = shape_of(req)
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
        shape = shape_of(req)
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
                        result: JsonResult | StreamResult = await self.streams.open(
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
                if _rejected_stream_options(e, prepared,
                                            accepted=target.key in self.accepts_stream_options):
                    # Our addition may be what was refused: ask again without it (the
                    # loop cannot repeat: the next call omits the field). Not a try of
                    # its own; the target is remembered only if the call then succeeds.
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
                elif prepared is not None and prepared.injected_stream_options:
                    self.accepts_stream_options.add(target.key)
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
            dropped=prepared.dropped if prepared else (), detail=attempt_detail(err.message)))

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


def _rejected_stream_options(err: UpstreamError, prepared: PreparedCall | None, *,
                             accepted: bool) -> bool:
    """Might the ``stream_options`` we added be what this 400/422 refuses? Decided by the
    error's structure, never its wording: yes if it names the field among its ``fields``;
    no if it names only others; if it names none (OpenAI's and Azure's "Unrecognized request
    argument" carry ``param: null``), yes unless the target already served a stream with it.
    The call is then made again without it, and only a success proves it was the cause, so a
    refusal of the caller's own request still reaches the caller (as it sent it)."""
    if prepared is None or not prepared.injected_stream_options or err.upstream_status not in (400, 422):
        return False
    if err.fields:
        return any(f.split(".")[0] == "stream_options" for f in err.fields)
    return not accepted


_TIME_CLASSES = frozenset({ErrorClass.TIMEOUT, ErrorClass.FIRST_TOKEN_TIMEOUT, ErrorClass.IDLE_TIMEOUT})
