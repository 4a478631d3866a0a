"""The benchmark run: ridethrough beside the mock alone, LiteLLM's proxy and Portkey's gateway.

    python bench/bench.py            the full run behind `make bench` (about 10 minutes)
    python bench/bench.py --smoke    mock + ridethrough only, a few seconds, no timing checks

A full run, all in one process tree on this machine:
  1. matrix   every system × {OpenAI, Anthropic} × {JSON, stream} × concurrency {1,16,64,256};
              within each cell the systems alternate (order rotated cell by cell), so slow
              drifts of a shared machine spread over all of them
  2. extras   ridethrough only: routing around an open breaker; an exact-cache hit
  3. profile  py-spy on ridethrough under JSON and streaming load
  4. outage   every gateway × every fault case (outage.py)
  5. freeze   every gateway × every freeze shape × {JSON, stream}, through the official SDKs
              with their default timeouts (freeze.py; about 7 minutes for ridethrough alone;
              --quick: a few seconds per cell, a smoke test)
  6. semantic the semantic cache's evaluation sets (wrong answers served, paraphrases served,
              ROC) and the latency a semantic lookup adds in an outage (semantic/; ~1 minute)
Results go to bench/results/latest.json and .md (and a timestamped copy under results/raw/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import client
import freeze
import gateways as G
import hotpath as prof
import measure
import outage
import report

SYSTEMS = ("direct", "ridethrough", "litellm", "portkey")
FORMATS = ("openai", "anthropic")
# Streams: the head at once, the first token 5 ms later, then 15 more 1 ms apart — enough
# spacing that a gateway which buffers shows it, short enough to keep cells fast.
STREAM_PACING = {"first_token_ms": 5.0, "token_interval_ms": 1.0}


def stop_on_sigterm() -> None:
    """SIGTERM (and SIGHUP) unwind like Ctrl-C, so every started process is stopped."""

    def bail(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, bail)
    signal.signal(signal.SIGHUP, bail)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def new_run_dir() -> Path:
    d = G.PEERS / "run" / time.strftime("%Y%m%d-%H%M%S")
    d.mkdir(parents=True, exist_ok=True)
    return d


# -- smoke -----------------------------------------------------------------------------------


def smoke(run_dir: Path, *, use_wrk: bool | None = None, requests: int = 8) -> dict[str, Any]:
    """Mock + ridethrough, a few requests of each kind, one failover. Seconds; no timings
    are judged. Returns the per-kind client summaries and the failover check."""
    if use_wrk is None:
        use_wrk = shutil.which("wrk") is not None
    mock = G.start_mock(run_dir, measure.PYTHON, **STREAM_PACING)
    out: dict[str, Any] = {"cells": {}, "errors": 0}
    gw = None
    try:
        gw = G.start_ridethrough(mock, run_dir)
        for target in (G.direct(mock), gw):
            for fmt in FORMATS:
                for stream in (False, True):
                    job = client.Job(
                        target.url(fmt),
                        G.body(fmt, stream),
                        fmt,
                        stream,
                        target.headers.get(fmt, {}),
                        concurrency=2,
                        duration_s=10,
                        max_requests=requests,
                        timeout_s=10,
                    )
                    t = time.perf_counter()
                    r = client.summarize(asyncio.run(client.run(job)), time.perf_counter() - t)
                    out["cells"][f"{target.name}/{fmt}/{'stream' if stream else 'json'}"] = r
                    out["errors"] += r["errors"]
        if use_wrk:
            r = measure.wrk_cell(gw, "openai", 4, 1, run_dir)
            out["cells"]["ridethrough/openai/json/wrk"] = r
            out["errors"] += r["errors"]
        # The fault switch and failover: a 529ing primary must not reach the client.
        mock.reset()
        mock.fault("overloaded")
        job = client.Job(
            gw.url("openai"),
            G.body("openai", False),
            "openai",
            False,
            gw.headers["openai"],
            concurrency=2,
            duration_s=10,
            max_requests=requests,
            timeout_s=10,
        )
        r = client.summarize(asyncio.run(client.run(job)))
        mock.fault("none")
        r["primary_hits"] = mock.stats(mock.primary)["counts"].get("fault_overloaded", 0)
        r["secondary_hits"] = mock.stats(mock.secondary)["counts"].get("requests", 0)
        out["cells"]["ridethrough/openai/json/primary-529"] = r
        out["errors"] += r["errors"]
    finally:
        if gw is not None:
            gw.stop()
        mock.proc.stop()
    return out


# -- full run --------------------------------------------------------------------------------


def start_systems(names: list[str], mock: G.Mock, run_dir: Path) -> dict[str, G.Gateway]:
    systems: dict[str, G.Gateway] = {}
    for name in names:
        if name == "direct":
            systems[name] = G.direct(mock)
            continue
        if name == "litellm" and not G.litellm_available():
            log("LiteLLM not installed (bash bench/setup.sh litellm): skipped")
            continue
        if name == "portkey" and not G.portkey_available():
            log("Portkey not installed (bash bench/setup.sh portkey): skipped")
            continue
        t = time.monotonic()
        systems[name] = G.STARTERS[name](mock, run_dir)
        log(f"{name} up on :{systems[name].port} in {time.monotonic() - t:.1f} s")
    return systems


def warm_up(systems: dict[str, G.Gateway], run_dir: Path, seconds: float) -> None:
    """JIT (Node), lazy imports and pools (Python) before anything is recorded."""
    for gw in systems.values():
        for fmt in FORMATS:
            for stream in (False, True):
                measure.cell(gw, fmt, stream, 16, seconds, run_dir)


def run_matrix(
    systems: dict[str, G.Gateway],
    mock: G.Mock,
    run_dir: Path,
    *,
    concurrencies: list[int],
    duration: float,
) -> list[dict]:
    rows = []
    names = list(systems)
    i = 0
    for fmt in FORMATS:
        for stream in (False, True):
            for c in concurrencies:
                order = names[i % len(names) :] + names[: i % len(names)]
                i += 1
                for name in order:
                    r = measure.cell(systems[name], fmt, stream, c, duration, run_dir, mock.proc)
                    r.update(system=name, format=fmt, stream=stream)
                    rows.append(r)
                    lat = r["ttft_ms"]["p50"] if stream else r["latency_ms"]["p50"]
                    log(
                        f"{fmt:9} {'stream' if stream else 'json':6} c={c:<3} {name:11} "
                        f"{r['rps']:>8.0f} req/s  p50 {lat:.2f} ms"
                        f"{' (first token)' if stream else ''}"
                        f"  errors {r['errors']}"
                    )
    return rows


def breaker_extra(rt: G.Gateway, mock: G.Mock, run_dir: Path, duration: float) -> dict:
    """c=1 latency when the primary's breaker is open (the request goes straight to the
    secondary), against c=1 latency with everything healthy, measured back to back."""
    healthy = measure.wrk_cell(rt, "openai", 1, duration, run_dir)
    mock.fault("overloaded")
    try:
        job = client.Job(
            rt.url("openai"),
            G.body("openai", False),
            "openai",
            False,
            rt.headers["openai"],
            1,
            10,
            40,
            10,
        )
        asyncio.run(client.run(job))  # enough 529s to open the primary's breaker
        states = {b["target"]: b["state"] for b in G.ridethrough_breakers(rt)}
        before = mock.stats(mock.primary)["counts"].get("requests", 0)
        around = measure.wrk_cell(rt, "openai", 1, duration, run_dir)
        hits = mock.stats(mock.primary)["counts"].get("requests", 0) - before
    finally:
        mock.fault("none")
    direct2 = measure.wrk_cell(
        G.Gateway("direct-secondary", mock.secondary, None, G.direct(mock).headers),
        "openai",
        1,
        duration,
        run_dir,
    )
    return {
        "breaker_state": states.get("primary/gpt-4.1"),
        "healthy": healthy,
        "breaker_open": around,
        "direct_secondary": direct2,
        "primary_hits_while_open": hits,
        "extra_p50_ms": round(around["latency_ms"]["p50"] - healthy["latency_ms"]["p50"], 3),
        "overhead_p50_ms": round(around["latency_ms"]["p50"] - direct2["latency_ms"]["p50"], 3),
    }


def cache_extra(mock: G.Mock, run_dir: Path, duration: float) -> dict:
    """Does `cache: {mode: always}` serve a repeat from cache? If so, its c=1 latency."""
    try:
        gw = G.start_ridethrough(mock, run_dir, cache="always", name="ridethrough-cache")
    except RuntimeError as e:
        return {"works": False, "why": f"ridethrough did not start with cache: always ({e})"}
    try:
        mock.reset()
        b = G.body("openai", False)
        for _ in range(3):
            req = urllib.request.Request(
                gw.url("openai"),
                data=b,
                headers={"content-type": "application/json", **gw.headers["openai"]},
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                tier = r.headers.get("x-ridethrough-tier") or r.headers.get("x-ridethrough-cache")
                r.read()
            time.sleep(0.2)  # ridethrough batches its cache stores every 20 ms
        upstream = mock.stats(mock.primary)["counts"].get("requests", 0)
        if upstream >= 3:
            return {
                "works": False,
                "why": "3 identical requests all reached the upstream "
                "(config accepted, no cache hit)",
                "upstream_requests": upstream,
            }
        hit = measure.wrk_cell(gw, "openai", 1, duration, run_dir)
        direct = measure.wrk_cell(G.direct(mock), "openai", 1, duration, run_dir)
        return {
            "works": True,
            "tier_header": tier,
            "upstream_requests": upstream,
            "hit": hit,
            "direct": direct,
            "hit_p50_ms": hit["latency_ms"]["p50"],
            "direct_p50_ms": direct["latency_ms"]["p50"],
        }
    finally:
        gw.stop()


def profile_extra(rt: G.Gateway, run_dir: Path, seconds: float) -> dict:
    if not prof.available():
        return {"skipped": "py-spy not installed (bash bench/setup.sh tools)"}
    out = {}
    for label, fmt, stream in (
        ("openai_json_c16", "openai", False),
        ("anthropic_stream_c16", "anthropic", True),
    ):
        path = run_dir / f"profile-{label}.txt"
        def load(fmt: str = fmt, stream: bool = stream) -> None:
            measure.cell(rt, fmt, stream, 16, seconds + 2, run_dir)

        prof.record_during(rt.proc.pid, seconds, path, load)  # type: ignore[union-attr]
        out[label] = prof.analyze(path, expected_samples=int(seconds * 250))
        out[label]["raw"] = str(path)
    return out


def full(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = new_run_dir()
    log(f"run folder {run_dir}")
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": G.machine(),
        "versions": G.versions(),
        "settings": {
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "stream_pacing": STREAM_PACING,
            "attempt_timeout_s": G.ATTEMPT_TIMEOUT_S,
            "outage_phases_s": args.phases,
            "outage_cases": args.outage_cases,
            "sections": args.sections,
        },
        "notes": [
            (
                "Portkey: PR #1551's one-line fix applied to build/start-server.js at install "
                "(its streams fail on Node 20 otherwise, issue #1389), and bound to 127.0.0.1."
            )
        ],
    }
    t_start = time.monotonic()
    result["loadavg_start"] = G.loadavg()
    mock = G.start_mock(run_dir, measure.PYTHON, **STREAM_PACING)
    systems: dict[str, G.Gateway] = {}
    try:
        if {"matrix", "extras", "profile"} & set(args.sections):
            systems = start_systems(args.systems, mock, run_dir)
            log("warming up")
            warm_up(systems, run_dir, 1.0)
        if "matrix" in args.sections:
            result["matrix"] = run_matrix(
                systems, mock, run_dir, concurrencies=args.concurrency, duration=args.duration
            )
        rt = systems.get("ridethrough")
        if "extras" in args.sections and rt is not None:
            log("extras: open breaker")
            result["breaker"] = breaker_extra(rt, mock, run_dir, args.duration)
            log(
                f"  {result['breaker']['extra_p50_ms']} ms extra p50 with the primary's breaker "
                f"{result['breaker']['breaker_state']}"
            )
            log("extras: exact cache")
            result["cache"] = cache_extra(mock, run_dir, args.duration)
            log(f"  cache: {result['cache'].get('hit_p50_ms', result['cache'].get('why'))}")
        if "profile" in args.sections and rt is not None:
            log("profile: py-spy on ridethrough")
            result["profile"] = profile_extra(rt, run_dir, args.profile_seconds)
        for gw in systems.values():
            gw.stop()
        if "outage" in args.sections:
            result["outage"] = []
            for case in args.outage_cases:
                for name in args.systems:
                    if (
                        name == "direct"
                        or (name == "litellm" and not G.litellm_available())
                        or (name == "portkey" and not G.portkey_available())
                    ):
                        continue
                    log(f"outage {case:14} {name}")
                    r = outage.run_case(
                        name, case, mock, run_dir, phases=outage.Phases(*args.phases)
                    )
                    d = r["during"]
                    log(
                        f"  during: {d['failures']}/{d['requests']} failed, p99 "
                        f"{d['latency_ms']['p99']} ms, primary hit {d['primary_hits']} times"
                    )
                    result["outage"].append(r)
        if "freeze" in args.sections:
            names = [n for n in args.systems if n != "direct"]
            result["freeze"] = freeze.run(names, run_dir, measure.PYTHON, args.freeze, log)
        if "semantic" in args.sections:
            result["semantic"] = semantic_section()
    finally:
        for gw in systems.values():
            gw.stop()
        mock.proc.stop()
    result["loadavg_end"] = G.loadavg()
    result["seconds"] = round(time.monotonic() - t_start, 1)
    result["run_dir"] = str(run_dir)
    return result


def semantic_section() -> dict[str, Any]:
    """The semantic cache's precision/recall/ROC and its outage lookup latency, printed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "semantic"))
    import eval as semantic_eval
    import latency as semantic_latency

    log("semantic: evaluation sets")
    reports = semantic_eval.run(list(semantic_eval.SETS))
    print(semantic_eval.format_report(reports), flush=True)
    log("semantic: lookup latency during an outage")
    timings = [semantic_latency.measure(n) for n in (1000, 10000)]
    print(semantic_latency.format_results(timings), flush=True)
    return {"eval": [r.as_dict() for r in reports], "latency": timings}


def freeze_settings(a: argparse.Namespace) -> freeze.Settings:
    tl = (
        freeze.QUICK
        if a.quick
        else freeze.Timeline(onset=a.freeze_onset, recover=a.freeze_recover, end=a.freeze_end)
    )
    for name, got, known in (
        ("--freeze-shapes", a.freeze_shapes, freeze.SHAPES),
        ("--freeze-modes", a.freeze_modes, freeze.MODES),
    ):
        if set(got) - set(known):
            raise SystemExit(f"{name}: unknown {sorted(set(got) - set(known))}; known: {known}")
    if a.src is not None and not (a.src / "ridethrough").is_dir():
        raise SystemExit(f"--src: {a.src} holds no ridethrough/ package")
    return freeze.Settings(tl, tuple(a.freeze_shapes), tuple(a.freeze_modes), src=a.src)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="mock + ridethrough, seconds, no timings")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per matrix cell")
    ap.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64, 256]
    )
    ap.add_argument("--systems", type=lambda s: s.split(","), default=list(SYSTEMS))
    ap.add_argument(
        "--sections",
        type=lambda s: s.split(","),
        default=["matrix", "extras", "profile", "outage", "freeze", "semantic"],
    )
    ap.add_argument("--outage-cases", type=lambda s: s.split(","), default=list(outage.CASES))
    ap.add_argument(
        "--phases",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[2.0, 6.0, 8.0],
        help="outage before,during,after seconds",
    )
    ap.add_argument("--profile-seconds", type=float, default=6.0)
    ap.add_argument("--freeze-onset", type=float, default=10.0, help="freeze: primary freezes, s")
    ap.add_argument("--freeze-recover", type=float, default=40.0, help="freeze: it recovers, s")
    ap.add_argument("--freeze-end", type=float, default=50.0, help="freeze: the load stops, s")
    ap.add_argument(
        "--freeze-shapes", type=lambda s: s.split(","), default=list(freeze.SHAPES)
    )
    ap.add_argument("--freeze-modes", type=lambda s: s.split(","), default=list(freeze.MODES))
    ap.add_argument(
        "--src",
        type=Path,
        help="freeze: run ridethrough from this source tree (the folder holding ridethrough/, "
        "first on PYTHONPATH), e.g. a `git archive` of a commit while src/ is being edited",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"freeze: a smoke test (onset {freeze.QUICK.onset:g} s, recovery "
        f"{freeze.QUICK.recover:g} s, end {freeze.QUICK.end:g} s per cell)",
    )
    ap.add_argument("--out", type=Path, default=G.BENCH / "results")
    a = ap.parse_args(argv)
    a.freeze = freeze_settings(a)  # checked before anything runs
    stop_on_sigterm()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    if a.smoke:
        run_dir = new_run_dir()
        t = time.monotonic()
        r = smoke(run_dir)
        for k, v in r["cells"].items():
            print(
                f"  {k:40} {v['ok']:>4} ok  {v['errors']} errors  "
                f"p50 {v.get('ttlb_ms', v.get('latency_ms', {})).get('p50')} ms"
            )
        print(
            f"smoke: {'OK' if r['errors'] == 0 else 'FAILED'} — {r['errors']} errors, "
            f"{time.monotonic() - t:.1f} s (logs in {run_dir})"
        )
        return 0 if r["errors"] == 0 else 1
    result = full(a)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "raw").mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(result, indent=1)
    (a.out / "raw" / f"{stamp}.json").write_text(text)
    (a.out / "latest.json").write_text(text)
    md = report.render(result)
    (a.out / "latest.md").write_text(md)
    print(md)
    log(f"done in {result['seconds']} s; results in {a.out}/latest.md and latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
