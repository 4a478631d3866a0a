"""Judging a component: which outcomes count, windows, percentiles and the status rules."""

from __future__ import annotations

from ridethrough.config import Thresholds
from ridethrough.health.samples import attempt_verdict, outcome_label, samples_of
from ridethrough.health.status import (
    DEGRADED,
    MAINTENANCE,
    MAJOR,
    OPERATIONAL,
    PARTIAL,
    group_status,
    judge_route,
    judge_target,
    page_indicator,
)
from ridethrough.health.windows import Window
from ridethrough.store.stats import Bucket, empty_hist, hist_add, hist_percentile
from support.health_records import all_failed, failover, ok, record, skipped_then

A, O = "anthropic/claude", "openai/gpt-4o"
TH = Thresholds()


def window_of(samples_per_second: list[tuple[str, object]], component: str) -> Window:
    w = Window()
    for i, rec in enumerate(samples_per_second):
        for s in samples_of(rec, A):  # type: ignore[arg-type]
            if s.component == component:
                w.add(float(i), s)
    return w


def test_attempt_verdicts_separate_target_faults_from_decisions() -> None:
    assert attempt_verdict("ok") == (True, False)
    assert attempt_verdict("server_error") == (True, True)
    assert attempt_verdict("overloaded_after_commit") == (True, True)
    assert attempt_verdict("skipped:breaker_open") == (True, True)      # it could not serve
    assert attempt_verdict("skipped:quota_exhausted") == (True, True)   # held down
    assert attempt_verdict("client_error") == (False, False)            # the caller's fault
    assert attempt_verdict("local_saturation") == (False, False)        # ours
    assert attempt_verdict("skipped:capability:tools") == (False, False)
    assert attempt_verdict("skipped:unavailable:OPENAI_API_KEY is not set") == (False, False)
    assert attempt_verdict("skipped:drained") == (False, False)
    assert attempt_verdict("hedge_lost") == (False, False)               # late, not failed


def test_outcome_labels_are_bounded() -> None:
    assert outcome_label("skipped:unavailable:OPENAI_API_KEY is not set") == "skipped:unavailable"
    assert outcome_label("skipped:capability:context_window(8192)") == "skipped:capability"


def test_route_is_judged_by_what_the_client_saw_target_by_its_attempts() -> None:
    rec = failover("claude", A, "server_error", O)
    by = {s.component: s for s in samples_of(rec, A)}
    route = by["route:claude"]
    assert route.judged and not route.failed and route.fallback and route.saved
    assert by[f"target:{A}"].failed and by[f"target:{O}"].ms == 300.0
    client = record("claude", [(A, "client_error")], outcome="client_error")
    assert not samples_of(client, A)[0].judged


def test_ttft_of_a_target_excludes_time_spent_on_earlier_attempts() -> None:
    rec = record("claude", [(A, "timeout", 900.0), (O, "ok", 400.0)], ttft_ms=1100.0, stream=True)
    by = {s.component: s for s in samples_of(rec, A)}
    assert by[f"target:{O}"].ttft_ms == 200.0
    assert by["route:claude"].ttft_ms == 1100.0


def test_window_prunes_old_samples_and_computes_exact_percentiles() -> None:
    w = Window()
    for i in range(100):
        for s in samples_of(ok("claude", A, ms=float(i + 1)), A):
            if s.component == "route:claude":
                w.add(float(i), s)
    st = w.stats(now=99.0, window_s=1000)
    assert st.n == 100 and st.p50_ms == 50.0 and st.p95_ms == 95.0 and st.p99_ms == 99.0
    assert w.stats(now=99.0, window_s=9.5).n == 10     # only the last ten seconds remain


def test_histogram_percentiles_interpolate_within_buckets() -> None:
    h = empty_hist()
    for ms in (10, 20, 30, 40, 200, 210, 220, 230, 240, 900):
        hist_add(h, ms)
    p50 = hist_percentile(h, 0.5)
    assert p50 is not None and 100 < p50 <= 250
    assert hist_percentile(empty_hist(), 0.5) is None
    b, c = Bucket(total=2, ok=1, failed=1, worst=2), Bucket(total=1, ok=1, worst=3)
    b.merge(c)
    assert (b.total, b.ok, b.worst) == (3, 2, 3)
    assert Bucket.from_row(b.to_row()) == b


def test_error_rate_thresholds_map_to_statuses() -> None:
    def status_for(failed: int, of: int) -> str:
        recs = [all_failed("claude", [(A, "server_error")]) for _ in range(failed)]
        recs = [ok("claude", A) for _ in range(of - failed)] + recs
        st = window_of(recs, f"target:{A}").stats(float(of), 1000)
        return judge_target(st, TH, None).status

    assert status_for(0, 20) == OPERATIONAL
    assert status_for(2, 20) == DEGRADED           # 10 %
    assert status_for(8, 20) == PARTIAL            # 40 %
    assert status_for(18, 20) == MAJOR             # 90 %
    assert status_for(3, 3) == OPERATIONAL         # too few requests to judge on rate


def test_a_run_of_successes_forgives_the_window() -> None:
    recs = [all_failed("claude", [(A, "overloaded")]) for _ in range(20)]
    recs += [ok("claude", A) for _ in range(TH.recovery_successes)]
    st = window_of(recs, f"target:{A}").stats(30.0, 1000)
    assert st.error_rate > 0.7 and judge_target(st, TH, None).status == OPERATIONAL


def test_breaker_state_and_operator_drain_show_in_target_status() -> None:
    empty = Window().stats(0.0, 60)
    opened = {"state": "open", "forced": None, "last_error": "server_error", "hold_reason": None}
    v = judge_target(empty, TH, opened)
    assert v.status == MAJOR and "circuit breaker open: server_error" in v.reasons
    assert judge_target(empty, TH, {**opened, "state": "half_open"}).status == PARTIAL
    assert judge_target(empty, TH, {**opened, "forced": "down"}).status == MAINTENANCE
    assert judge_target(empty, TH, {**opened, "forced": "up"}).status == OPERATIONAL
    held = {"state": "closed", "forced": None, "hold_reason": "quota_exhausted"}
    assert judge_target(empty, TH, held).status == MAJOR
    assert judge_target(empty, TH, None, "ANTHROPIC_API_KEY is not set").status == MAINTENANCE


def test_breaker_skips_keep_a_target_red_while_it_gets_no_traffic() -> None:
    recs = [skipped_then("claude", A, "breaker_open", O) for _ in range(10)]
    st = window_of(recs, f"target:{A}").stats(10.0, 1000)
    assert judge_target(st, TH, None).status == MAJOR


def test_route_saved_by_failover_is_degraded_not_down() -> None:
    recs = [failover("claude", A, "server_error", O) for _ in range(10)]
    st = window_of(recs, "route:claude").stats(10.0, 1000)
    v = judge_route(st, TH)
    assert v.status == DEGRADED and "fallback" in v.reasons[0]
    failing = [all_failed("claude", [(A, "server_error"), (O, "server_error")]) for _ in range(10)]
    assert judge_route(window_of(failing, "route:claude").stats(10.0, 1000), TH).status == MAJOR


def test_cache_answers_are_a_fallback_only_when_live_targets_failed() -> None:
    hit_first = record("claude", [], outcome="ok", served_by="cache", tier="cache")
    assert not samples_of(hit_first, A)[0].fallback           # cache mode "always": normal
    after_failure = record("claude", [(A, "server_error")], outcome="ok", served_by="cache",
                           tier="cache")
    assert samples_of(after_failure, A)[0].fallback
    stale = record("claude", [(A, "skipped:breaker_open")], outcome="ok", served_by="cache",
                   tier="stale")
    route = samples_of(stale, A)[0]
    assert route.fallback and route.saved and not route.failed


def test_slow_first_tokens_degrade_a_component() -> None:
    recs = [ok("claude", A, ms=15000.0, ttft_ms=12000.0, stream=True) for _ in range(10)]
    v = judge_route(window_of(recs, "route:claude").stats(10.0, 1000), TH)
    assert v.status == DEGRADED and "first token" in v.reasons[0]


def test_group_and_page_roll_ups() -> None:
    assert group_status([MAJOR, MAJOR]) == MAJOR
    assert group_status([MAJOR, OPERATIONAL]) == PARTIAL   # one model down is not all of it
    assert group_status([MAINTENANCE]) == MAINTENANCE
    assert group_status([]) == OPERATIONAL
    assert page_indicator([OPERATIONAL, DEGRADED]) == "minor"
    assert page_indicator([OPERATIONAL, MAJOR]) == "critical"
    assert page_indicator([OPERATIONAL], ["major"]) == "major"
