"""The cache must never be the outage: a broken file costs hits, never requests.

Each test breaks the SQLite file the way production does — deleted, overwritten, locked,
full, unopenable — and asserts that no method raises, that ``healthy``/``last_error`` tell the
truth, that the failure is logged once per streak, and that the cache works again afterwards.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ridethrough.cache import ResponseCache
from ridethrough.config import CacheConfig

CFG = CacheConfig(ttl_s=60.0, stale_ttl_s=600.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def ask(text: str) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}


def message(text: str) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 1}}


def store(cache: ResponseCache, text: str, answer: str = "answer") -> None:
    cache.store("r", CFG, "anthropic", ask(text), None, message(answer), "anthropic")


def found(cache: ResponseCache, text: str) -> bool:
    return cache.lookup("r", CFG, "anthropic", ask(text), None, allow_stale=True) is not None


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "cache.db"


@pytest.fixture
def cache(path: Path, clock: Clock) -> ResponseCache:
    cache = ResponseCache(path, clock=clock)
    store(cache, "before")
    assert found(cache, "before") and cache.healthy
    return cache


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "ridethrough.cache" and r.levelno >= logging.WARNING]


def test_file_deleted_while_in_use(cache: ResponseCache, path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    path.unlink()
    assert not found(cache, "before")  # detected, not silently written to a ghost inode
    assert not cache.healthy and "deleted" in (cache.last_error or "")
    store(cache, "after")
    assert cache.healthy and path.exists()
    assert found(cache, "after")
    assert len(warnings(caplog)) == 1


def test_directory_deleted_while_in_use(cache: ResponseCache, path: Path) -> None:
    shutil.rmtree(path.parent)
    assert not found(cache, "before")
    store(cache, "after")
    assert found(cache, "after") and cache.healthy and path.exists()


def test_file_overwritten_with_junk_while_open(cache: ResponseCache, path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with open(path, "r+b") as f:
        f.write(os.urandom(path.stat().st_size))
    assert not found(cache, "before")  # the header check notices at once
    assert not cache.healthy and "no longer an SQLite database" in (cache.last_error or "")
    # Recovery on the next call: the junk is moved aside and a fresh database takes its place.
    store(cache, "after")
    assert found(cache, "after") and cache.healthy
    assert Path(f"{path}.corrupt").exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len([r for r in warnings(caplog) if "unavailable" in r.getMessage()]) == 1


def test_pages_corrupted_behind_a_valid_header(path: Path, clock: Clock) -> None:
    cache = ResponseCache(path, clock=clock)
    for i in range(50):
        store(cache, f"q{i}", "x" * 2_000)
    cache.close()
    data = bytearray(path.read_bytes())
    data[200:] = os.urandom(len(data) - 200)  # header intact, every page after it junk
    path.write_bytes(bytes(data))
    reopened = ResponseCache(path, clock=clock)
    assert not reopened.healthy and "malformed" in (reopened.last_error or "")
    assert not found(reopened, "q1")  # the old answers went with the junk
    store(reopened, "after")
    assert found(reopened, "after") and reopened.healthy
    assert Path(f"{path}.corrupt").exists()


def test_junk_file_at_startup_is_replaced(path: Path, clock: Clock) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    cache = ResponseCache(path, clock=clock)
    assert not cache.healthy and cache.last_error
    store(cache, "q")
    assert found(cache, "q") and cache.healthy
    assert Path(f"{path}.corrupt").read_bytes().startswith(b"this is not")


def test_locked_by_another_process(cache: ResponseCache, path: Path) -> None:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        store(cache, "while locked")
        assert not cache.healthy and "locked" in (cache.last_error or "")
        assert found(cache, "before")  # WAL: reads go on while someone else writes
    finally:
        other.execute("ROLLBACK")
        other.close()
    store(cache, "after")
    assert found(cache, "after") and cache.healthy


def test_disk_full(cache: ResponseCache) -> None:
    assert cache._db is not None
    conn = cache._db.conn
    conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
    store(cache, "big", "x" * 200_000)
    assert not cache.healthy and "full" in (cache.last_error or "")
    assert not found(cache, "big")
    store(cache, "big", "x" * 200_000)  # reopened: the space is there again
    assert found(cache, "big") and cache.healthy


def test_unopenable_path_backs_off_then_recovers(tmp_path: Path, clock: Clock,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "cache.db"
    path.mkdir()  # a directory where the file should be: every open fails
    cache = ResponseCache(path, clock=clock)
    for _ in range(5):
        store(cache, "q")
        assert not found(cache, "q")
    stats = cache.stats()
    assert stats["healthy"] is False and stats["entries"] is None and stats["last_error"]
    assert stats["errors"] == 1  # later calls waited for the backoff instead of retrying
    assert len(warnings(caplog)) == 1
    path.rmdir()
    clock.now += 1.0
    store(cache, "q")
    assert found(cache, "q") and cache.healthy


def test_failure_streaks_are_logged_once_each(cache: ResponseCache, path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(3):
        path.unlink()
        for _ in range(3):
            found(cache, "before")
        store(cache, "again")
        assert found(cache, "again")
    unavailable = [r for r in warnings(caplog) if "unavailable" in r.getMessage()]
    assert len(unavailable) == 3
    assert cache.stats()["errors"] == 3


def test_nothing_raises_on_garbage_input(cache: ResponseCache) -> None:
    for body in (None, [], {"messages": "x"}, {"messages": [None, 5]}):
        assert cache.lookup("r", CFG, "anthropic", body, None, allow_stale=True) is None  # type: ignore[arg-type]
        cache.store("r", CFG, "openai", body, None, message("a"), "anthropic")  # type: ignore[arg-type]
    assert cache.healthy
