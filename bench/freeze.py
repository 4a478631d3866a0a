"""The freeze benchmark: riding through a *timeout-shaped* outage, seen through the SDKs.

A provider that answers 529 is easy to route around: the error says so in a millisecond. A
provider that freezes says nothing, and a client waits for whichever timeout comes first.
Per freeze shape and mode (JSON or stream), a fresh gateway with two targets (primary and
secondary, both on the freeze mock, same wire format as the SDK) takes a closed-loop load
of FREEZE_CONCURRENCY clients through the official Python SDKs — ``anthropic`` and
``openai`` at once, half the clients each, each SDK on its own route — while the primary
freezes at ONSET and recovers at RECOVER; the load stops at END (default 10 / 40 / 50 s).

The SDKs keep their **default timeouts** (no ``timeout=`` passed) and run with
``max_retries=0``, so a failure the gateway lets through is counted, not hidden by a retry.
ridethrough runs with its **default timeouts** (no ``timeouts:`` in its config: adaptive
per-attempt timeouts, hedging and the slow-call breaker as shipped). LiteLLM and Portkey, when
installed, run with the harness's own configs (bench/gateways.py: a 5 s per-attempt timeout,
retries and fallbacks): the same as in the outage section.

Freeze shapes (bench/mock_upstream.py; the moment a freeze starts, every answer in progress
on the primary stops where it is, as when a provider's process stops):

  no_accept             the port stops accepting: connect() times out (SYNs are dropped)
  hang_before_headers   requests are read, nothing is sent
  hang_after_headers    JSON: status and headers, no body; stream: the head, no token
  stall_mid_stream      JSON: half the body; stream: 3 tokens; then nothing

A stream that fails after its first token reached the client is counted apart, as "cut after
commit": no gateway can fail such a stream over without the client seeing it (ridethrough
ends it with an in-band error event). Per SDK it reports failures by kind; the time to answer
(until the SDK call returned: the whole JSON answer, or the stream read to its end) of calls
that *started* before onset, in the first seconds after it, in the rest of the freeze and
after recovery; the calls in flight at onset; the extra upstream requests hedging caused while
everything was healthy (upstream requests counted by the mock ÷ client calls, before onset);
and the requests that still reached the frozen primary.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import client
import gateways as G
import outage

SHAPES = ("no_accept", "hang_before_headers", "hang_after_headers", "stall_mid_stream")
MODES = ("json", "stream")
SDKS = ("anthropic", "openai")  # each SDK speaks its own format to its own route
FREEZE_CONCURRENCY = 16
# The freeze mock's pacing: a stream's head at once, its first token 20 ms later, then 15
# more 4 ms apart (~80 ms in all); a JSON answer held back as long. Realistic in shape, short
# enough that the load is thousands of calls, long enough that a freeze catches some in flight.
# Each answer's first-token / JSON delay × a lognormal factor (median 1, sigma 0.3: p99 ≈ 2×):
# latencies vary, as real ones do, so a learned p95 means something and the closed-loop
# clients do not fall into step (with identical answers they do, and a freeze then catches
# all of them at the same point of their call).
PACING = {
    "first_token_ms": 20.0,
    "token_interval_ms": 4.0,
    "tokens": 16,
    "json_delay_ms": 80.0,
    "jitter": 0.3,
}
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark."}]
MAX_TOKENS = 64
STAGGER_S = 0.1  # about one healthy call
CUT = "cut_after_commit"
UNFINISHED = "unfinished"  # still waiting when the load's drain time ran out


@dataclass
class Timeline:
    """Seconds from the start of the load."""

    onset: float = 10.0
    recover: float = 40.0
    end: float = 50.0
    early: float = 5.0  # "just after onset": calls starting in [onset, onset + early)
    warm: float = 1.0  # load before the timed run (not recorded): imports, pools, latencies
    drain: float = 15.0  # after END, how long calls in flight may still finish

    def __post_init__(self) -> None:
        if not 0 < self.onset < self.recover <= self.end:
            raise ValueError("freeze timeline: need 0 < onset < recover <= end")
        self.early = min(self.early, self.recover - self.onset)

    def phases(self) -> outage.Phases:
        return outage.Phases(self.onset, self.recover - self.onset, self.end - self.recover)


QUICK = Timeline(onset=1.5, recover=3.5, end=4.5, early=1.0, warm=0.5, drain=3.0)


# -- the SDK load ----------------------------------------------------------------------------


@dataclass(slots=True)
class Call:
    sdk: str
    stream: bool
    start: float  # time.perf_counter()
    end: float = 0.0
    kind: str = "ok"  # "ok", a failure kind, CUT or UNFINISHED
    detail: str = ""  # for CUT: what cut it
    first_token: float | None = None  # streams: perf_counter of the first content delta

    @property
    def elapsed_ms(self) -> float:
        return (self.end - self.start) * 1000


def make_sdk_clients(gw: G.Gateway) -> dict[str, Any]:
    """One client per SDK, shared by its workers: default timeouts, no SDK retries. Headers a
    peer needs besides the key (Portkey's route config) go along as default headers."""
    import anthropic
    import openai

    def extra(fmt: str) -> dict[str, str]:
        skip = {"authorization", "x-api-key", "anthropic-version"}
        return {k: v for k, v in gw.headers.get(fmt, {}).items() if k.lower() not in skip}

    base = f"http://127.0.0.1:{gw.port}"
    return {
        "anthropic": anthropic.AsyncAnthropic(
            base_url=base, api_key="bench", max_retries=0, default_headers=extra("anthropic")
        ),
        "openai": openai.AsyncOpenAI(
            base_url=base + "/v1", api_key="bench", max_retries=0, default_headers=extra("openai")
        ),
    }


def sdk_default_timeouts() -> dict[str, str]:
    import anthropic
    import openai

    return {"anthropic": str(anthropic.DEFAULT_TIMEOUT), "openai": str(openai.DEFAULT_TIMEOUT)}


async def _one(sdk: str, c: Any, stream: bool, call: Call) -> None:
    """One SDK call; fills ``call.kind`` (and ``first_token``). Raises nothing but
    cancellation."""
    import anthropic
    import httpx
    import openai

    done = False
    try:
        if sdk == "anthropic":
            if not stream:
                r = await c.messages.create(
                    model=G.MODELS["anthropic"], max_tokens=MAX_TOKENS, messages=MESSAGES
                )
                done = bool(r.content) and bool(getattr(r.content[0], "text", ""))
            else:
                s = await c.messages.create(
                    model=G.MODELS["anthropic"],
                    max_tokens=MAX_TOKENS,
                    messages=MESSAGES,
                    stream=True,
                )
                async with s:
                    async for ev in s:
                        if ev.type == "content_block_delta" and getattr(ev.delta, "text", ""):
                            call.first_token = call.first_token or time.perf_counter()
                        elif ev.type == "message_stop":
                            done = True
        else:
            if not stream:
                r = await c.chat.completions.create(
                    model=G.MODELS["openai"], max_tokens=MAX_TOKENS, messages=MESSAGES
                )
                done = bool(r.choices) and bool(r.choices[0].message.content)
            else:
                s = await c.chat.completions.create(
                    model=G.MODELS["openai"],
                    max_tokens=MAX_TOKENS,
                    messages=MESSAGES,
                    stream=True,
                )
                async with s:
                    async for ch in s:
                        if ch.choices and ch.choices[0].delta.content:
                            call.first_token = call.first_token or time.perf_counter()
                        if ch.choices and ch.choices[0].finish_reason:
                            done = True
        kind = "ok" if done else ("incomplete" if stream else "bad_body")
    except (anthropic.APITimeoutError, openai.APITimeoutError):
        kind = "timeout"
    except (anthropic.APIConnectionError, openai.APIConnectionError):
        kind = "connection"
    except (anthropic.APIStatusError, openai.APIStatusError) as e:
        # An error event inside a 200 stream is raised with the stream's status.
        kind = "inband_error" if e.status_code == 200 else f"status_{e.status_code}"
    except (anthropic.APIError, openai.APIError):
        kind = "inband_error"  # the OpenAI SDK's error chunk in a stream: no status
    except httpx.HTTPError as e:  # a stream cut while it was read: not wrapped by the SDKs
        kind = "connection" if not isinstance(e, httpx.TimeoutException) else "timeout"
    if kind != "ok" and call.first_token is not None:
        call.kind, call.detail = CUT, kind
    else:
        call.kind = kind


async def sdk_load(
    gw: G.Gateway,
    stream: bool,
    *,
    seconds: float,
    drain: float,
    concurrency: int = FREEZE_CONCURRENCY,
    sdks: tuple[str, ...] = SDKS,
    max_calls: int = 500_000,
) -> list[Call]:
    """``concurrency`` closed-loop workers, split evenly over ``sdks``, for ``seconds``; then
    up to ``drain`` more seconds for the calls in flight, after which the rest are cancelled
    and recorded as UNFINISHED. Every call is recorded, whatever its outcome."""
    clients = make_sdk_clients(gw)
    calls: list[Call] = []
    budget = [max_calls]
    stop_at = time.perf_counter() + seconds

    async def worker(sdk: str, k: int, n: int) -> None:
        # Staggered over one healthy call's duration: workers started together would stay
        # in step (closed loop, near-constant service time), and a freeze would catch them
        # all at the same point of their call.
        await asyncio.sleep(STAGGER_S * k / n)
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            call = Call(sdk, stream, time.perf_counter())
            calls.append(call)
            try:
                await _one(sdk, clients[sdk], stream, call)
            except asyncio.CancelledError:
                call.end, call.kind = time.perf_counter(), UNFINISHED
                raise
            call.end = time.perf_counter()
            if call.kind != "ok" and call.end - call.start < 0.01:
                await asyncio.sleep(0.01)  # a refusal in a millisecond must not spin the CPU

    per = max(1, concurrency // len(sdks))
    tasks = [asyncio.ensure_future(worker(sdk, k, per)) for sdk in sdks for k in range(per)]
    try:
        await asyncio.wait(tasks, timeout=seconds + drain)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in clients.values():
            await c.close()
    return calls


# -- one cell: (gateway, shape, mode) ---------------------------------------------------------


def _listen_overflows() -> int | None:
    """TcpExt ListenOverflows: SYNs the kernel dropped because an accept queue was full —
    on this machine during a no_accept freeze, the frozen port's (each retransmission of a
    connect counts again). System-wide, so approximate."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            v = row.get("ListenOverflows")
            return int(v) if v is not None else None
    return None


def _pct(values: list[float], q: float) -> float | None:
    v = client.percentile(values, q)
    return None if v is None else round(v, 1)


def _window(calls: list[Call]) -> dict[str, Any]:
    """Calls that started in one window: failures by kind; time to answer of the answered
    ones (p50 / p99 ms); the slowest call of any outcome."""
    ok = [c.elapsed_ms for c in calls if c.kind == "ok"]
    kinds: dict[str, int] = {}
    for c in calls:
        if c.kind != "ok":
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
    return {
        "calls": len(calls),
        "failed": sum(n for k, n in kinds.items() if k != CUT),
        "cut_after_commit": kinds.get(CUT, 0),
        "kinds": kinds,
        "p50_ms": _pct(ok, 50),
        "p99_ms": _pct(ok, 99),
        "max_any_ms": round(max((c.elapsed_ms for c in calls), default=0.0), 1) or None,
    }


def summarize_sdk(
    calls: list[Call],
    onset: float,
    recovered: float,
    early: float,
) -> dict[str, Any]:
    """Per SDK: totals; the calls over before onset; the calls in flight at onset; and the
    calls that started in the first seconds after onset, in the rest of the freeze, and
    after recovery."""
    win: dict[str, list[Call]] = {"before": [], "early": [], "late": [], "after": []}
    for c in calls:
        if c.start < onset:
            if c.end <= onset:
                win["before"].append(c)
        elif c.start < onset + early:
            win["early"].append(c)
        elif c.start < recovered:
            win["late"].append(c)
        else:
            win["after"].append(c)
    inflight = [c for c in calls if c.start < onset < c.end]
    total = _window(calls)
    kinds_fail = {k: n for k, n in total["kinds"].items() if k != CUT}
    cut_by = {}
    for c in calls:
        if c.kind == CUT:
            cut_by[c.detail] = cut_by.get(c.detail, 0) + 1
    ttft = [(c.first_token - c.start) * 1000 for c in calls if c.first_token and c.kind == "ok"]
    fl = _window(inflight)
    fl["p50_any_ms"] = _pct([c.elapsed_ms for c in inflight], 50)
    fl["answered_after_onset_max_ms"] = (
        round(max((c.end - onset) * 1000 for c in inflight), 1) if inflight else None
    )
    return {
        "calls": total["calls"],
        "failed": total["failed"],
        "failed_kinds": kinds_fail,
        "cut_after_commit": total["cut_after_commit"],
        "cut_by": cut_by,
        "ttft_ok_p50_ms": _pct(ttft, 50) if ttft else None,
        "windows": {k: _window(v) for k, v in win.items()},
        "inflight_at_onset": fl,
    }


def run_cell(
    name: str,
    shape: str,
    mode: str,
    mock: G.Mock,
    run_dir: Path,
    tl: Timeline,
    *,
    concurrency: int = FREEZE_CONCURRENCY,
    src: Path | None = None,
) -> dict[str, Any]:
    stream = mode == "stream"
    t_cell = time.monotonic()
    mock.reset()
    if name == "ridethrough":
        gw = G.start_ridethrough(
            mock, run_dir, name=f"ridethrough-freeze-{shape}-{mode}", default_timeouts=True,
            src=src,
        )
    else:
        gw = G.STARTERS[name](mock, run_dir)
    snaps: dict[str, dict[str, Any]] = {}
    p, s = mock.primary, mock.secondary

    def snap(label: str) -> None:
        a = time.perf_counter()
        primary, secondary = mock.stats(p, via=s)["counts"], mock.stats(s)["counts"]
        snaps[label] = {
            "t": (a + time.perf_counter()) / 2,
            "primary": primary,
            "secondary": secondary,
            "listen_overflows": _listen_overflows(),
        }
        if name == "ridethrough" and label in ("before", "during"):
            # Which targets could take a hedge or a failover at onset (and at recovery).
            try:
                snaps[label]["breakers"] = {
                    b["target"]: b["state"] for b in G.ridethrough_breakers(gw)
                }
            except OSError as e:
                snaps[label]["breakers"] = {"error": repr(e)}

    try:
        asyncio.run(sdk_load(gw, stream, seconds=tl.warm, drain=5.0, concurrency=concurrency))
        mock.reset()
        t0 = time.perf_counter()
        calls, times = asyncio.run(
            outage.run_phases(
                sdk_load(gw, stream, seconds=tl.end, drain=tl.drain, concurrency=concurrency),
                tl.phases(),
                onset=lambda: mock.fault(shape, p, via=s),
                recover=lambda: mock.fault("none", p, via=s),
                snap=snap,
            )
        )
    finally:
        try:
            mock.fault("none", p, via=s)
        finally:
            gw.stop()
    mock.reset()
    onset, recovered = times["onset"], times["recovered"]
    key = f"_{mode}"

    def delta(port: str, a: str, b: str, counter: str) -> int:
        return int(snaps[b][port].get(counter, 0)) - int(snaps[a][port].get(counter, 0))

    out: dict[str, Any] = {
        "gateway": name,
        "shape": shape,
        "mode": mode,
        "concurrency": concurrency,
        "onset_s": round(onset - t0, 2),
        "recovered_s": round(recovered - t0, 2),
        "sdks": {},
    }
    for sdk in SDKS:
        mine = [c for c in calls if c.sdk == sdk]
        r = summarize_sdk(mine, onset, recovered, tl.early)
        counter = sdk + key
        # Hedging while healthy: upstream requests on both ports ÷ client calls, before onset,
        # both counted from the reset after the warm-up (nothing was in flight then). Calls in
        # transit at the onset snapshot (a few ms) blur the count by a call or two.
        before_calls = sum(1 for c in mine if c.start < snaps["before"]["t"])
        upstream = int(snaps["before"]["primary"].get(counter, 0)) + int(
            snaps["before"]["secondary"].get(counter, 0)
        )
        r["healthy"] = {
            "client_calls": before_calls,
            "upstream_requests": upstream,
            "extra_pct": round(100 * (upstream - before_calls) / before_calls, 2)
            if before_calls
            else None,
        }
        r["primary_during"] = delta("primary", "before", "during", counter)
        r["primary_after"] = delta("primary", "during", "after", counter)
        out["sdks"][sdk] = r
    lo = [snaps[k]["listen_overflows"] for k in ("before", "during")]
    out["syns_dropped_during"] = lo[1] - lo[0] if None not in lo else None
    if name == "ridethrough":
        out["breakers"] = {
            "onset": snaps["before"].get("breakers"),
            "recovered": snaps["during"].get("breakers"),
        }
    out["seconds"] = round(time.monotonic() - t_cell, 1)
    out["raw_calls"] = len(calls)
    return out


def available(name: str) -> str | None:
    """Why a gateway cannot run here, or None."""
    if name == "litellm" and not G.litellm_available():
        return "LiteLLM not installed (bash bench/setup.sh litellm): skipped"
    if name == "portkey" and not G.portkey_available():
        return "Portkey not installed (bash bench/setup.sh portkey): skipped"
    if name not in G.STARTERS:
        return f"{name}: no starter"
    return None


@dataclass
class Settings:
    timeline: Timeline = field(default_factory=Timeline)
    shapes: tuple[str, ...] = SHAPES
    modes: tuple[str, ...] = MODES
    concurrency: int = FREEZE_CONCURRENCY
    src: Path | None = None  # run ridethrough from this source tree (as bench/ab.py does)


_DEFAULTS = """
import json
from ridethrough.config import AdaptiveTimeoutConfig, BreakerConfig, HedgeConfig, Timeouts
b = BreakerConfig().model_dump()
print(json.dumps({
    "timeouts_s": Timeouts().model_dump(),
    "adaptive": AdaptiveTimeoutConfig().model_dump(),
    "hedge": HedgeConfig().model_dump(),
    "breaker": {k: v for k, v in b.items() if k.startswith(("slow", "cool"))},
}))
"""


def ridethrough_defaults(src: Path | None = None) -> dict[str, Any]:
    """The defaults the measured ridethrough ran with, read from its own config models (in a
    child process, from ``src`` if given), not restated here."""
    exe = G.ROOT / ".venv" / "bin" / "python"
    env = {**os.environ, **({"PYTHONPATH": str(src)} if src else {})}
    try:
        out = subprocess.run(
            [str(exe) if exe.exists() else sys.executable, "-c", _DEFAULTS],
            capture_output=True, text=True, timeout=60, check=True, env=env,
        )
        return dict(json.loads(out.stdout))
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        return {"error": repr(e)}


def sdk_versions() -> dict[str, str]:
    import anthropic
    import openai

    return {"anthropic": anthropic.__version__, "openai": openai.__version__}


def source_state(src: Path | None = None) -> str:
    """The commit measured, and whether src/ had uncommitted changes (it is what runs), or
    the source tree given instead."""
    if src is not None:
        return f"the source tree {src} (PYTHONPATH first)"
    try:
        head = subprocess.run(
            ["git", "-C", str(G.ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(G.ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}" + (" with uncommitted changes in src/" if dirty else "")


def run(
    systems: list[str],
    run_dir: Path,
    python: str,
    st: Settings,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every (gateway, shape, mode) cell, on one freeze mock. Returns the report's section."""
    tl = st.timeline
    out: dict[str, Any] = {
        "timeline_s": asdict(tl),
        "concurrency": st.concurrency,
        "pacing": PACING,
        "sdk": {
            "versions": sdk_versions(),
            "max_retries": 0,
            "default_timeouts": sdk_default_timeouts(),
            "split": f"{st.concurrency // len(SDKS)} clients per SDK, both SDKs at once",
        },
        "ridethrough_defaults": ridethrough_defaults(st.src),
        "peer_config": (
            "the harness's configs (bench/gateways.py): 5 s per-attempt timeout, "
            "their documented retries and fallbacks"
        ),
        "source": source_state(st.src),
        "skipped": [],
        "cells": [],
    }
    mock = G.start_mock(run_dir, python, name="mock-freeze", **PACING)
    try:
        for name in systems:
            why = available(name)
            if why:
                log(why)
                out["skipped"].append(why)
                continue
            for shape in st.shapes:
                for mode in st.modes:
                    log(f"freeze {shape:19} {mode:6} {name}")
                    r = run_cell(
                        name, shape, mode, mock, run_dir, tl, concurrency=st.concurrency, src=st.src
                    )
                    for sdk, v in r["sdks"].items():
                        e = v["windows"]["early"]
                        log(
                            f"  {sdk:9} {v['calls']:>5} calls, {v['failed']} failed "
                            f"{v['failed_kinds'] or ''}, {v['cut_after_commit']} cut after "
                            f"commit; onset+{tl.early:g}s p50/p99 {e['p50_ms']}/{e['p99_ms']} ms; "
                            f"primary hit {v['primary_during']}× during; hedging "
                            f"+{v['healthy']['extra_pct']} % while healthy"
                        )
                    out["cells"].append(r)
    finally:
        mock.proc.stop()
    return out
