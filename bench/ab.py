"""A/B: ridethrough as installed against a variant, alternating, same mock, same run.

The variant is another source tree (a scratch copy outside the repo with one change, put
first on PYTHONPATH) and/or another cache mode on the routes. This is how each change in
docs/performance.md → "Why the hot path looks as it does" was measured (bench/variants.py
makes the trees of the first round):

    .venv/bin/python bench/variants.py            # /tmp/ridethrough-variants/{base,batch,…}
    .venv/bin/python bench/ab.py --a-src /tmp/ridethrough-variants/base \\
        --b-src /tmp/ridethrough-variants/ids
    .venv/bin/python bench/ab.py --b-cache off    # what the default cache mode costs

Each round runs every cell on A, then on B (then B first on the next round); the report is
the median over rounds, and B's change against A in percent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench
import gateways as G
import measure

DEFAULT_CELLS = "openai:json:1,openai:json:16,anthropic:stream:16"


def run_ab(
    run_dir: Path,
    *,
    b_src: Path | None,
    b_cache: str | None,
    a_cache: str | None = None,
    a_src: Path | None = None,
    cells: str = DEFAULT_CELLS,
    rounds: int = 3,
    duration: float = 3.0,
) -> dict:
    mock = G.start_mock(run_dir, measure.PYTHON, first_token_ms=5.0, token_interval_ms=1.0)
    gws: dict[str, G.Gateway] = {}
    try:
        gws["A"] = G.start_ridethrough(
            mock, run_dir, cache=a_cache, name="ridethrough-A", src=a_src
        )
        gws["B"] = G.start_ridethrough(
            mock, run_dir, cache=b_cache, name="ridethrough-B", src=b_src
        )
        spec = [(f, m == "stream", int(c)) for f, m, c in (x.split(":") for x in cells.split(","))]
        for gw in gws.values():  # warm both
            for fmt, stream, c in spec:
                measure.cell(gw, fmt, stream, c, 1, run_dir)
        raw: dict[str, dict[str, list[dict]]] = {}
        for r in range(rounds):
            for fmt, stream, c in spec:
                key = f"{fmt}:{'stream' if stream else 'json'}:{c}"
                order = ("A", "B") if r % 2 == 0 else ("B", "A")
                for name in order:
                    raw.setdefault(key, {}).setdefault(name, []).append(
                        measure.cell(gws[name], fmt, stream, c, duration, run_dir, mock.proc)
                    )
    finally:
        for gw in gws.values():
            gw.stop()
        mock.proc.stop()
    out: dict = {
        "a_src": str(a_src) if a_src else None,
        "b_src": str(b_src) if b_src else None,
        "b_cache": b_cache,
        "a_cache": a_cache,
        "rounds": rounds,
        "duration_s": duration,
        "cells": {},
    }
    for key, by in raw.items():
        row = {}
        for name, runs in by.items():
            lat = "ttft_ms" if ":stream:" in key else "latency_ms"
            row[name] = {
                "rps": statistics.median(x["rps"] for x in runs),
                "p50_ms": statistics.median(x[lat]["p50"] for x in runs),
                "p99_ms": statistics.median(x[lat]["p99"] for x in runs),
                "cpu_us_per_req": statistics.median(x["cpu_us_per_req"] for x in runs),
                "errors": sum(x["errors"] for x in runs),
            }
        a, b = row["A"], row["B"]
        row["delta_pct"] = {
            k: round(100 * (b[k] - a[k]) / a[k], 1) if a[k] else None
            for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req")
        }
        out["cells"][key] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--a-src",
        type=Path,
        help="baseline source tree (default: the installed one;"
        " pass an untouched copy taken with the variant's, if src/ moves meanwhile)",
    )
    ap.add_argument("--b-src", type=Path, help="source tree holding the variant's ridethrough/")
    ap.add_argument("--b-cache", choices=("off", "fallback-only", "always"))
    ap.add_argument("--a-cache", choices=("off", "fallback-only", "always"))
    ap.add_argument("--cells", default=DEFAULT_CELLS, help="format:json|stream:concurrency,…")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    a = ap.parse_args()
    run_dir = G.PEERS / "run" / ("ab-" + time.strftime("%Y%m%d-%H%M%S"))
    run_dir.mkdir(parents=True, exist_ok=True)
    bench.stop_on_sigterm()
    r = run_ab(
        run_dir,
        a_src=a.a_src,
        b_src=a.b_src,
        b_cache=a.b_cache,
        a_cache=a.a_cache,
        cells=a.cells,
        rounds=a.rounds,
        duration=a.duration,
    )
    for key, row in r["cells"].items():
        A, B, d = row["A"], row["B"], row["delta_pct"]
        print(
            f"{key:20} A {A['rps']:>6.0f} req/s p50 {A['p50_ms']:.3f} p99 {A['p99_ms']:.2f} "
            f"cpu/req {A['cpu_us_per_req']:.0f} µs | "
            f"B {B['rps']:>6.0f} req/s p50 {B['p50_ms']:.3f} "
            f"p99 {B['p99_ms']:.2f} cpu/req {B['cpu_us_per_req']:.0f} µs | Δ rps {d['rps']:+}% "
            f"p50 {d['p50_ms']:+}% p99 {d['p99_ms']:+}% cpu/req {d['cpu_us_per_req']:+}%  "
            f"errors {A['errors']}/{B['errors']}"
        )
    print(json.dumps(r))


if __name__ == "__main__":
    main()
