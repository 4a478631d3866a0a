"""The SQLite history store: named migrations, roll-ups, retention, and failing safely."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from ridethrough.config import HealthConfig
from ridethrough.gateway import Gateway
from ridethrough.health import attach
from ridethrough.health.service import HealthService
from ridethrough.routing.clock import FakeClock
from ridethrough.store import SqliteStore, StoreUnavailable
from ridethrough.store.migrations import MIGRATIONS
from ridethrough.store.stats import Bucket
from ridethrough.web import page
from support.health_records import failover, ok, simulated_config

A, O = "anthropic/claude-sonnet-4-5", "openai/gpt-4o"
DAY = 86400
T0 = 1_760_000_000.0 // DAY * DAY   # midnight UTC, so day arithmetic reads plainly


def service(path: str | None, clock: FakeClock) -> HealthService:
    gw = Gateway(simulated_config(), clock=clock)
    svc = HealthService(gw, store_path=path, clock=clock, config=HealthConfig())
    attach(svc.gw, svc)
    svc.open_store()
    return svc


def test_migrations_are_named_recorded_and_applied_once(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    conn.executescript(MIGRATIONS[0][1])   # a database written by an older ridethrough
    conn.execute("INSERT INTO _migrations VALUES (?, 0)", (MIGRATIONS[0][0],))
    conn.commit()
    conn.close()
    store = SqliteStore(str(db))
    store.open()
    store.close()
    store.open()    # a second open applies nothing
    names = [r[0] for r in sqlite3.connect(db).execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]


def test_deltas_merge_and_rollups_are_idempotent(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "h.sqlite3"))
    store.open()
    h = int(T0) + 3 * 3600
    store.add_buckets("minute", {("route:r", h): Bucket(total=2, ok=2),
                                 ("route:r", h + 60): Bucket(total=3, ok=1, failed=2, worst=3)})
    store.add_buckets("minute", {("route:r", h): Bucket(total=1, failed=1)})   # a later delta
    store.add_buckets("minute", {("route:r", h + 3600): Bucket(total=4, ok=4)})
    for _ in range(2):
        store.rollup([h, h + 60, h + 3600])
    minute = store.read_buckets("minute", h, h + 61)
    assert minute[("route:r", h)].total == 3 and minute[("route:r", h)].failed == 1
    hours = store.read_buckets("hour", h, h + 7200)
    assert (hours[("route:r", h)].total, hours[("route:r", h)].worst) == (6, 3)
    assert hours[("route:r", h + 3600)].total == 4
    day = store.read_buckets("day", T0, T0 + DAY)[("route:r", int(T0))]
    assert (day.total, day.ok, day.failed, day.worst) == (10, 7, 3, 3)


def test_service_writes_minute_buckets_and_rolls_them_up(tmp_path: Path) -> None:
    clock = FakeClock(T0 + 3600)
    svc = service(str(tmp_path / "h.sqlite3"), clock)
    for _ in range(120):                       # two minutes, one request a second
        svc.gw.emit(failover("claude", A, "server_error", O))
        clock.advance(1)
        svc.tick()
    assert svc.flush()
    minutes = svc.store.read_buckets("minute", T0, T0 + DAY, ["route:claude"])
    assert sum(b.total for b in minutes.values()) == 120
    day = svc.store.read_buckets("day", T0, T0 + DAY)
    route, target = day[("route:claude", int(T0))], day[(f"target:{A}", int(T0))]
    assert (route.total, route.ok, route.fallback, route.saved) == (120, 120, 120, 120)
    assert (target.failed, target.outcomes) == (120, {"server_error": 120})
    assert target.worst == 3                    # the day had a major outage
    p = route.percentiles()
    assert p["p50_ms"] is not None and 250 <= p["p50_ms"] <= 500


def test_retention_keeps_minutes_two_days_hours_thirty_and_days_ninety(tmp_path: Path) -> None:
    clock = FakeClock(T0 + 3600)
    svc = service(str(tmp_path / "h.sqlite3"), clock)
    svc.gw.emit(ok("claude", A))
    svc.tick()
    assert svc.flush()
    assert svc.store.read_buckets("minute", 0)
    for days, left in ((3, {"hour", "day"}), (31, {"day"}), (91, set())):
        clock.now = T0 + days * DAY
        svc.gw.emit(ok("claude", O))    # keeps new rows coming: only the old ones must go
        svc.tick()
        svc._last_prune = 0.0           # prune now rather than within the hour
        assert svc.flush()
        old = {res for res in ("minute", "hour", "day")
               if svc.store.read_buckets(res, 0, T0 + DAY, ["route:claude"])}
        assert old == left, days
    assert svc.store.read_buckets("day", T0 + 90 * DAY)   # today's row is there


def _status_page_mentions_store(svc: HealthService) -> bool:
    html = page.render(svc)
    return "History store unavailable" in html


def test_locked_store_keeps_requests_flowing_and_catches_up_later(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = str(tmp_path / "h.sqlite3")
    clock = FakeClock(T0 + 3600)
    svc = service(db, clock)
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.ERROR, "ridethrough.health"):
        for _ in range(30):
            svc.monitor.observe(ok("claude", A))   # the observer never raises
            clock.advance(1)
            svc.tick()
        assert not svc.flush()
    assert not svc.store_health.ok and "locked" in (svc.store_health.error or "")
    assert any("health store unavailable" in r.message for r in caplog.records)
    assert _status_page_mentions_store(svc)
    from ridethrough.web.metrics import render
    assert "ridethrough_health_store_up 0" in render(svc)
    locker.execute("ROLLBACK")
    locker.close()
    assert svc.flush() and svc.store_health.ok
    minutes = svc.store.read_buckets("minute", 0, None, ["route:claude"])
    assert sum(b.total for b in minutes.values()) == 30       # nothing lost, nothing doubled
    assert not _status_page_mentions_store(svc)


def test_deleted_store_file_is_noticed_and_started_afresh(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    clock = FakeClock(T0 + 3600)
    svc = service(str(db), clock)
    db.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    svc.gw.emit(ok("claude", A))
    svc.tick()
    assert svc.flush()
    assert db.exists()
    assert any("deleted or replaced" in n for n in svc.store_health.notes)
    assert "deleted or replaced" in page.render(svc)


def test_corrupted_store_is_reported_and_never_breaks_the_observer(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    db.write_bytes(b"this is not a database" * 100)
    clock = FakeClock(T0 + 3600)
    svc = service(str(db), clock)              # opening fails: the service still runs
    assert not svc.store_health.ok
    svc.gw.emit(ok("claude", A))               # through the gateway's observer list
    svc.tick()
    assert svc.monitor.states["route:claude"].stats.n == 1   # live status still works
    assert not svc.flush()
    assert _status_page_mentions_store(svc)
    with pytest.raises(StoreUnavailable):
        svc.store.ping()


def test_observer_never_raises_even_when_its_queue_is_full() -> None:
    clock = FakeClock(T0)
    gw = Gateway(simulated_config(), clock=clock)
    svc = HealthService(gw, store_path=None, clock=clock,
                        config=HealthConfig(queue_max=100))
    for _ in range(150):
        svc.monitor.observe(ok("claude", A))
    assert svc.monitor.dropped == 50
    svc.tick()
    svc.monitor.observe(None)  # type: ignore[arg-type]  — garbage in is swallowed at drain
    svc.monitor.observe(ok("claude", A))
    svc.tick()
    assert svc.monitor.dropped == 50 + 1
    assert svc.monitor.states["route:claude"].stats.n == 101   # the good ones were all read
