"""Planning: which targets may serve a request, in which order, and why the others may not."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ridethrough.config import BreakerConfig, Timeouts
from ridethrough.protocols.features import features_of
from ridethrough.providers.base import ResolvedCapabilities
from ridethrough.routing.breaker import BreakerBoard
from ridethrough.routing.clock import FakeClock
from ridethrough.routing.plan import Target, plan_targets


@dataclass
class StubProvider:
    name: str
    format: str = "anthropic"
    unavailable_reason: str | None = None
    kind: str = "stub"
    counts_tokens: bool = False

    def fits(self, messages: object, max_output: int) -> bool | None:
        return None  # no tokenizer: the estimate decides


def target(name: str, fmt: str = "anthropic", *, unavailable: str | None = None,
           **caps) -> Target:
    return Target(StubProvider(name, fmt, unavailable), "m", Timeouts(),
                  ResolvedCapabilities(**caps))


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def board(clock) -> BreakerBoard:
    return BreakerBoard(BreakerConfig(consecutive_failures=1, cooldown_s=10), clock)


TEXT = {"model": "r", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
TOOLS = {**TEXT, "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}
IMAGE = {**TEXT, "messages": [{"role": "user", "content": [
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
    {"type": "text", "text": "what is this"}]}]}


def plan(targets, body=TEXT, *, board, stream=False, fmt="anthropic", last_resort=None):
    return plan_targets(targets, fmt, body, features_of(fmt, body), stream, board, last_resort)


def outcomes(p):
    return [(a.target, a.outcome) for a in p.skipped]


def open_breaker(board: BreakerBoard, t: Target) -> None:
    b = board.get(t.key)
    b.acquire()
    b.record_failure("server_error")


def test_healthy_targets_keep_their_order(board):
    ts = [target("a"), target("b", "openai"), target("c")]
    p = plan(ts, board=board)
    assert [t.key for t in p.candidates] == ["a/m", "b/m", "c/m"]
    assert p.skipped == [] and not p.forced


@pytest.mark.parametrize("body,stream,caps,reason", [
    (TOOLS, False, {"tools": False}, "capability:tools"),
    (IMAGE, False, {"images": False}, "capability:images"),
    (TEXT, True, {"streaming": False}, "capability:streaming"),
    (TEXT, False, {"context_window": 50}, "capability:context_window(50)"),
])
def test_a_target_that_cannot_carry_the_request_is_skipped(board, body, stream, caps, reason):
    p = plan([target("small", **caps), target("big")], body, board=board, stream=stream)
    assert [t.key for t in p.candidates] == ["big/m"]
    assert outcomes(p) == [("small/m", f"skipped:{reason}")]
    assert not p.capability_only


def test_json_mode_needs_a_target_with_json_mode(board):
    body = {"model": "r", "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"}}
    p = plan([target("nojson", "openai", json_mode=False), target("json", "openai")], body,
             board=board, fmt="openai")
    assert outcomes(p) == [("nojson/m", "skipped:capability:json_mode")]


def test_when_no_target_can_carry_it_the_plan_says_so(board):
    p = plan([target("a", tools=False), target("b", tools=False)], TOOLS, board=board)
    assert p.candidates == [] and p.capability_only


def test_an_untranslatable_request_skips_cross_format_targets(board):
    body = {**TEXT, "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "x"}]}
    p = plan([target("oai", "openai"), target("claude")], body, board=board)
    assert [t.key for t in p.candidates] == ["claude/m"]
    assert outcomes(p)[0][1].startswith("skipped:untranslatable:mcp_servers")


def test_a_provider_without_its_key_is_skipped(board):
    p = plan([target("nokey", unavailable="X_API_KEY is not set"), target("b")], board=board)
    assert outcomes(p) == [("nokey/m", "skipped:unavailable:X_API_KEY is not set")]
    assert not p.capability_only


def test_an_open_breaker_is_skipped_while_others_remain(board):
    a, b = target("a"), target("b")
    open_breaker(board, a)
    p = plan([a, b], board=board)
    assert [t.key for t in p.candidates] == ["b/m"]
    assert outcomes(p) == [("a/m", "skipped:breaker_open")]
    assert not p.forced


def test_an_open_breaker_due_for_its_probe_is_planned(board, clock):
    a, b = target("a"), target("b")
    open_breaker(board, a)
    clock.advance(10)
    assert [t.key for t in plan([a, b], board=board).candidates] == ["a/m", "b/m"]


def test_every_breaker_open_picks_the_soonest_recovering(board, clock):
    a, b, c = target("a"), target("b"), target("c")
    open_breaker(board, a)
    clock.advance(3)
    open_breaker(board, b)
    clock.advance(3)
    open_breaker(board, c)
    p = plan([c, b, a], board=board)            # route order does not matter: a is due first
    assert [t.key for t in p.candidates] == ["a/m"] and p.forced
    assert len(p.skipped) == 3
    clock.advance(4)                            # a's probe fails: its cool-down doubles to 20 s
    open_breaker(board, a)
    p = plan([c, b, a], board=board)
    assert [t.key for t in p.candidates] == ["b/m"] and p.forced


def test_every_breaker_open_goes_to_the_last_resort_when_there_is_one(board):
    a, b, last = target("a"), target("b"), target("local", "openai")
    open_breaker(board, a)
    open_breaker(board, b)
    p = plan([a, b], board=board, last_resort=last)
    assert p.candidates == [last] and p.forced


def test_a_drained_target_is_skipped_and_never_forced(board):
    a, b = target("a"), target("b")
    board.force(a.key, "down")
    p = plan([a, b], board=board)
    assert [t.key for t in p.candidates] == ["b/m"]
    assert outcomes(p) == [("a/m", "skipped:drained")]
    # Drained is the operator's word: even alone, it gets no traffic.
    p = plan([a], board=board)
    assert p.candidates == [] and not p.forced and not p.capability_only


def test_a_held_down_target_is_skipped_and_never_forced(board):
    a = target("a")
    board.get(a.key).hold_down(600, "quota_exhausted")
    p = plan([a], board=board)
    assert p.candidates == [] and not p.forced
    assert outcomes(p) == [("a/m", "skipped:quota_exhausted")]


def test_forced_up_target_is_planned_despite_its_breaker(board):
    a, b = target("a"), target("b")
    open_breaker(board, a)
    board.force(a.key, "up")
    assert [t.key for t in plan([a, b], board=board).candidates] == ["a/m", "b/m"]


@pytest.mark.parametrize("spoil,body", [
    (lambda board, t: board.force(t.key, "down"), TEXT),
    (lambda board, t: board.get(t.key).hold_down(600, "auth"), TEXT),
    (None, TOOLS),                                  # the last resort has no tools
], ids=["drained", "held-down", "cannot-carry"])
def test_an_unusable_last_resort_is_passed_over_for_the_soonest_recovering(board, spoil, body):
    a, b = target("a"), target("b")
    last = target("local", "openai", tools=False)
    open_breaker(board, a)
    open_breaker(board, b)
    if spoil is not None:
        spoil(board, last)
    p = plan([a, b], body, board=board, last_resort=last)
    assert [t.key for t in p.candidates] == ["a/m"] and p.forced


def test_a_last_resort_without_its_key_is_passed_over(board):
    a = target("a")
    open_breaker(board, a)
    p = plan([a], board=board, last_resort=target("nokey", unavailable="K is not set"))
    assert [t.key for t in p.candidates] == ["a/m"]
