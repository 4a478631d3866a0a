"""Markdown from one run's results: the targets first, then every table they come from.

Every ratio is taken within the one run, so a slower or busier machine moves all systems
together. Overhead = the system's latency minus the direct call's, same cell (format, mode,
concurrency, percentile).
"""

from __future__ import annotations

from typing import Any

SYSTEMS = ("direct", "ridethrough", "litellm", "portkey")


def _cell(rows: list[dict], system: str, fmt: str, stream: bool, c: int) -> dict | None:
    for r in rows:
        if (r["system"], r["format"], r["stream"], r["concurrency"]) == (system, fmt, stream, c):
            return r
    return None


def _f(v: float | None, nd: int = 2) -> str:
    return "–" if v is None else f"{v:.{nd}f}"


def _over(
    rows: list[dict], system: str, fmt: str, stream: bool, c: int, metric: str, q: str
) -> float | None:
    a, d = _cell(rows, system, fmt, stream, c), _cell(rows, "direct", fmt, stream, c)
    if not a or not d or a[metric][q] is None or d[metric][q] is None:
        return None
    return round(a[metric][q] - d[metric][q], 3)


def _ratio(rows: list[dict], a: str, b: str, fmt: str, c: int) -> float | None:
    x, y = _cell(rows, a, fmt, False, c), _cell(rows, b, fmt, False, c)
    if not x or not y or not y["rps"]:
        return None
    return round(x["rps"] / y["rps"], 2)


def _commit(rows: list[dict], fmt: str, c: int) -> float | None:
    """ridethrough's first byte minus the direct call's first *token*: ridethrough holds its
    first byte until the first content event (its commit point, so that anything failing
    before it fails over silently); this is the cost of that hold beyond the upstream's own."""
    a, d = _cell(rows, "ridethrough", fmt, True, c), _cell(rows, "direct", fmt, True, c)
    if not a or not d or a["ttfb_ms"]["p50"] is None or d["ttft_ms"]["p50"] is None:
        return None
    return round(a["ttfb_ms"]["p50"] - d["ttft_ms"]["p50"], 3)


def targets(res: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(target, limit, measured, verdict) rows."""
    rows = res.get("matrix", [])
    out: list[tuple[str, str, str, str]] = []

    def check(
        name: str, limit: str, vals: list[float | None], ok: Any, fmt: str = "{:.3f}"
    ) -> None:
        shown = " / ".join("–" if v is None else fmt.format(v) for v in vals)
        if any(v is None for v in vals):
            verdict = "not measured"
        else:
            verdict = "met" if ok(vals) else "**missed**"
        out.append((name, limit, shown, verdict))

    def lte(lim: float) -> Any:
        return lambda vs: all(v <= lim for v in vs)

    def gte(lim: float) -> Any:
        return lambda vs: all(v >= lim for v in vs)

    fm = ("openai", "anthropic")
    check(
        "overhead p50 at c=1, JSON (OpenAI / Anthropic), ms",
        "≤ 0.5",
        [_over(rows, "ridethrough", f, False, 1, "latency_ms", "p50") for f in fm],
        lte(0.5),
    )
    check(
        "overhead p99 at c=1, JSON, ms",
        "≤ 2",
        [_over(rows, "ridethrough", f, False, 1, "latency_ms", "p99") for f in fm],
        lte(2),
    )
    check(
        "throughput at c=16 ÷ Portkey's (floor)",
        "≥ 1×",
        [_ratio(rows, "ridethrough", "portkey", f, 16) for f in fm],
        gte(1),
        "{:.2f}×",
    )
    check(
        "throughput at c=16 ÷ Portkey's (aim)",
        "≥ 2×",
        [_ratio(rows, "ridethrough", "portkey", f, 16) for f in fm],
        gte(2),
        "{:.2f}×",
    )
    check(
        "throughput at c=16 ÷ LiteLLM's",
        "≥ 10×",
        [_ratio(rows, "ridethrough", "litellm", f, 16) for f in fm],
        gte(10),
        "{:.1f}×",
    )
    check(
        "overhead p99 at c=16, JSON, ms",
        "≤ 5",
        [_over(rows, "ridethrough", f, False, 16, "latency_ms", "p99") for f in fm],
        lte(5),
    )
    errs = sum(r["errors"] for r in rows if r["system"] == "ridethrough") if rows else None
    check(
        "errors, every ridethrough cell of the matrix", "0", [errs], lambda vs: vs[0] == 0, "{:.0f}"
    )
    check(
        "stream first-byte overhead p50 at c=1, ms",
        "≤ 1",
        [_over(rows, "ridethrough", f, True, 1, "ttfb_ms", "p50") for f in fm],
        lte(1),
    )
    check(
        "…the same, against the upstream's first token (the commit point's own cost), ms",
        "≤ 1",
        [_commit(rows, f, 1) for f in fm],
        lte(1),
    )
    check(
        "stream first-token overhead p50 at c=1, ms",
        "≤ 1",
        [_over(rows, "ridethrough", f, True, 1, "ttft_ms", "p50") for f in fm],
        lte(1),
    )
    check(
        "stream first-token overhead p50 at c=16, ms",
        "≤ 1",
        [_over(rows, "ridethrough", f, True, 16, "ttft_ms", "p50") for f in fm],
        lte(1),
    )
    rss = max((r["rss_mb_max"] for r in rows if r["system"] == "ridethrough"), default=None)
    check(
        "RSS under load (max over the matrix), MB", "< 200", [rss], lambda vs: vs[0] < 200, "{:.0f}"
    )
    b = res.get("breaker") or {}
    check(
        "around an open breaker: extra p50 vs healthy, ms", "≤ 1", [b.get("extra_p50_ms")], lte(1)
    )
    cache = res.get("cache") or {}
    if cache.get("works"):
        check("exact-cache hit p50 (whole request), ms", "≤ 1", [cache.get("hit_p50_ms")], lte(1))
    else:
        out.append(
            (
                "exact-cache hit p50, ms",
                "≤ 1",
                "–",
                "not measured: " + str(cache.get("why", "extras not run")),
            )
        )
    return out


def render(res: dict[str, Any]) -> str:
    L: list[str] = []
    m, v, s = res.get("machine", {}), res.get("versions", {}), res.get("settings", {})
    L.append(
        f"Run of {res.get('date')} — {m.get('nproc')} cores ({m.get('cpu')}), "
        f"{m.get('ram_gib')} GiB RAM, kernel {m.get('kernel')}; took {res.get('seconds')} s; "
        f"load average {res.get('loadavg_start')} at the start, {res.get('loadavg_end')} "
        "at the end.\n"
    )
    L.append("Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".\n")
    for n in res.get("notes", []):
        L.append(f"Note: {n}\n")
    if any(k in res for k in ("matrix", "breaker", "cache")):  # not for a freeze-only run
        L.append("### Targets (ridethrough, ratios from this run)\n")
        L.append("| target | limit | measured | verdict |\n|---|---|---|---|")
        for row in targets(res):
            L.append("| " + " | ".join(row) + " |")
    rows = res.get("matrix", [])
    if rows:
        L.append("\n### Overhead over the direct call (ms; p50 / p99)\n")
        L.append("JSON: whole answer. Streams: first token (TTFT) and last byte (TTLB).\n")
        L.append(
            "| format | mode | c | ridethrough | LiteLLM | Portkey |\n|---|---|---|---|---|---|"
        )
        for fmt in ("openai", "anthropic"):
            for stream in (False, True):
                for c in s.get("concurrency", [1, 16, 64, 256]):
                    cells = []
                    for sys_ in ("ridethrough", "litellm", "portkey"):
                        if stream:
                            cells.append(
                                f"TTFT {_f(_over(rows, sys_, fmt, True, c, 'ttft_ms', 'p50'))} / "
                                f"{_f(_over(rows, sys_, fmt, True, c, 'ttft_ms', 'p99'))}; TTLB "
                                f"{_f(_over(rows, sys_, fmt, True, c, 'latency_ms', 'p50'))}"
                            )
                        else:
                            cells.append(
                                f"{_f(_over(rows, sys_, fmt, False, c, 'latency_ms', 'p50'))} / "
                                f"{_f(_over(rows, sys_, fmt, False, c, 'latency_ms', 'p99'))}"
                            )
                    L.append(
                        f"| {fmt} | {'stream' if stream else 'JSON'} | {c} | "
                        + " | ".join(cells)
                        + " |"
                    )
        L.append("\n### Throughput and latency, every cell\n")
        L.append(
            "req/s of answers a client accepts; latency p50 / p99 in ms (streams: last byte; "
            "TTFB/TTFT p50); errors; peak RSS of the process tree; CPU % of the system "
            "and of the mock during the cell.\n"
        )
        L.append(
            "| format | mode | c | system | req/s | p50 | p99 | TTFB p50 | TTFT p50 | errors "
            "| RSS MB | CPU % | CPU µs/req | mock CPU % |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            st = r["stream"]
            mode = "stream" if st else "JSON"
            ttfb = _f(r["ttfb_ms"]["p50"]) if st else ""
            ttft = _f(r["ttft_ms"]["p50"]) if st else ""
            errs = f"{r['errors']}{' ' + str(r['error_kinds']) if r['errors'] else ''}"
            L.append(
                f"| {r['format']} | {mode} | {r['concurrency']} | {r['system']} | "
                f"{r['rps']:.0f} | {_f(r['latency_ms']['p50'])} | {_f(r['latency_ms']['p99'])} | "
                f"{ttfb} | {ttft} | {errs} | {r['rss_mb_max'] or ''} | "
                f"{r.get('gateway_cpu_pct', '')} | {r.get('cpu_us_per_req') or ''} | "
                f"{r.get('mock_cpu_pct', '')} |"
            )
        best = max(
            (r["rps"] for r in rows if r["system"] != "direct" and not r["stream"]), default=0
        )
        mock_best = max(
            (r["rps"] for r in rows if r["system"] == "direct" and not r["stream"]), default=0
        )
        if best:
            L.append(
                f"\nThe mock alone served up to {mock_best:.0f} JSON req/s, "
                f"{mock_best / best:.1f}× the fastest gateway's {best:.0f}: "
                "it is not the bottleneck."
            )
    b = res.get("breaker")
    if b:
        L.append("\n### Routing around an open breaker (ridethrough, OpenAI JSON, c=1)\n")
        L.append(
            f"Primary answering 529 until its breaker is `{b['breaker_state']}`; then wrk "
            f"at c=1: p50 {_f(b['breaker_open']['latency_ms']['p50'], 3)} ms vs "
            f"{_f(b['healthy']['latency_ms']['p50'], 3)} ms healthy (extra "
            f"{_f(b['extra_p50_ms'], 3)} ms); overhead over calling the secondary directly "
            f"{_f(b['overhead_p50_ms'], 3)} ms; requests that still reached the primary while "
            f"open: {b['primary_hits_while_open']} (half-open probes); errors "
            f"{b['breaker_open']['errors']}."
        )
    c = res.get("cache")
    if c:
        L.append("\n### Exact cache\n")
        if c.get("works"):
            L.append(
                f"`cache: {{mode: always}}`: hit p50 {_f(c['hit_p50_ms'], 3)} ms "
                f"(direct call to the mock {_f(c['direct_p50_ms'], 3)} ms)."
            )
        else:
            L.append(f"Not measured: {c.get('why')}.")
    p = res.get("profile")
    if p and "skipped" not in p:
        for label, a in p.items():
            L.append(
                f"\n### Profile: {label} (py-spy, {a['samples_busy']} busy samples; "
                f"busy samples = {a['busy_pct']} % of one thread's full rate, all threads)\n"
            )
            L.append("| layer | % of busy samples |\n|---|---|")
            for k, val in a["areas"]:
                L.append(f"| {k} | {val} |")
            L.append("\n| top self frames | % |\n|---|---|")
            for k, val in a["self"][:12]:
                L.append(f"| `{k}` | {val} |")
            L.append("\n| ridethrough functions, inclusive | % |\n|---|---|")
            for k, val in a["inclusive_ridethrough"][:12]:
                L.append(f"| `{k}` | {val} |")
    o = res.get("outage")
    if o:
        ph = s.get("outage_phases_s", [])
        L.append(
            f"\n### Outage: the primary fails for {ph[1] if ph else '?'} s under c=16 "
            "closed-loop load\n"
        )
        L.append(
            "Failures seen by the client / calls, per phase (before / during / after); "
            "latency of every call (failed ones included) p50 / p99 ms; requests that "
            "reached the primary during the outage (per client call).\n"
        )
        L.append(
            "| case | gateway | failures before / during / after | p50 before / during / after | "
            "p99 before / during / after | max during | primary hits during (per call) | "
            "primary hits after | error kinds during |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|")
        for r in o:
            ph3 = [r[k] for k in ("before", "during", "after")]
            L.append(
                f"| {r['case']} ({r['format']}, {'stream' if r['stream'] else 'JSON'}) | "
                f"{r['gateway']} | "
                + " / ".join(f"{x['failures']}/{x['requests']}" for x in ph3)
                + " | "
                + " / ".join(_f(x["latency_ms"]["p50"], 1) for x in ph3)
                + " | "
                + " / ".join(_f(x["latency_ms"]["p99"], 1) for x in ph3)
                + " | "
                + f"{_f(r['during']['latency_ms']['max'], 0)} | "
                + f"{r['during']['primary_hits']} ({_f(r['during']['primary_hits_per_call'])}) | "
                + f"{r['after']['primary_hits']} | "
                + (", ".join(f"{k} {n}" for k, n in r["during"]["error_kinds"].items()) or "–")
                + " |"
            )
    if res.get("freeze"):
        L.extend(render_freeze(res["freeze"]))
    return "\n".join(L) + "\n"


FREEZE_SHAPES = {
    "no_accept": "the primary's port stops accepting (connect() times out)",
    "hang_before_headers": "the primary reads requests and sends nothing",
    "hang_after_headers": "JSON: status and headers, no body; stream: the head, no token",
    "stall_mid_stream": "JSON: half the body; stream: 3 tokens; then nothing",
}


def _pp(w: dict[str, Any]) -> str:
    """p50 / p99 (calls) of one window; "–" when nothing was answered in it."""
    if not w or not w.get("calls"):
        return "no calls"
    return f"{_f(w['p50_ms'], 0)} / {_f(w['p99_ms'], 0)} ({w['calls']})"


def _versions(sdk: dict[str, Any]) -> str:
    v = sdk.get("versions") or {}
    return " (" + ", ".join(f"{k} {x}" for k, x in v.items()) + ")" if v else ""


def _kinds(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(d.items())) or "–"


def freeze_lines(fz: dict[str, Any]) -> list[str]:
    """The freeze section's tables (also pasted into docs/performance.md)."""
    L: list[str] = []
    tl, sdk = fz["timeline_s"], fz["sdk"]
    rt = fz.get("ridethrough_defaults", {})
    t, a, h = rt.get("timeouts_s", {}), rt.get("adaptive", {}), rt.get("hedge", {})
    L.append(
        f"Primary frozen from {tl['onset']:g} s to {tl['recover']:g} s of a {tl['end']:g} s "
        f"closed-loop load, c={fz['concurrency']} ({sdk['split']}), fresh gateway per cell. "
        f"SDKs{_versions(sdk)}: `max_retries={sdk['max_retries']}` (no SDK retry hides a "
        "failure), default "
        f"timeouts ({'; '.join(f'{k}: {v}' for k, v in sdk['default_timeouts'].items())}). "
        "ridethrough: default timeouts"
        + (
            f" (connect {t.get('connect'):g} s, first byte {t.get('first_byte'):g} s, first "
            f"token {t.get('first_token'):g} s, idle {t.get('idle'):g} s, total "
            f"{t.get('total'):g} s; adaptive clamp({a.get('multiplier'):g} × p99, floors "
            f"{a.get('floor_first_byte_s'):g} / {a.get('floor_first_token_s'):g} / "
            f"{a.get('floor_complete_s'):g} s, ceiling); hedge at the learned "
            f"p{h.get('quantile', 0) * 100:g}, budget {h.get('budget_ratio', 0) * 100:g} %)"
            if t
            else ""
        )
        + f". LiteLLM, Portkey: {fz['peer_config']}. Upstream pacing: {fz['pacing']}.\n"
    )
    L.append(
        "Time to answer: until the SDK call returned (JSON: the whole answer; stream: read to "
        "its end), of answered calls, p50 / p99 ms (calls in the window), by the time a call "
        f"*started*: healthy = over before onset; onset → +{tl['early']:g} s; the rest of the "
        "freeze; after recovery. In flight at onset: calls started before onset and not over "
        "at it — their count, outcomes, p50 / max time to answer. Cut after commit: a stream "
        "that failed after its first token reached the client (counted apart from the failed "
        "calls: no gateway can fail it over unseen). Hedging: extra upstream requests while "
        "healthy, as a share of client calls (the mock's counters). Primary: requests that "
        "reached the frozen primary.\n"
    )
    if fz.get("source"):
        L.append(f"Source measured: {fz['source']}.\n")
    for why in fz.get("skipped", []):
        L.append(f"Skipped: {why}\n")
    cells = fz.get("cells", [])
    shapes = list(dict.fromkeys(c["shape"] for c in cells))
    for shape in shapes:
        L.append(f"\n#### {shape}: {FREEZE_SHAPES.get(shape, '')}\n")
        L.append(
            "| gateway | SDK | mode | calls | failed (kinds) | cut after commit | healthy | "
            f"onset → +{tl['early']:g} s | rest of freeze | after recovery | in flight at onset "
            "| hedging while healthy | primary hits during freeze |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        syns: list[str] = []
        notes: list[str] = []
        for c in (c for c in cells if c["shape"] == shape):
            for name, v in c["sdks"].items():
                w = v["windows"]
                fl = v["inflight_at_onset"]
                fl_txt = (
                    f"{fl['calls']}: "
                    + (
                        f"{fl['calls'] - fl['failed'] - fl['cut_after_commit']} ok"
                        + (f", {_kinds(fl['kinds'])}" if fl["kinds"] else "")
                    )
                    + f"; {_f(fl['p50_any_ms'], 0)} / {_f(fl['max_any_ms'], 0)}"
                    if fl["calls"]
                    else "none"
                )
                hd = v["healthy"]
                hedge = (
                    f"{hd['extra_pct']:+.1f} % ({hd['upstream_requests']}/{hd['client_calls']})"
                    if hd["extra_pct"] is not None
                    else "–"
                )
                cut = str(v["cut_after_commit"]) + (
                    f" ({_kinds(v['cut_by'])})" if v["cut_after_commit"] else ""
                )
                L.append(
                    f"| {c['gateway']} | {name} | {c['mode']} | {v['calls']} | {v['failed']}"
                    + (f" ({_kinds(v['failed_kinds'])})" if v["failed"] else "")
                    + f" | {cut} | {_pp(w['before'])} | {_pp(w['early'])} | {_pp(w['late'])} | "
                    f"{_pp(w['after'])} | {fl_txt} | {hedge} | {v['primary_during']} |"
                )
            if shape == "no_accept" and c.get("syns_dropped_during") is not None:
                syns.append(f"{c['gateway']} {c['mode']}: {c['syns_dropped_during']}")
            for when, states in (c.get("breakers") or {}).items():
                bad = {k: v for k, v in (states or {}).items() if v != "closed"}
                if bad:
                    notes.append(
                        f"{c['gateway']} {c['mode']}: breakers not closed at {when}: "
                        + ", ".join(f"{k} {v}" for k, v in bad.items())
                    )
        if syns:
            L.append(
                "\nSYNs the kernel dropped at the silent port during the freeze (TcpExt "
                "ListenOverflows, system-wide; a connect's retransmissions count again): "
                + "; ".join(syns)
                + "."
            )
        if notes:
            L.append("\n" + "; ".join(notes) + ".")
    return L


def render_freeze(fz: dict[str, Any]) -> list[str]:
    return ["\n### Freeze (timeout-shaped outage)\n", *freeze_lines(fz)]


def main() -> None:
    """Re-render a results JSON (default: bench/results/latest.json) as Markdown on stdout."""
    import json
    import sys
    from pathlib import Path

    path = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).parent / "results" / "latest.json"
    )
    sys.stdout.write(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
