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
