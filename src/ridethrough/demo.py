"""`ridethrough demo`: an outage, ridden through, live in the terminal.

Two simulated providers (an Anthropic-format primary, an OpenAI-format secondary) behind
one gateway on a real socket; worker threads drive steady traffic with the official SDKs
(both formats, streaming and not); the primary goes down the way Claude's API did on
2025-03-07 (503s, then timeouts) and comes back. When the fallback tiers are enabled, both
clouds then go down (stale cache for repeated questions, the local model for new ones) and
the local model stops (static answer). Exit status 0 only if no client request failed.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ridethrough.config import Config, parse_config
from ridethrough.harness import GatewayThread
from ridethrough.providers.simulated import SimulatedAnthropicProvider, SimulatedOpenAIProvider
from ridethrough.records import RequestRecord
from ridethrough.simulator import Fault, FaultKind, SimulatorServer

if TYPE_CHECKING:  # the SDKs are imported when the demo runs (Driver), not with this module
    from anthropic.types import ContentBlock, MessageParam
    from openai.types.chat import ChatCompletionMessageParam

ROUTE = "claude-sonnet-4-5"
REPEATED = [
    "How do I reset my password?", "What are your opening hours?", "How do I cancel my order?",
    "Do you ship to Canada?", "How can I change my delivery address?", "What is your refund policy?",
]


@dataclass
class Phase:
    name: str
    story: str
    seconds: float
    enter: Callable[[DemoEnv], None]
    # Who must have answered in this phase before it may end: on a loaded machine a phase's
    # few seconds can pass with every worker still waiting on the local model, and a demo
    # that skips the tier it is there to show would tell the story wrong.
    shows: tuple[str, ...] = ()


@dataclass
class Tally:
    requests: int = 0
    failures: int = 0
    served: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class DemoEnv:
    def __init__(self, gw: GatewayThread, local_tier: bool) -> None:
        self.gw = gw
        self.local_tier = local_tier
        self.primary = _simulator(gw, "anthropic-sim")
        self.secondary = _simulator(gw, "openai-sim")
        self.upstream_hits: Counter[str] = Counter()
        gw.gateway.observers.append(self._observe)

    def _observe(self, rec: RequestRecord) -> None:
        for a in rec.attempts:
            if not a.outcome.startswith("skipped:"):
                self.upstream_hits[a.target.split("/")[0]] += 1


def _simulator(gw: GatewayThread, provider: str) -> SimulatorServer:
    """The in-process simulator behind one of demo_config's providers (no base_url there)."""
    p = gw.gateway.providers[provider]
    server = p.server if isinstance(p, (SimulatedAnthropicProvider, SimulatedOpenAIProvider)) else None
    if server is None:
        raise RuntimeError(f"provider {provider!r} has no in-process simulator")
    return server


def demo_config(local_tier: bool, fast: bool) -> Config:
    targets: list[dict[str, Any]] = [
        {"provider": "anthropic-sim", "model": "claude-sonnet-4-5"},
        {"provider": "openai-sim", "model": "gpt-4.1"},
    ]
    providers: dict[str, Any] = {
        # The default timeouts, as a user would have them: the "timeouts" phase is ridden
        # through by hedging at the primary's learned p95 and the slow-call breaker, not by
        # shortened limits.
        "anthropic-sim": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0.004},
        "openai-sim": {"kind": "simulated", "format": "openai", "token_delay_s": 0.004},
    }
    route: dict[str, Any] = {"targets": targets, "deadline_s": 20}
    if local_tier:
        providers["local"] = {"kind": "local", "max_queue": 16,
                              "timeouts": {"first_token": 20, "idle": 10, "total": 30}}
        targets.append({"provider": "local", "model": "smollm2-135m-instruct"})
        route["cache"] = {"mode": "fallback-only", "ttl_s": 2 if fast else 5, "stale_ttl_s": 3600}
        route["static_answer"] = ("Our assistant is briefly unavailable because of an outage at "
                                  "our AI providers. Your question was noted; please retry soon.")
    return parse_config({
        "server": {"access_log": False},
        "providers": providers,
        "routes": {ROUTE: route},
        "resilience": {"breaker": {"cooldown_s": 1.0 if fast else 2.0, "max_cooldown_s": 2.0 if fast else 4.0,
                                   "consecutive_failures": 3}},
    })


def phases(fast: bool, local_tier: bool) -> list[Phase]:
    k = 0.35 if fast else 1.0

    def healthy(env: DemoEnv) -> None:
        env.primary.clear_faults()
        env.secondary.clear_faults()

    def down_503(env: DemoEnv) -> None:
        env.primary.set_fault(Fault(kind=FaultKind.HTTP_ERROR, status=503, rate=0.9))

    def down_timeouts(env: DemoEnv) -> None:
        env.primary.set_fault(Fault(kind=FaultKind.HANG_BEFORE_HEADERS))

    out = [
        Phase("healthy", "both providers up; the primary serves", 10 * k, healthy, ("anthropic-sim",)),
        Phase("primary: 503s", "2025-03-07: 'Service Unavailable' from the primary", 12 * k, down_503,
              ("openai-sim",)),
        Phase("primary: timeouts", "…then 'Connection Timed Out'", 10 * k, down_timeouts, ("openai-sim",)),
        Phase("primary back", "the breaker half-opens, a probe succeeds, traffic returns", 10 * k, healthy,
              ("anthropic-sim",)),
    ]
    if local_tier:
        def clouds_down(env: DemoEnv) -> None:
            env.primary.set_fault(Fault(kind=FaultKind.HTTP_ERROR, status=503))
            env.secondary.set_fault(Fault(kind=FaultKind.HTTP_ERROR, status=503))

        def local_stopped(env: DemoEnv) -> None:
            env.gw.gateway.board.force("local/smollm2-135m-instruct", "down")

        def all_back(env: DemoEnv) -> None:
            env.gw.gateway.board.force("local/smollm2-135m-instruct", None)
            healthy(env)

        out += [
            Phase("both clouds down", "repeated questions → stale cache; new ones → local model",
                  14 * k, clouds_down, ("cache (stale)", "local")),
            Phase("local model stopped", "nothing live left → the static answer", 6 * k, local_stopped,
                  ("static answer",)),
            Phase("all back", "clouds recover; live answers again", 8 * k, all_back, ("anthropic-sim",)),
        ]
    return out


class Driver:
    """Worker threads sending real SDK traffic; each outcome lands in the current tally."""

    def __init__(self, url: str, tallies: dict[str, Tally], workers: int) -> None:
        import anthropic
        import openai

        self.url = url
        self.tallies = tallies
        self.phase = ""
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counter = itertools.count()
        self.ac = anthropic.Anthropic(base_url=url, api_key="demo", max_retries=0, timeout=30)
        self.oc = openai.OpenAI(base_url=url + "/v1", api_key="demo", max_retries=0, timeout=30)
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(workers)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def _question(self, rng: random.Random) -> str:
        if rng.random() < 0.7:
            return rng.choice(REPEATED)
        return f"Question {next(self.counter)}: what should I know about topic {rng.randint(1, 10**6)}?"

    def _loop(self, worker: int) -> None:
        rng = random.Random(worker)
        for n in itertools.count():
            if self.stop.is_set():
                return
            phase = self.phase
            q = self._question(rng)
            t0 = time.monotonic()
            try:
                served, text = self._one(n % 4, q)
                ok = bool(text)
                err = "" if ok else "empty answer"
            except Exception as e:  # a client-visible failure is what the demo counts
                served, ok, err = "-", False, f"{type(e).__name__}: {str(e)[:120]}"
            ms = (time.monotonic() - t0) * 1000
            with self.lock:
                tally = self.tallies[phase]
                tally.requests += 1
                tally.served[served] += 1
                tally.latencies.append(ms)
                if not ok:
                    tally.failures += 1
                    tally.errors.append(err)
            time.sleep(0.03)

    def _one(self, mode: int, q: str) -> tuple[str, str]:
        import openai

        if mode < 2:
            amsgs: list[MessageParam] = [{"role": "user", "content": q}]
            if mode == 0:
                araw = self.ac.messages.with_raw_response.create(model=ROUTE, max_tokens=48,
                                                                 messages=amsgs)
                return _served(araw.headers), _text(araw.parse().content)
            with self.ac.messages.stream(model=ROUTE, max_tokens=48, messages=amsgs) as s:
                text = _text(s.get_final_message().content)
                return _served(s.response.headers), text
        omsgs: list[ChatCompletionMessageParam] = [{"role": "user", "content": q}]
        if mode == 2:
            oraw = self.oc.chat.completions.with_raw_response.create(model=ROUTE, max_tokens=48,
                                                                     messages=omsgs)
            return _served(oraw.headers), oraw.parse().choices[0].message.content or ""
        sraw = self.oc.chat.completions.with_raw_response.create(model=ROUTE, max_tokens=48,
                                                                 messages=omsgs, stream=True)
        chunks = sraw.parse()
        if not isinstance(chunks, openai.Stream):  # stream=True: always a Stream
            raise TypeError(f"expected a stream, got {type(chunks).__name__}")
        text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
        return _served(sraw.headers), text


def _text(content: Sequence[ContentBlock]) -> str:
    """An Anthropic answer's text: its text blocks' (a thinking block has none); "" is an
    empty answer."""
    return "".join(block.text for block in content if block.type == "text")


def _served(headers: Any) -> str:
    degraded = headers.get("x-ridethrough-degraded")
    cache = headers.get("x-ridethrough-cache")
    if cache:
        return f"cache ({cache})"
    if degraded == "static":
        return "static answer"
    target = headers.get("x-ridethrough-target", "?")
    return target.split("/")[0]


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def _view(env: DemoEnv, plan: list[Phase], current: int, tallies: dict[str, Tally], left: float) -> Group:
    ph = plan[current]
    head = Text.assemble(("ridethrough demo  ", "bold"), (f"phase {current + 1}/{len(plan)}: ", "dim"),
                         (ph.name, "bold cyan"), f" — {ph.story}  ({left:4.1f}s left)")
    traffic = Table(title="served by (this phase)", expand=False)
    traffic.add_column("who answered")
    traffic.add_column("requests", justify="right")
    t = tallies[ph.name]
    for who, n in t.served.most_common():
        traffic.add_row(who, str(n))
    breakers = Table(title="breakers", expand=False)
    for col in ("target", "state", "errors (window)"):
        breakers.add_column(col)
    for snap in env.gw.gateway.board.snapshot():
        style = {"closed": "green", "open": "red", "half_open": "yellow"}[snap["state"]]
        state = snap["state"] + (f" (forced {snap['forced']})" if snap["forced"] else "")
        breakers.add_row(snap["target"], Text(state, style=style),
                         f"{snap['window_error_rate']:.0%} of {snap['window_requests']}")
    total = sum(x.requests for x in tallies.values())
    failed = sum(x.failures for x in tallies.values())
    status = Text(f"client requests: {total}   client failures: {failed}   "
                  f"p50 {_pct(t.latencies, 0.5):.0f} ms  p99 {_pct(t.latencies, 0.99):.0f} ms",
                  style="bold red" if failed else "bold green")
    return Group(head, status, traffic, breakers)


def _summary(plan: list[Phase], tallies: dict[str, Tally], env: DemoEnv) -> Table:
    table = Table(title="ridethrough demo — summary")
    for col in ("phase", "requests", "client failures", "served by", "p50 ms", "p99 ms"):
        table.add_column(col, justify="right" if col.endswith(("ms", "requests", "failures")) else "left")
    for ph in plan:
        t = tallies[ph.name]
        served = ", ".join(f"{k} {v}" for k, v in t.served.most_common())
        table.add_row(ph.name, str(t.requests), str(t.failures), served,
                      f"{_pct(t.latencies, 0.5):.0f}", f"{_pct(t.latencies, 0.99):.0f}")
    return table


def local_tier_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    from ridethrough.providers.local_model import find_gguf

    return find_gguf() is not None


@dataclass
class DemoRun:
    plan: list[Phase]
    tallies: dict[str, Tally]

    @property
    def total(self) -> int:
        return sum(t.requests for t in self.tallies.values())

    @property
    def failed(self) -> int:
        return sum(t.failures for t in self.tallies.values())

    def missing(self) -> dict[str, list[str]]:
        """Per phase, the tiers it was meant to show that never answered in it."""
        out = {}
        for ph in self.plan:
            absent = [who for who in ph.shows if not self.tallies[ph.name].served[who]]
            if absent:
                out[ph.name] = absent
        return out


# How long a phase may run past its planned length while waiting for the tier it shows.
OVERTIME_S = 30.0


def run_demo(*, fast: bool = False, console: Console | None = None, workers: int = 4,
             local_tier: bool | None = None) -> int:
    """The CLI's demo: exit status 0 only when no client request failed."""
    run = play_demo(fast=fast, console=console, workers=workers, local_tier=local_tier)
    return 1 if run.failed else 0


def play_demo(*, fast: bool = False, console: Console | None = None, workers: int = 4,
              local_tier: bool | None = None) -> DemoRun:
    console = console or Console()
    local = local_tier_available() if local_tier is None else local_tier
    plan = phases(fast, local)
    tallies: dict[str, Tally] = defaultdict(Tally)
    with GatewayThread(demo_config(local, fast)) as gw:
        env = DemoEnv(gw, local)
        driver = Driver(gw.url, tallies, workers)
        driver.phase = plan[0].name
        driver.start()
        try:
            with Live(console=console, refresh_per_second=4, transient=False) as live:
                for i, ph in enumerate(plan):
                    ph.enter(env)
                    driver.phase = ph.name
                    start = time.monotonic()
                    end = start + ph.seconds
                    overtime_end = end + OVERTIME_S
                    while (left := end - time.monotonic()) > 0 or (
                            _unshown(ph, tallies, driver.lock) and time.monotonic() < overtime_end):
                        live.update(_view(env, plan, i, tallies, max(left, 0.0)))
                        time.sleep(0.25)
        finally:
            driver.join()
        console.print(_summary(plan, tallies, env))
        hits = ", ".join(f"{k}: {v}" for k, v in sorted(env.upstream_hits.items()))
        console.print(f"upstream attempts per provider: {hits}")
    run = DemoRun(plan, tallies)
    for name, absent in run.missing().items():
        console.print(f"[yellow]phase {name!r} never showed: {', '.join(absent)}[/]")
    if run.failed:
        console.print(f"[bold red]{run.failed} of {run.total} client requests failed[/]")
        for err in sorted({e for t in tallies.values() for e in t.errors})[:10]:
            console.print(f"  {err}")
    else:
        console.print(f"[bold green]0 of {run.total} client requests failed[/] — "
                      "the outage was ridden through.")
    return run


def _unshown(ph: Phase, tallies: dict[str, Tally], lock: threading.Lock) -> bool:
    with lock:
        served = tallies[ph.name].served
        return any(not served[who] for who in ph.shows)
