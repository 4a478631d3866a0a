"""Planning: which targets of a route may serve this request, in which order, and why not —
and the tiers a request falls through when they all fail (``plan_route``).

A target is skipped when it cannot carry the request (capability, untranslatable feature),
when its provider is unavailable (no key), or when its breaker says no. Capability skips are
the client's concern (a 4xx if *no* target can serve); breaker skips are ours: when every
target is open the request goes to the one due to recover soonest, or the route's last
resort, instead of failing at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ridethrough.config import Timeouts
from ridethrough.errors import AttemptRecord
from ridethrough.protocols.features import RequestFeatures
from ridethrough.providers.base import Provider, ResolvedCapabilities
from ridethrough.routing.breaker import BreakerBoard


@dataclass(slots=True)
class Target:
    provider: Provider
    model: str
    timeouts: Timeouts
    caps: ResolvedCapabilities
    key: str = ""

    def __post_init__(self) -> None:
        self.key = f"{self.provider.name}/{self.model}"

    @property
    def format(self) -> str:
        return self.provider.format


@dataclass(slots=True)
class Plan:
    candidates: list[Target] = field(default_factory=list)
    skipped: list[AttemptRecord] = field(default_factory=list)
    # Targets that are fine but whose breaker is open: used when nothing else is left.
    forced: bool = False
    capability_only: bool = False  # every skip was a capability/translation skip

    def split(self, degraded: Callable[[Target], bool]) -> tuple[Plan, Plan]:
        """(first tier, degraded tier): the skip records travel with the first."""
        first = Plan([t for t in self.candidates if not degraded(t)], self.skipped, self.forced)
        rest = Plan([t for t in self.candidates if degraded(t)], [], self.forced)
        return first, rest


def capability_gap(caps: ResolvedCapabilities, feat: RequestFeatures, stream: bool,
                   fits: bool | None = None) -> str | None:
    """Why a target cannot carry this request, or None. ``fits`` is an exact context check
    by the target's own tokenizer, when it has one; else the conservative estimate decides."""
    if feat.tools and not caps.tools:
        return "capability:tools"
    if feat.images and not caps.images:
        return "capability:images"
    if stream and not caps.streaming:
        return "capability:streaming"
    if feat.json_mode and not caps.json_mode:
        return "capability:json_mode"
    too_big = (not fits) if fits is not None else (
        feat.estimated_input_tokens + min(feat.max_output_tokens, 256) > caps.context_window)
    if too_big:
        return f"capability:context_window({caps.context_window})"
    return None


def translation_gap(client_fmt: str, target: Target, body: dict[str, Any]) -> str | None:
    if target.format == client_fmt:
        return None
    from ridethrough.protocols import translate

    if client_fmt == "anthropic":
        reason = translate.check_anthropic_to_openai(body)
    else:
        reason = translate.check_openai_to_anthropic(body)
    return f"untranslatable:{reason}" if reason else None


def exact_fit(target: Target, client_fmt: str, body: dict[str, Any], feat: RequestFeatures) -> bool | None:
    """For a target that can count its own tokens (the local model, via llama.cpp's
    tokenizer), whether the prompt fits its window; None where only an estimate exists."""
    if not target.provider.counts_tokens:
        return None
    try:
        messages = body.get("messages") or []
        if client_fmt == "anthropic":
            from ridethrough.protocols import translate

            messages = translate.anthropic_to_openai_request(body, target.model).body["messages"]
        return target.provider.fits(messages, min(feat.max_output_tokens or 256, 256))
    except Exception:  # no tokenizer yet, or an odd request: the estimate decides
        return None


def plan_targets(
    targets: list[Target], client_fmt: str, body: dict[str, Any], feat: RequestFeatures, stream: bool,
    board: BreakerBoard, last_resort: Target | None = None,
) -> Plan:
    plan = Plan()
    blocked: list[Target] = []
    capability_skips = 0
    for t in targets:
        reason = t.provider.unavailable_reason and f"unavailable:{t.provider.unavailable_reason}"
        if not reason:
            reason = translation_gap(client_fmt, t, body) or capability_gap(t.caps, feat, stream)
            if reason and reason.startswith("capability:context_window"):
                # The estimate over-counts; a target with its own tokenizer gets a second,
                # exact opinion (only then: tokenizing on every request would cost the loop).
                if exact_fit(t, client_fmt, body, feat):
                    reason = None
            if reason:
                capability_skips += 1
        if not reason:
            why = board.get(t.key).availability()
            if why is not None:
                if why.startswith("breaker"):
                    blocked.append(t)
                reason = why
        if reason:
            plan.skipped.append(AttemptRecord(t.key, f"skipped:{reason}"))
        else:
            plan.candidates.append(t)
    if not plan.candidates and blocked:
        chosen = min(blocked, key=lambda t: board.get(t.key).recovers_at())
        if last_resort is not None and _usable_last_resort(last_resort, client_fmt, body, feat,
                                                           stream, board):
            chosen = last_resort
        plan.candidates.append(chosen)
        plan.forced = True
    plan.capability_only = capability_skips == len(targets) and bool(targets)
    return plan


def _usable_last_resort(t: Target, client_fmt: str, body: dict[str, Any], feat: RequestFeatures,
                        stream: bool, board: BreakerBoard) -> bool:
    """The last resort skips only its breaker: a drained or held-down one, one without its key,
    or one that cannot carry the request is no resort at all."""
    if t.provider.unavailable_reason:
        return False
    if capability_gap(t.caps, feat, stream) or translation_gap(client_fmt, t, body):
        return False
    why = board.get(t.key).availability()
    return why is None or why.startswith("breaker")


# -- the tiers of a route ------------------------------------------------------------------------

CLOUD, CACHE, LOCAL, STATIC = "cloud", "cache", "local", "static"


@dataclass(slots=True)
class Tier:
    """One step of the ladder a request goes down until something answers.

    The order is the product's promise: the cloud targets (same model elsewhere, then other
    models); then a cached answer the clouds gave before — exact (stale allowed), then
    semantic — because yesterday's real answer to a repeated question beats a small local
    model's; then the local model, for new questions; then the route's static answer, a
    clear degraded reply instead of an error. ``plan``: the targets of a live tier.
    ``remember``: its answers go to the cache (the local model's only where it is the route's
    own answer: behind clouds it is a stopgap, never to be replayed as if from them).
    """

    name: str
    plan: Plan | None = None
    remember: bool = False


@dataclass(slots=True)
class RoutePlan:
    tiers: list[Tier]
    skipped: list[AttemptRecord]
    nothing_can_serve: bool  # no target can carry the request at all: the caller's 4xx
    forced: bool             # every breaker was open: the one due soonest (or the last resort)


def _is_local(t: Target) -> bool:
    return t.provider.kind == "local"


def plan_route(
    targets: list[Target], client_fmt: str, body: dict[str, Any], feat: RequestFeatures, stream: bool,
    board: BreakerBoard, last_resort: Target | None = None,
) -> RoutePlan:
    """The route's targets planned (``plan_targets``), split into the ladder of tiers."""
    plan = plan_targets(targets, client_fmt, body, feat, stream, board, last_resort)
    cloud, local = plan.split(_is_local)
    only_local = bool(targets) and all(_is_local(t) for t in targets)
    return RoutePlan(
        [Tier(CLOUD, cloud, remember=True), Tier(CACHE), Tier(LOCAL, local, remember=only_local),
         Tier(STATIC)],
        plan.skipped, plan.capability_only and not plan.candidates, plan.forced)


def live_targets(plan: RoutePlan) -> list[Target]:
    """Every target of the live tiers, in the order they are tried."""
    return [t for tier in plan.tiers if tier.plan is not None for t in tier.plan.candidates]
