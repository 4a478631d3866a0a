"""The fault matrix: a provider outage of every shape, and zero failed client requests.

Every simulator fault × {Anthropic SDK, OpenAI SDK} × {JSON, streaming} × {Anthropic-format
primary with an OpenAI-format secondary, the reverse}. Each case asserts what the client
saw — a complete, correct answer from the secondary (``x-ridethrough-target``), the primary's
answer when the fault is mere slowness, or, when the fault strikes after the stream's commit
point, a well-formed in-band error that the SDK raises with the error's type (these routes' Claude
models take no prefill, so nothing can continue the answer: tests/e2e/test_stream_continuation.py
has the routes that can) — and how many
requests each simulator received. The SDKs run with ``max_retries=0`` so no client-side retry
can hide a failure the gateway let through.

Beyond single faults: intermittent errors at rate p (every request succeeds; both targets
share the traffic) and an error rate ramping from 0 to 1 (the breaker takes the primary out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import anthropic
import openai
import pytest

from ridethrough.harness import GatewayThread
from ridethrough.routing.clock import FakeClock
from ridethrough.simulator import Fault, FaultKind, SimulatorServer

SDK_ROUTES = [("anthropic", "claude-first"), ("anthropic", "gpt-first"),
              ("openai", "claude-first"), ("openai", "gpt-first")]
MODES = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
COMBOS = pytest.mark.parametrize("sdk,route", SDK_ROUTES, ids=[f"{s}-sdk-{r}" for s, r in SDK_ROUTES])

FAILOVER = "failover"   # the secondary serves a complete answer
PRIMARY = "primary"     # the primary serves a complete answer (the fault is only slowness)


@dataclass(frozen=True)
class Case:
    make: Callable[[], Fault]
    json: str                 # FAILOVER, PRIMARY, or the in-band error type the client gets
    stream: str
    primary_requests: int     # requests the primary's simulator receives for one client request
    stream_primary_requests: int | None = None  # when streaming differs from JSON

    def expected(self, stream: bool) -> str:
        return self.stream if stream else self.json

    def primary_count(self, stream: bool) -> int:
        if stream and self.stream_primary_requests is not None:
            return self.stream_primary_requests
        return self.primary_requests


# 5xx and overload get one jittered same-target retry before failing over (2 requests);
# 429 fails over at once; a fault after the first token is past the commit point when
# streaming (in-band error, no failover) but just a bad answer for JSON (failover).
CASES: dict[str, Case] = {
    "http_500": Case(lambda: Fault(FaultKind.HTTP_ERROR, status=500), FAILOVER, FAILOVER, 2),
    "http_503": Case(lambda: Fault(FaultKind.HTTP_ERROR, status=503), FAILOVER, FAILOVER, 2),
    "http_529": Case(lambda: Fault(FaultKind.HTTP_ERROR, status=529), FAILOVER, FAILOVER, 2),
    "http_429_retry_after": Case(lambda: Fault(FaultKind.HTTP_ERROR, status=429, retry_after=5),
                                 FAILOVER, FAILOVER, 1),
    "refuse": Case(lambda: Fault(FaultKind.REFUSE), FAILOVER, FAILOVER, 0),
    # The port completes no handshake: the connect timeout, then the secondary.
    "no_accept": Case(lambda: Fault(FaultKind.NO_ACCEPT), FAILOVER, FAILOVER, 0),
    "reset": Case(lambda: Fault(FaultKind.RESET), FAILOVER, FAILOVER, 1),
    "hang_before_headers": Case(lambda: Fault(FaultKind.HANG_BEFORE_HEADERS), FAILOVER, FAILOVER, 1),
    "hang_after_headers": Case(lambda: Fault(FaultKind.HANG_AFTER_HEADERS), FAILOVER, FAILOVER, 1),
    "stall_mid_stream": Case(lambda: Fault(FaultKind.STALL_MID_STREAM, after_tokens=8),
                             FAILOVER, "api_error", 1),
    "overloaded_before_first_token": Case(
        lambda: Fault(FaultKind.INBAND_ERROR_BEFORE_FIRST_TOKEN, error_type="overloaded_error"),
        FAILOVER, FAILOVER, 2),
    "overloaded_after_first_token": Case(
        lambda: Fault(FaultKind.INBAND_ERROR_AFTER_FIRST_TOKEN, error_type="overloaded_error",
                      after_tokens=8),
        FAILOVER, "overloaded_error", 2, stream_primary_requests=1),
    "truncated": Case(lambda: Fault(FaultKind.TRUNCATED, after_tokens=8), FAILOVER, "api_error", 1),
    "malformed_json": Case(lambda: Fault(FaultKind.MALFORMED_JSON, after_tokens=8),
                           FAILOVER, "api_error", 1),
    # The whole answer, closed without [DONE] / message_stop: complete by meaning, so the
    # primary's answer, ended properly by the gateway (a JSON answer has nothing to lose).
    "no_terminator": Case(lambda: Fault(FaultKind.NO_TERMINATOR), PRIMARY, PRIMARY, 1),
    # One unparseable frame mid-answer: dropped, and the answer goes on.
    "malformed_frame": Case(lambda: Fault(FaultKind.MALFORMED_FRAME, after_tokens=8),
                            PRIMARY, PRIMARY, 1),
    # 5 ms per token, where the healthy simulators send them back to back: slower, yet inside
    # every timeout, so it is served by the primary, not failed over.
    "slow_tokens": Case(lambda: Fault(FaultKind.SLOW_TOKENS, token_delay_s=0.005), PRIMARY, PRIMARY, 1),
}


def test_the_matrix_covers_every_simulator_fault():
    covered = {CASES[name].make().kind for name in CASES}
    assert covered == set(FaultKind)


# Breakers effectively off: each case must meet its fault, not a breaker opened (or a 429
# hold-down set) by the cases before it (breakers have their own tests).
NO_BREAKER = {"breaker": {"consecutive_failures": 1000, "min_requests": 1000,
                          "slow_call_min": 1000, "rate_limit_hold_s": 0,
                          "rate_limit_max_hold_s": 0}}


@pytest.fixture(scope="module")
def matrix_gw(resilience_kit):
    with GatewayThread(resilience_kit.config(resilience=NO_BREAKER)) as gt:
        yield gt


@pytest.fixture(scope="module")
def paced_gw(resilience_kit):
    """Primaries sending a token every 10 ms: the first token reaches the gateway well before
    a fault set "after 8 tokens", so that fault is met after the commit point, every time."""
    cfg = resilience_kit.config(resilience=NO_BREAKER, primary_token_delay_s=0.01)
    with GatewayThread(cfg) as gt:
        yield gt


@pytest.fixture()
def gt(matrix_gw, resilience_kit):
    resilience_kit.reset_sims(matrix_gw)
    yield matrix_gw
    resilience_kit.reset_sims(matrix_gw)


@pytest.mark.parametrize("fault_name", list(CASES))
@MODES
@COMBOS
def test_single_fault(request, resilience_kit, sdk, route, stream, fault_name):
    kit = resilience_kit
    case = CASES[fault_name]
    expected = case.expected(stream)
    gt = request.getfixturevalue("paced_gw" if expected not in (FAILOVER, PRIMARY) else "matrix_gw")
    kit.reset_sims(gt)
    primary, secondary = kit.ROUTES[route]
    p_sim, s_sim = kit.sim(gt, primary), kit.sim(gt, secondary)
    p_sim.set_fault(case.make())
    prompt = f"matrix {fault_name} via {sdk} on {route} {'stream' if stream else 'json'}"

    seen = kit.ask(sdk, gt.url, route, prompt, stream=stream)

    if expected == FAILOVER:
        assert kit.answered_by(seen, secondary, prompt), seen
        assert s_sim.stats.total == 1
    elif expected == PRIMARY:
        assert kit.answered_by(seen, primary, prompt), seen
        assert s_sim.stats.total == 0
    else:
        # Past the commit point: the client already has the primary's first tokens, so the
        # failure arrives in-band, in the client's own format, and the SDK raises it.
        assert seen.target == kit.target_key(primary), seen
        full = f"[{primary}] Here is a short answer about: {prompt}"
        assert seen.text and (full.startswith(seen.text) or seen.text.startswith(full)), seen
        assert not seen.finished
        assert seen.in_band, seen
        assert seen.error_type == expected, seen
        if sdk == "anthropic":
            assert isinstance(seen.error, anthropic.APIStatusError)
        else:
            assert isinstance(seen.error, openai.APIError)
            assert not isinstance(seen.error, openai.APIStatusError)
        assert s_sim.stats.total == 0
    assert p_sim.stats.total == case.primary_count(stream)


@MODES
@COMBOS
def test_intermittent_errors_every_request_succeeds(gt, resilience_kit, sdk, route, stream):
    """503 at rate p on the primary: every client request is answered; the primary serves
    those it can (after at most one same-target retry), the secondary the rest."""
    kit = resilience_kit
    primary, secondary = kit.ROUTES[route]
    p_sim, s_sim = kit.sim(gt, primary), kit.sim(gt, secondary)
    p = 0.5  # the simulator's seeded draws make this 12-request run fail over a few times
    p_sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503, rate=p))
    n = 12
    served = {primary: 0, secondary: 0}
    attempts_reported = 0
    for i in range(n):
        prompt = f"intermittent {p} {sdk} {route} {stream} #{i}"
        seen = kit.ask(sdk, gt.url, route, prompt, stream=stream)
        by = next((name for name in served if kit.answered_by(seen, name, prompt)), None)
        assert by is not None, seen
        served[by] += 1
        attempts_reported += int(seen.headers["x-ridethrough-attempts"])
    assert served[primary] + served[secondary] == n
    assert served[primary] > 0 and served[secondary] > 0, served
    assert p_sim.stats.by_outcome.get("ok", 0) == served[primary]
    assert s_sim.stats.total == served[secondary]
    # Every failover spent the retry first: two failed attempts at the primary each.
    assert p_sim.stats.by_outcome.get("http_error", 0) >= 2 * served[secondary]
    # The attempts the gateway reports are exactly the requests the simulators received.
    assert attempts_reported == p_sim.stats.total + s_sim.stats.total


@MODES
@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_error_rate_ramping_up(resilience_kit, start_gateway, sdk, stream):
    """The 2024-12-11 shape: errors ramp from 0 to 100 % (here over 100 s of the simulator's
    own fake clock). Every client request is answered; early ones by the primary, late ones
    by the secondary, and once the primary is clearly failing its breaker stops sending it
    traffic at all."""
    kit = resilience_kit
    sim_clock = FakeClock(0.0)
    ramp_sim = SimulatorServer("ramping", clock=sim_clock, token_delay_s=0.0)
    ramp_sim.start_in_thread()
    try:
        cfg = kit.config(
            providers={"a_primary": {"base_url": ramp_sim.base_url}},
            resilience={"breaker": {"consecutive_failures": 5, "min_requests": 8,
                                    "error_rate": 0.5, "cooldown_s": 600}},
        )
        gt = start_gateway(cfg)
        primary, secondary = kit.ROUTES["claude-first"]
        s_sim = kit.sim(gt, secondary)
        ramp_sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503, rate=0.0, ramp_to=1.0,
                                 ramp_seconds=100))
        per_step: list[tuple[int, int, int]] = []  # (served by primary, by secondary, sent to primary)
        for step in range(11):
            sim_clock.now = step * 10.0
            before = ramp_sim.stats.total
            by_p = by_s = 0
            for i in range(4):
                prompt = f"ramp {sdk} {stream} step {step} #{i}"
                seen = kit.ask(sdk, gt.url, "claude-first", prompt, stream=stream)
                # The external simulator is named "ramping", so its answers say so.
                if seen.error is None and seen.target == kit.target_key(primary) and seen.finished \
                        and seen.text.startswith(f"[ramping] Here is a short answer about: {prompt}"):
                    by_p += 1
                else:
                    assert kit.answered_by(seen, secondary, prompt), seen
                    by_s += 1
            per_step.append((by_p, by_s, ramp_sim.stats.total - before))
        assert per_step[0] == (4, 0, 4)          # rate 0: all on the primary
        assert per_step[-1][:2] == (0, 4)        # rate 1: all on the secondary
        assert per_step[-1][2] == 0              # ...and the primary's breaker keeps it out
        assert sum(s for _, s, _ in per_step) == s_sim.stats.total
        assert gt.gateway.board.get(kit.target_key(primary)).opened_count >= 1
    finally:
        ramp_sim.stop_thread()
