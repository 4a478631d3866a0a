"""Per-second slices: several workers' samples give the window stats one process would."""

from __future__ import annotations

from ridethrough.health.samples import Sample
from ridethrough.health.slices import Slice, SliceCache, SliceRecorder, merge_second, window_stats

T0 = 1_760_000_000


def ok(component: str = "route:r", ms: float = 200.0) -> Sample:
    return Sample(component, "ok", True, False, ms=ms)


def fail(component: str = "route:r", outcome: str = "server_error") -> Sample:
    return Sample(component, outcome, True, True)


def slice_of(*samples: Sample) -> Slice:
    s = Slice()
    for x in samples:
        s.add(x)
    return s


def test_counts_classes_and_latency_add_up_across_workers() -> None:
    a = slice_of(ok(ms=100), fail(), ok(ms=300))
    b = slice_of(fail(outcome="timeout"), ok(ms=100))
    m = merge_second([a, b])
    assert (m.n, m.failures) == (5, 2)
    assert m.classes == {"server_error": 1, "timeout": 1}
    assert sum(m.latency) == 3


def test_the_success_streak_is_counted_to_the_second() -> None:
    # Second 1: both workers fail, then worker a answers 2 and b answers 4 after its failure.
    # Seconds 2 and 3: only successes.
    seconds = {
        T0: merge_second([slice_of(ok(), fail()), slice_of(fail())]),
        T0 + 1: merge_second([slice_of(fail(), ok(), ok()), slice_of(fail(), *[ok()] * 4)]),
        T0 + 2: merge_second([slice_of(ok(), ok()), slice_of(ok())]),
        T0 + 3: merge_second([slice_of(ok())]),
    }
    st = window_stats(seconds, T0 + 3.5, 120)
    # 4 after the last failing second, plus the smaller tail of the failing workers in it
    # (their order within the second is unknown, so the cautious count).
    assert st.ok_streak == 4 + 2
    assert st.n == 3 + 8 + 3 + 1 and st.failures == 4


def test_only_seconds_inside_the_window_count() -> None:
    seconds = {T0: slice_of(fail(), fail()), T0 + 100: slice_of(ok())}
    assert window_stats(seconds, T0 + 100.5, 60).n == 1
    assert window_stats(seconds, T0 + 100.5, 101).n == 3


def test_percentiles_come_from_the_merged_histograms() -> None:
    fast = slice_of(*[ok(ms=40)] * 95)
    slow = slice_of(*[ok(ms=20_000)] * 5)
    st = window_stats({T0: merge_second([fast, slow])}, T0 + 1, 60)
    assert st.p50_ms is not None and st.p50_ms <= 50
    assert st.p99_ms is not None and st.p99_ms > 10_000
    assert st.n_latency == 100


def test_a_recorder_sends_each_change_once_and_again_after_a_failed_write() -> None:
    rec = SliceRecorder()
    rec.add(T0 + 0.2, ok())
    rec.add(T0 + 0.7, fail())
    rec.add(T0 + 0.7, Sample("route:r", "client", False))   # not judged: not in a slice
    sent = rec.take()
    assert [(c, s, d["n"]) for c, s, d in sent] == [("route:r", T0, 2)]
    assert rec.take() == []
    rec.restore(sent)
    rec.add(T0 + 0.9, ok())                                # the whole slice goes again
    assert [d["n"] for _, _, d in rec.take()] == [3]


def test_a_slice_round_trips_through_json() -> None:
    s = slice_of(ok(ms=120), fail(outcome="overloaded"))
    assert Slice.from_json(s.to_json()) == s


def test_the_leaders_cache_replaces_a_workers_slice_and_forgets_old_seconds() -> None:
    cache = SliceCache()
    cache.put("w0", "route:r", T0, slice_of(ok()))
    cache.put("w0", "route:r", T0, slice_of(ok(), ok()))   # the same worker's later write
    cache.put("w1", "route:r", T0, slice_of(fail()))
    cache.put("w1", "route:r", T0 - 500, slice_of(fail()))
    cache.prune(T0 - 100)
    st = cache.stats(["route:r", "route:unused"], T0 + 1, 1000)
    assert (st["route:r"].n, st["route:r"].failures) == (3, 1)
    assert st["route:unused"].n == 0
