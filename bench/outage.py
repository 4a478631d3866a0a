"""The outage benchmark: the same closed-loop load while the primary fails, per gateway.

Each (gateway, case) starts a fresh gateway (no breaker or cooldown state left from the last
case), warms it for a second, then runs one load of BEFORE + DURING + AFTER seconds while
the mock's fault switch turns the primary bad for DURING seconds. The secondary is healthy
throughout. Per phase it reports what a client saw (failures by kind, latency of every call
including the failed ones) and what the primary saw (requests that still reached it).

Cases — how real provider outages look on the wire:

  overloaded     HTTP 529 overloaded_error                      Anthropic format, JSON
  hang           accepts the request, never answers             OpenAI format, JSON
  reset          TCP reset right after the request              OpenAI format, stream
  inband_before  200, message_start, then `event: error`        Anthropic format, stream
  inband_after   200, three tokens, then `event: error`         Anthropic format, stream
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import client
from gateways import STARTERS, Gateway, Mock, body

CASES: dict[str, tuple[str, bool]] = {  # case → (format, stream)
    "overloaded": ("anthropic", False),
    "hang": ("openai", False),
    "reset": ("openai", True),
    "inband_before": ("anthropic", True),
    "inband_after": ("anthropic", True),
}


@dataclass
class Phases:
    before: float = 2.0
    during: float = 6.0
    after: float = 8.0

    @property
    def total(self) -> float:
        return self.before + self.during + self.after


def _phase_of(t: float, p: Phases) -> str:
    if t < p.before:
        return "before"
    if t < p.before + p.during:
        return "during"
    return "after"


def summarize_phase(samples: list[client.Sample]) -> dict[str, Any]:
    errors: dict[str, int] = {}
    for s in samples:
        if not s.ok:
            errors[s.kind] = errors.get(s.kind, 0) + 1
    every = [s.elapsed * 1000 for s in samples]
    ok = [s.elapsed * 1000 for s in samples if s.ok]
    n = len(samples)
    fails = sum(errors.values())
    return {
        "requests": n,
        "failures": fails,
        "failure_pct": round(100 * fails / n, 2) if n else 0.0,
        "error_kinds": errors,
        "latency_ms": {
            "p50": _r(client.percentile(every, 50)),
            "p99": _r(client.percentile(every, 99)),
            "max": _r(max(every) if every else None),
        },
        "ok_latency_ms": {
            "p50": _r(client.percentile(ok, 50)),
            "p99": _r(client.percentile(ok, 99)),
        },
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


T = TypeVar("T")


async def run_phases(
    load: Awaitable[T],
    phases: Phases,
    *,
    onset: Callable[[], object],
    recover: Callable[[], object],
    snap: Callable[[str], object],
) -> tuple[T, dict[str, float]]:
    """Run ``load`` while the fault comes and goes: ``snap("start")``, BEFORE seconds,
    ``snap("before")``, ``onset()``, DURING seconds, ``recover()``, ``snap("during")``, then
    wait for the load to end and ``snap("after")``. The three callables block (they talk
    to a process over HTTP) and run in a thread. Returns the load's result and when onset
    and recovery took effect (``time.perf_counter()``), for phases measured by the clock."""
    times: dict[str, float] = {}
    task = asyncio.ensure_future(load)
    try:
        await asyncio.to_thread(snap, "start")
        await asyncio.sleep(phases.before)
        await asyncio.to_thread(snap, "before")
        await asyncio.to_thread(onset)
        times["onset"] = time.perf_counter()
        await asyncio.sleep(phases.during)
        await asyncio.to_thread(recover)
        times["recovered"] = time.perf_counter()
        await asyncio.to_thread(snap, "during")
        result = await task
    finally:
        if not task.done():
            task.cancel()
    await asyncio.to_thread(snap, "after")
    return result, times


async def _drive(
    gw: Gateway,
    mock: Mock,
    fault: str,
    fmt: str,
    stream: bool,
    phases: Phases,
    concurrency: int,
    timeout_s: float,
) -> tuple[list[client.Sample], dict[str, dict]]:
    job = client.Job(
        gw.url(fmt),
        body(fmt, stream),
        fmt,
        stream,
        gw.headers.get(fmt, {}),
        concurrency,
        phases.total,
        10_000_000,
        timeout_s,
    )
    snaps: dict[str, dict] = {}

    def snap(name: str) -> None:
        snaps[name] = {
            "primary": mock.stats(mock.primary)["counts"].get("requests", 0),
            "secondary": mock.stats(mock.secondary)["counts"].get("requests", 0),
        }

    samples, _ = await run_phases(
        client.run(job),
        phases,
        onset=lambda: mock.fault(fault),
        recover=lambda: mock.fault("none"),
        snap=snap,
    )
    return samples, snaps


def run_case(
    name: str,
    case: str,
    mock: Mock,
    run_dir: Path,
    *,
    phases: Phases,
    concurrency: int = 16,
    timeout_s: float = 15.0,
) -> dict[str, Any]:
    fmt, stream = CASES[case]
    mock.reset()
    t0 = time.monotonic()
    gw = STARTERS[name](mock, run_dir)
    try:
        warm = client.Job(
            gw.url(fmt),
            body(fmt, stream),
            fmt,
            stream,
            gw.headers.get(fmt, {}),
            concurrency,
            1.0,
            100_000,
            timeout_s,
        )
        asyncio.run(client.run(warm))
        mock.reset()
        samples, snaps = asyncio.run(
            _drive(gw, mock, case, fmt, stream, phases, concurrency, timeout_s)
        )
    finally:
        gw.stop()
    mock.reset()
    by_phase: dict[str, list[client.Sample]] = {"before": [], "during": [], "after": []}
    for s in samples:
        by_phase[_phase_of(s.start, phases)].append(s)
    out: dict[str, Any] = {
        "gateway": name,
        "case": case,
        "format": fmt,
        "stream": stream,
        "concurrency": concurrency,
        "phases_s": vars(phases).copy(),
        "client_timeout_s": timeout_s,
    }
    order = ["start", "before", "during", "after"]
    for i, ph in enumerate(("before", "during", "after")):
        d = summarize_phase(by_phase[ph])
        a, b = snaps[order[i]], snaps[order[i + 1]]
        d["primary_hits"] = b["primary"] - a["primary"]
        d["secondary_hits"] = b["secondary"] - a["secondary"]
        d["primary_hits_per_call"] = (
            round(d["primary_hits"] / d["requests"], 3) if d["requests"] else None
        )
        out[ph] = d
    total = len(samples)
    out["failures_total"] = sum(1 for s in samples if not s.ok)
    out["calls_total"] = total
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out
