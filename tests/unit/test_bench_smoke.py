"""The benchmark harness still works: mock upstream + ridethrough + the streaming client.

Runs the Python half of `bash bench/run.sh --smoke` (no wrk, LiteLLM or Portkey needed) and
checks what `make bench` relies on: both API formats, JSON and streams, direct and through
the gateway, with zero errors and every measurement field present; and the mock's fault
switch making the primary fail while the gateway's fallback hides it. No timing is judged:
a shared CI machine makes timings meaningless here.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import bench  # noqa: E402
import client  # noqa: E402


@pytest.fixture(scope="module")
def smoke_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return bench.smoke(tmp_path_factory.mktemp("bench-smoke"), use_wrk=False, requests=6)


def test_every_kind_of_call_succeeds_direct_and_through_ridethrough(smoke_result: dict) -> None:
    cells = smoke_result["cells"]
    for system in ("direct", "ridethrough"):
        for fmt in ("openai", "anthropic"):
            for mode in ("json", "stream"):
                r = cells[f"{system}/{fmt}/{mode}"]
                assert r["errors"] == 0, (system, fmt, mode, r["error_kinds"])
                assert r["ok"] == r["requests"] == 6
    assert smoke_result["errors"] == 0


def test_summaries_carry_the_fields_the_report_reads(smoke_result: dict) -> None:
    r = smoke_result["cells"]["ridethrough/anthropic/stream"]
    assert set(r) >= {"requests", "ok", "errors", "error_kinds", "rps", "wall_s",
                      "ttfb_ms", "ttft_ms", "ttlb_ms"}
    for metric in ("ttfb_ms", "ttft_ms", "ttlb_ms"):
        assert set(r[metric]) == {"p50", "p90", "p99", "max"}
        assert r[metric]["p50"] is not None and r[metric]["p50"] > 0
    # A stream's first token cannot come before its first byte, nor after its last.
    assert r["ttfb_ms"]["p50"] <= r["ttft_ms"]["p50"] <= r["ttlb_ms"]["p50"]


def test_a_failing_primary_is_hidden_by_the_fallback(smoke_result: dict) -> None:
    r = smoke_result["cells"]["ridethrough/openai/json/primary-529"]
    assert r["errors"] == 0
    assert r["primary_hits"] >= 1          # the fault switch did make the primary fail
    assert r["secondary_hits"] >= r["ok"]  # and the secondary answered every call


def test_the_client_names_what_a_broken_stream_looks_like(tmp_path: Path) -> None:
    """In-band errors and cut streams count as failures, not as successes."""
    mock = bench.G.start_mock(tmp_path, sys.executable, first_token_ms=0, token_interval_ms=0)
    try:
        seen = {}
        for fault in ("inband_before", "inband_after", "overloaded", "reset"):
            mock.fault(fault)
            job = client.Job(f"http://127.0.0.1:{mock.primary}/v1/messages",
                             bench.G.body("anthropic", True), "anthropic", True,
                             bench.G.CLIENT_HEADERS["anthropic"], concurrency=1, duration_s=5,
                             max_requests=2, timeout_s=5)
            seen[fault] = client.summarize(asyncio.run(client.run(job)))["error_kinds"]
        mock.fault("none")
    finally:
        mock.proc.stop()
    assert seen["inband_before"] == {"inband_error": 2}
    assert seen["inband_after"] == {"inband_error": 2}
    assert seen["overloaded"] == {"status_529": 2}
    assert seen["reset"] == {"reset": 2}


def test_the_mock_freezes_answers_in_flight_and_new_ones(tmp_path: Path) -> None:
    """bench/freeze.py's upstream: each freeze shape stops answers, including one already in
    progress when it starts; no_accept leaves connect() hanging; switching back answers."""
    mock = bench.G.start_mock(tmp_path, sys.executable, first_token_ms=5, token_interval_ms=1,
                              json_delay_ms=300)

    def job(stream: bool) -> client.Job:
        return client.Job(f"http://127.0.0.1:{mock.primary}/v1/chat/completions",
                          bench.G.body("openai", stream), "openai", stream,
                          bench.G.CLIENT_HEADERS["openai"], concurrency=1, duration_s=5,
                          max_requests=1, timeout_s=0.6)

    async def caught_in_flight() -> dict:
        load = asyncio.ensure_future(client.run(job(False)))
        await asyncio.sleep(0.1)  # the answer is held back 300 ms: the freeze catches it
        await asyncio.to_thread(mock.fault, "hang_before_headers")
        return client.summarize(await load)["error_kinds"]

    try:
        seen = {"in_flight": asyncio.run(caught_in_flight())}
        for shape in ("hang_after_headers", "stall_mid_stream", "no_accept"):
            mock.fault(shape, mock.primary, via=mock.secondary)
            for stream in (False, True):
                seen[(shape, stream)] = client.summarize(asyncio.run(client.run(job(stream))))[
                    "error_kinds"]
        mock.fault("none", mock.primary, via=mock.secondary)
        healthy = client.summarize(asyncio.run(client.run(job(True))))
    finally:
        mock.proc.stop()
    assert all(kinds == {"timeout": 1} for kinds in seen.values()), seen
    assert healthy["ok"] == 1, healthy["error_kinds"]


def test_a_freeze_cell_runs_end_to_end(tmp_path: Path) -> None:
    """One cell of the freeze section on its quick timeline: both SDKs through ridethrough
    while the primary freezes; every field the report reads is there and it renders."""
    import freeze
    import report

    settings = freeze.Settings(freeze.QUICK, ("hang_before_headers",), ("json",))
    out = freeze.run(["ridethrough"], tmp_path, sys.executable, settings, log=lambda s: None)
    (cell,) = out["cells"]
    assert (cell["gateway"], cell["shape"], cell["mode"]) == ("ridethrough", "hang_before_headers",
                                                             "json")
    for sdk in ("anthropic", "openai"):
        r = cell["sdks"][sdk]
        assert r["windows"]["before"]["calls"] > 0 and r["windows"]["before"]["failed"] == 0
        assert r["healthy"]["client_calls"] > 0 and r["healthy"]["upstream_requests"] > 0
        assert r["inflight_at_onset"]["calls"] > 0  # the freeze did catch calls in flight
        assert set(r) >= {"failed_kinds", "cut_after_commit", "primary_during", "ttft_ok_p50_ms"}
    assert set(cell["breakers"]) == {"onset", "recovered"}
    md = report.render({"freeze": out})
    assert "#### hang_before_headers" in md and "| ridethrough | openai | json |" in md
