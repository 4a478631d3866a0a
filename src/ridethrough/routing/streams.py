"""A stream after it was opened: read to its commit point, relayed to its end, continued if cut.

The executor decides *which* target answers; this is what happens to a stream once one does.
``open`` reads it up to the first content (the commit point: every failure before it is a
silent failover, so it raises), then hands back its head and a guarded tail. The tail relays
the rest to the answer's end — the terminator, or the upstream closing on an answer complete
by meaning — and tells the breaker. If the stream is cut, stalls or fails after its commit,
the tail asks a target that takes a prefill to continue the answer from the text the client
has (routing/continuation.py builds that request; protocols/splice.py splices the answer in),
and only when nothing can, ends the client's stream with a clean in-band error.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ridethrough.errors import ACTIONS, AttemptRecord, ClientError, ErrorClass, UpstreamError
from ridethrough.protocols.splice import Cut, NotContinuable, SpliceMismatch, splicer_for, view_for
from ridethrough.protocols.sse import encode_comment, in_band_error_frame
from ridethrough.providers.base import UpstreamStream
from ridethrough.redact import attempt_detail
from ridethrough.routing.breaker import Breaker, BreakerBoard, Claim
from ridethrough.routing.budget import RetryBudget
from ridethrough.routing.clock import Clock
from ridethrough.routing.continuation import continuation_request, order_candidates
from ridethrough.routing.plan import Target
from ridethrough.routing.relay import StreamRelay
from ridethrough.routing.request import InboundRequest, PreparedCall, prepare_call, shape_of
from ridethrough.routing.timeouts import CallShape, TimeoutPolicy

log = logging.getLogger("ridethrough.executor")

PREFILL_REFUSAL_TTL_S = 3600.0  # a target that refused a prefill is not asked again for this long


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


class Streams:
    """Streams once opened; owns what continuation learns (targets that refuse a prefill)
    and counts what happens after the commit point (``stats``, shown in /metrics)."""

    def __init__(self, board: BreakerBoard, budget: RetryBudget, clock: Clock,
                 policy: TimeoutPolicy, *, slow_call_factor: float, max_continuations: int,
                 no_stream_options: set[str]) -> None:
        self.board = board
        self.budget = budget
        self.clock = clock
        self.policy = policy
        self.latency = policy.model
        self.slow_call_factor = slow_call_factor
        self.no_stream_options = no_stream_options  # shared with the executor, which learns it
        # Mid-stream continuation: the gateway supplies the route's available targets; those
        # that answered a continuation (a prefill) with a 400 are not asked again for a while.
        self.continuation_targets: Callable[[InboundRequest], list[Target]] | None = None
        self.continuable_routes: set[str] = set()  # routes with a target that takes a prefill
        self.max_continuations = max_continuations
        self.no_prefill: dict[str, float] = {}  # target -> until when it is not asked
        self.stats = {"continued": 0, "continuation_failed": 0, "prefill_refused": 0,
                      "malformed_frames": 0, "ended_without_terminator": 0}

    async def open(self, req: InboundRequest, target: Target, prepared: PreparedCall,
                   t0: float, claim: Claim | None, shape: CallShape) -> StreamResult:
        """The stream read to its commit point (its head), its tail guarded: the answer
        relayed to its end, and continued elsewhere if it is cut."""
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
                                                  detail=attempt_detail(e.message)))
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
            self._note_irregular(req, target, relay)
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
                self.stats["continuation_failed"] += 1
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
                self.stats["continued"] += 1
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
                        detail=attempt_detail(err.message), continuation=True))
                    outcome["error"] = err
                    cut_target = target
                    break
                finally:
                    if not judged:  # the client left: no verdict on the target
                        breaker.release(claim)
                    await upstream.aclose()
                    self._note_irregular(req, target, relay)
                req.attempts.append(AttemptRecord(target.key, "ok", (self.clock() - t0) * 1000,
                                                  upstream_request_id=upstream.request_id,
                                                  continuation=True))
                outcome["continued"] = True
                outcome["usage"] = splicer.client_usage or _combined_usage(relay.usage, cut)
                return
            else:
                self.stats["continuation_failed"] += 1
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
        shape = shape_of(creq)
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
                                              detail=attempt_detail(str(e)), continuation=True))
            return None
        except UpstreamError as e:
            if e.error_class is ErrorClass.CLIENT:
                # The original request was fine elsewhere: what this target refuses is the
                # prefill. Learned, logged, never shown (the client's error is the cut's).
                breaker.release(claim)
                self.no_prefill[target.key] = self.clock() + PREFILL_REFUSAL_TTL_S
                self.stats["prefill_refused"] += 1
                log.warning("%s refused a continuation (prefill): %s; not asked again",
                            target.key, attempt_detail(e.message))
                req.attempts.append(AttemptRecord(target.key, "prefill_refused", status=e.upstream_status,
                                                  continuation=True))
                return None
            err = e
            if ACTIONS[err.error_class].counts_for_breaker:
                breaker.record_failure(err.error_class.value, claim)
            else:
                breaker.release(claim)
            req.attempts.append(AttemptRecord(
                target.key, err.error_class.value, (self.clock() - t0) * 1000, status=err.upstream_status,
                detail=attempt_detail(err.message), continuation=True))
            return None
        except BaseException:
            breaker.release(claim)
            raise
        return upstream, relay, head, claim, t0

    def _note_irregular(self, req: InboundRequest, target: Target, relay: StreamRelay) -> None:
        """What the relay saw that a healthy stream does not show, once the stream is over:
        an end without the terminator (counted), frames dropped as unreadable (counted, and
        the target's health sees them: a neutral outcome, the answer was delivered)."""
        if relay.ended_without_terminator:
            self.stats["ended_without_terminator"] += 1
        if relay.malformed:
            self.stats["malformed_frames"] += relay.malformed
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


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover
