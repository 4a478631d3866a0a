"""The gateway's state: providers, routes, breakers, executor — everything on one object.

There are no mutable module globals; ``app.py`` builds one ``Gateway`` per app, so tests can
run several side by side. ``serve`` is the single entry the HTTP layer calls: plan, execute,
and (when the live targets failed) the fallback tiers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ridethrough.config import Config, RouteConfig, Timeouts
from ridethrough.config import data_dir as resolve_data_dir
from ridethrough.errors import (
    AllAttemptsFailed,
    AttemptRecord,
    ErrorClass,
    InvalidRequest,
    NoTargetCanServe,
    NotFound,
)
from ridethrough.health_hook import HealthHook
from ridethrough.keys import KeyRing
from ridethrough.providers.base import Provider
from ridethrough.providers.registry import build_provider
from ridethrough.records import RequestRecord, write_access_log
from ridethrough.routing.breaker import BreakerBoard
from ridethrough.routing.budget import RetryBudget
from ridethrough.routing.clock import Clock, Sleep, monotonic
from ridethrough.routing.executor import Executor, JsonResult
from ridethrough.routing.fallback import FallbackResult, Tiers
from ridethrough.routing.latency import LatencyModel
from ridethrough.routing.plan import CACHE, CLOUD, STATIC, Target, Tier, live_targets, plan_route
from ridethrough.routing.request import InboundRequest, request_side
from ridethrough.routing.streams import StreamResult
from ridethrough.routing.timeouts import TimeoutPolicy

log = logging.getLogger("ridethrough")

Observer = Callable[[RequestRecord], None]


def data_dir(cfg: Config) -> Path:
    return resolve_data_dir(cfg.server.data_dir)


def open_cache(cfg: Config, wall_clock: Callable[[], float]) -> Any:
    """The response cache, in SQLite under the data dir; semantic matching if installed."""
    from ridethrough.cache import ResponseCache

    semantic = None
    if any(r.semantic_cache.enabled for r in cfg.routes.values()):
        from ridethrough.cache import MiniLMEmbedder, SemanticIndex

        semantic = SemanticIndex(MiniLMEmbedder())
    path = data_dir(cfg) / "cache.sqlite3"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        log.warning("cannot create %s; the cache lives in memory only", path.parent)
        path = None  # type: ignore[assignment]
    return ResponseCache(path, clock=wall_clock, semantic=semantic)


def _merge_timeouts(base: Timeouts, override: Any) -> Timeouts:
    values = base.model_dump()
    values.update(override.model_dump(exclude_none=True))
    return Timeouts(**values)


class Gateway:
    def __init__(self, cfg: Config, *, clock: Clock = monotonic, sleep: Sleep | None = None,
                 rng: random.Random | None = None, cache: Any | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.wall_clock = wall_clock
        self.clock = clock
        self.providers: dict[str, Provider] = {
            name: build_provider(name, p) for name, p in cfg.providers.items()
        }
        self.routes: dict[str, list[Target]] = {}
        for rname, route in cfg.routes.items():
            self.routes[rname] = [self._target(t.provider, t.model, t) for t in route.targets]
        self.last_resorts: dict[str, Target] = {}
        for rname, route in cfg.routes.items():
            if route.last_resort:
                prov, model = route.last_resort.split("/", 1)
                self.last_resorts[rname] = self._target(prov, model, None)
        self.board = BreakerBoard(cfg.resilience.breaker, clock)
        r = cfg.resilience.retry
        self.budget = RetryBudget(r.budget_ratio, r.budget_min_per_s, clock)
        res = cfg.resilience
        # What each target's latency normally is: adaptive timeouts, hedge delays, slow calls.
        self.latency = LatencyModel(clock, min_samples=res.adaptive.min_samples)
        h = res.hedge
        # Full at start: hedges need a learned p95 before any fires, so this is no storm, and
        # a provider that freezes soon after start-up still has its in-flight calls hedged.
        self.hedge_budget = RetryBudget(h.budget_ratio, h.budget_min_per_s, clock, cap=h.budget_cap,
                                        initial=h.budget_cap)
        self.executor = Executor(
            self.board, self.budget, r, clock, sleep or asyncio.sleep, rng,
            policy=TimeoutPolicy(self.latency, res.adaptive, h), hedge_budget=self.hedge_budget,
            slow_call_factor=res.breaker.slow_call_factor, max_continuations=res.max_continuations)
        self.executor.streams.continuation_targets = self._continuation_targets
        self.executor.streams.continuable_routes = {
            name for name, targets in self.routes.items() if any(t.caps.prefill for t in targets)}
        if cache is None and any(r.cache.mode != "off" for r in cfg.routes.values()):
            cache = open_cache(cfg, wall_clock)
        self.tiers = Tiers(cache, wall_clock)
        self.keys = KeyRing(cfg.server.gateway_keys)
        self.admin_keys = KeyRing(cfg.server.admin_keys)
        self.observers: list[Observer] = [write_access_log] if cfg.server.access_log else []
        self.ready = False
        self.draining = False
        self.inflight_streams = 0
        # Extensions (health monitor, cache, …) hook into the lifecycle here.
        self.on_start: list[Callable[[], Awaitable[None]]] = []
        self.on_close: list[Callable[[], Awaitable[None]]] = []
        self.health: HealthHook | None = None  # set by health.install()

    def _target(self, provider: str, model: str, tcfg: Any) -> Target:
        p = self.providers[provider]
        pcfg = self.cfg.providers[provider]
        timeouts = _merge_timeouts(pcfg.timeouts, tcfg.timeouts) if tcfg is not None else pcfg.timeouts
        caps = p.capabilities(model)
        if tcfg is not None:
            caps = caps.merged(tcfg.capabilities)
        return Target(p, model, timeouts, caps)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        for p in self.providers.values():
            await p.start()
            if p.unavailable_reason:
                log.warning("provider %s is unavailable: %s", p.name, p.unavailable_reason)
        self.tiers.warm()
        for hook in self.on_start:
            await hook()
        self.ready = True

    async def close(self) -> None:
        self.ready = False
        self.tiers.flush_now()
        await asyncio.get_running_loop().run_in_executor(None, self.tiers.close)
        for hook in reversed(self.on_close):
            try:
                await hook()
            except Exception:
                log.exception("closing an extension")
        for p in self.providers.values():
            try:
                await p.close()
            except Exception:  # closing must go on for the others
                log.exception("closing provider %s", p.name)

    # -- routing ---------------------------------------------------------------------------

    def route(self, name: str) -> tuple[RouteConfig, list[Target]]:
        try:
            return self.cfg.routes[name], self.routes[name]
        except KeyError:
            known = ", ".join(sorted(self.routes)) or "none"
            raise NotFound(f"model {name!r} is not a route on this gateway (routes: {known})",
                           param="model") from None

    async def serve(self, req: InboundRequest) -> JsonResult | StreamResult | FallbackResult:
        """The route's plan, tier by tier (routing/plan.py ``Tier`` says why in this order)."""
        cached = await self.tiers.before_live(req)
        if cached is not None:
            return cached
        with request_side(req.format, req.body):  # translation checks read the whole request
            route = plan_route(self.routes[req.route_name], req.format, req.body, req.features,
                               req.stream, self.board, self.last_resorts.get(req.route_name))
        self.budget.on_request()
        self.hedge_budget.on_request()
        if route.nothing_can_serve:
            req.attempts.extend(route.skipped)
            raise NoTargetCanServe(
                "no target of route " + repr(req.route_name) + " can serve this request: "
                + "; ".join(f"{a.target} {a.outcome.removeprefix('skipped:')}" for a in route.skipped),
                req.attempts)
        for tier in route.tiers:
            result = await self._serve_tier(req, tier)
            if result is not None:
                return result
        raise AllAttemptsFailed("every target of the route failed" if req.attempts
                                else "no target of the route is available", req.attempts)

    async def _serve_tier(self, req: InboundRequest,
                          tier: Tier) -> JsonResult | StreamResult | FallbackResult | None:
        """This tier's answer, or None to go on to the next."""
        if tier.name == CACHE:
            return await self.tiers.cached_after_failure(req)
        if tier.name == STATIC:
            return self.tiers.static(req)
        assert tier.plan is not None
        if not tier.plan.candidates:
            req.attempts.extend(tier.plan.skipped)
            return None
        try:
            result = await self.executor.run(req, tier.plan)
        except AllAttemptsFailed:
            made = [a for a in req.attempts if not a.outcome.startswith("skipped:")]
            if tier.name == CLOUD and made and all(a.outcome == ErrorClass.TOO_LARGE.value for a in made):
                # Not an outage: the prompt is too long everywhere. Say so, as a 400.
                raise InvalidRequest(
                    "the request is too large for every target of route "
                    f"{req.route_name!r} ({made[-1].detail})", param="messages") from None
            return None
        return self._remember(req, result) if tier.remember else result

    def _continuation_targets(self, req: InboundRequest) -> list[Target]:
        """The route's targets that could serve this request now, in the order ``serve``
        tries them; never a breaker-open one forced as a last resort."""
        route = plan_route(self.routes[req.route_name], req.format, req.body, req.features,
                           True, self.board)
        if route.forced:
            return []
        return live_targets(route)

    def _remember(self, req: InboundRequest, result: JsonResult | StreamResult) -> JsonResult | StreamResult:
        if isinstance(result, JsonResult):
            self.tiers.remember(req, result.obj)
        else:
            relay = result.relay
            # A continued answer (spliced from two targets) is delivered, never cached.
            result.on_end = lambda: self.tiers.remember(
                req, relay.accumulated if result.outcome.get("ok")
                and not result.outcome.get("continued") else None)
        return result

    # -- records ---------------------------------------------------------------------------

    def emit(self, record: RequestRecord) -> None:
        for obs in self.observers:
            try:
                obs(record)
            except Exception:  # an observer must never break a request
                log.exception("observer failed")

    def latency_view(self) -> dict[str, Any]:
        """What this process learned of each target's latency, the timeouts it now applies,
        and its hedges (for /metrics, the status page and ``ridethrough status``)."""
        rows = self.latency.snapshot()
        policy = self.executor.policy
        targets = {t.key: t for ts in self.routes.values() for t in ts}
        for row in rows:
            t = targets.get(row["target"])
            if t is None:
                continue
            row["timeout_s"] = round(policy.for_phase(t.key, t.timeouts, row["phase"]), 3)
        return {"targets": rows, "hedges": dict(self.executor.hedge_stats),
                "streams": dict(self.executor.streams.stats),
                "hedge_budget_tokens": round(self.hedge_budget.tokens, 2),
                "min_samples": self.latency.min_samples, "sketches": self.latency.export()}

    def attempts_summary(self, attempts: list[AttemptRecord]) -> tuple[int, str]:
        made = sum(1 for a in attempts if not a.outcome.startswith("skipped:"))
        reasons = "; ".join(f"{a.target}={a.outcome.removeprefix('skipped:')}"
                            for a in attempts if a.outcome != "ok")
        return made, reasons
