"""One measurement cell: a fixed load against one system, for a bounded time.

JSON answers are driven by wrk (C, one thread, keep-alive connections, latency histogram in
microseconds); streams by ``client.py`` in its own process (time to first byte, first token,
last byte). Both report the same shape, so the report does not care which tool ran a cell:

  {"tool", "concurrency", "requests", "ok", "errors", "error_kinds", "rps",
   "latency_ms": {"p50", "p90", "p99", "max"}          (whole answer; for streams: last byte)
   "ttfb_ms", "ttft_ms" (streams only), "rss_mb_max"}
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

from gateways import BENCH, ROOT, Gateway, Proc, body

WRK_LUA = BENCH / "wrk" / "post.lua"
# The project's venv when there is one (it has uvloop); else whatever runs us (tests, CI).
PYTHON = (
    str(ROOT / ".venv" / "bin" / "python")
    if (ROOT / ".venv" / "bin" / "python").exists()
    else sys.executable
)


class RssSampler:
    """Samples a process tree's RSS every 100 ms while a cell runs; keeps the maximum."""

    def __init__(self, proc: Proc | None) -> None:
        self.proc = proc
        self.max_mb = 0.0
        self._stop = threading.Event()
        self._t: threading.Thread | None = None

    def __enter__(self) -> Self:
        if self.proc is not None:
            self._t = threading.Thread(target=self._loop, daemon=True)
            self._t.start()
        return self

    def _loop(self) -> None:
        assert self.proc is not None
        while not self._stop.is_set():
            self.max_mb = max(self.max_mb, self.proc.rss_mb())
            self._stop.wait(0.1)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._t is not None:
            self._t.join()
            self.max_mb = max(self.max_mb, self.proc.rss_mb())  # type: ignore[union-attr]


def write_inputs(run_dir: Path, gw: Gateway, fmt: str, stream: bool) -> tuple[Path, Path]:
    b = run_dir / f"body-{fmt}-{'stream' if stream else 'json'}.json"
    b.write_bytes(body(fmt, stream))
    h = run_dir / f"headers-{gw.name}-{fmt}.txt"
    h.write_text("".join(f"{k}: {v}\n" for k, v in gw.headers.get(fmt, {}).items()))
    return b, h


def wrk_cell(
    gw: Gateway,
    fmt: str,
    concurrency: int,
    duration_s: float,
    run_dir: Path,
    timeout_s: float = 10.0,
) -> dict:
    b, h = write_inputs(run_dir, gw, fmt, False)
    argv = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(WRK_LUA),
        gw.url(fmt),
    ]
    with RssSampler(gw.proc) as rss:
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            timeout=duration_s + timeout_s + 30,
            env={"BENCH_BODY": str(b), "BENCH_HEADERS": str(h), "PATH": "/usr/bin:/bin"},
        )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out.stdout[-500:]} {out.stderr[-500:]}")
    w = json.loads(line.removeprefix("WRK_JSON "))
    e = w["errors"]
    kinds = {k: v for k, v in e.items() if v}
    errors = sum(e.values())
    lat = w["latency_us"]
    secs = w["duration_us"] / 1e6
    return {
        "tool": "wrk",
        "concurrency": concurrency,
        "requests": w["requests"],
        "ok": w["requests"] - e["status"],
        "errors": errors,
        "error_kinds": kinds,
        "rps": round((w["requests"] - e["status"]) / secs, 1) if secs else 0.0,
        "latency_ms": {
            "p50": lat["p50"] / 1000,
            "p90": lat["p90"] / 1000,
            "p99": lat["p99"] / 1000,
            "max": lat["max"] / 1000,
        },
        "rss_mb_max": round(rss.max_mb, 1),
    }


def stream_cell(
    gw: Gateway,
    fmt: str,
    concurrency: int,
    duration_s: float,
    run_dir: Path,
    timeout_s: float = 15.0,
    stream: bool = True,
) -> dict:
    b, _ = write_inputs(run_dir, gw, fmt, stream)
    argv = [
        PYTHON,
        str(BENCH / "client.py"),
        gw.url(fmt),
        "--format",
        fmt,
        "--body-file",
        str(b),
        "-c",
        str(concurrency),
        "-d",
        str(duration_s),
        "--timeout",
        str(timeout_s),
    ]
    for k, v in gw.headers.get(fmt, {}).items():
        argv += ["--header", f"{k}: {v}"]
    with RssSampler(gw.proc) as rss:
        out = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=duration_s + timeout_s + 30
        )
    if out.returncode != 0:
        raise RuntimeError(f"client.py failed: {out.stderr[-800:]}")
    c = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "tool": "client.py",
        "concurrency": concurrency,
        "requests": c["requests"],
        "ok": c["ok"],
        "errors": c["errors"],
        "error_kinds": c["error_kinds"],
        "rps": c["rps"],
        "latency_ms": c["ttlb_ms"],
        "ttfb_ms": c["ttfb_ms"],
        "ttft_ms": c["ttft_ms"],
        "rss_mb_max": round(rss.max_mb, 1),
    }


def cell(
    gw: Gateway,
    fmt: str,
    stream: bool,
    concurrency: int,
    duration_s: float,
    run_dir: Path,
    mock: Proc | None = None,
) -> dict:
    """One cell, plus the CPU the system (and the mock) burnt during it. CPU per request is
    the steadiest number on a shared machine: other work slows a gateway down but does not
    make it spend more CPU on each request."""
    t = time.monotonic()
    g0 = gw.proc.cpu_s() if gw.proc else 0.0
    m0 = mock.cpu_s() if mock else 0.0
    r = (stream_cell if stream else wrk_cell)(gw, fmt, concurrency, duration_s, run_dir)
    wall = time.monotonic() - t
    r["seconds"] = round(wall, 2)
    if gw.proc:
        used = gw.proc.cpu_s() - g0
        r["gateway_cpu_pct"] = round(100 * used / wall, 1)
        r["cpu_us_per_req"] = round(1e6 * used / r["requests"], 1) if r["requests"] else None
    if mock:
        r["mock_cpu_pct"] = round(100 * (mock.cpu_s() - m0) / wall, 1)
    return r
