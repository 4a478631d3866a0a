"""The embedded history store: health buckets and incidents in one SQLite file.

SQLite because it ships with Python and a single gateway needs nothing more (design
decision 7). Every sqlite3 error is translated into ``StoreUnavailable`` here and nowhere
else, so callers handle one error and requests never see any. A file deleted under us is
noticed (its inode changed) and started afresh, rather than writing into a ghost that
disappears at restart; a corrupted or locked file makes the store unavailable until it
recovers, and the caller shows that on the status page.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson

from ridethrough.errors import RidethroughError
from ridethrough.store.migrations import migrate
from ridethrough.store.stats import Bucket

log = logging.getLogger("ridethrough.store")
T = TypeVar("T")
RESOLUTION_S = {"minute": 60, "hour": 3600, "day": 86400}
BucketKey = tuple[str, int]   # (component, start)
_COLUMNS = ("total", "ok", "failed", "fallback", "saved", "worst", "latency_sum_ms",
            "ttft_sum_ms", "ttft_n", "outcomes", "latency", "ttft")


class StoreUnavailable(RidethroughError):
    status = 503
    code = "store_unavailable"


class SqliteStore:
    def __init__(self, path: str | None, *, busy_timeout_s: float = 0.5) -> None:
        self.path = path or ":memory:"
        self.busy_timeout_s = busy_timeout_s
        self.notes: list[str] = []          # things an operator should know (shown on /status)
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._lock = threading.RLock()

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        with self._lock:
            self.close()
            try:
                if not self.in_memory:
                    os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s,
                                       check_same_thread=False, isolation_level=None)
                try:
                    conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
                    if not self.in_memory:
                        self._enable_wal(conn)
                    applied = migrate(conn)
                except BaseException:
                    conn.close()
                    raise
            except (sqlite3.Error, OSError) as e:
                raise StoreUnavailable(f"cannot open {self.path}: {e}") from None
            if applied:
                log.info("store %s: applied migrations %s", self.path, ", ".join(applied))
            self._conn = conn
            self._identity = self._stat()

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switching a new file to WAL takes an exclusive lock, and SQLite answers "database
        is locked" at once — without its busy handler — while another process opening the
        same new file holds one. Retry within the busy timeout, as the busy handler would."""
        deadline = time.monotonic() + self.busy_timeout_s
        pause = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except sqlite3.Error:
                    pass
                self._conn = None

    def _stat(self) -> tuple[int, int] | None:
        if self.in_memory:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._conn is None:
                self.open()
            elif not self.in_memory and self._stat() != self._identity:
                self.notes.append(f"the store file {self.path} was deleted or replaced; "
                                  "a new one was started (older history is not in it)")
                log.error("store file %s was deleted or replaced; starting a new one", self.path)
                self.open()
            assert self._conn is not None
            try:
                return fn(self._conn)
            except sqlite3.Error as e:
                raise StoreUnavailable(f"{self.path}: {e}") from None

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` under this store's lock and error translation: for the other
        table modules of this package (``store.shared``), so there is still one place where
        sqlite3 errors become ``StoreUnavailable``."""
        return self._run(fn)

    def ping(self) -> None:
        self._run(lambda c: c.execute("SELECT count(*) FROM _migrations").fetchone())

    # -- buckets ---------------------------------------------------------------------------

    def add_buckets(self, resolution: str, deltas: dict[BucketKey, Bucket]) -> None:
        """Merge deltas into stored buckets (a re-sent delta would double count: callers
        only re-send after a failed transaction, which wrote nothing)."""
        def tx(c: sqlite3.Connection) -> None:
            with c:
                c.execute("BEGIN IMMEDIATE")
                for (component, start), delta in deltas.items():
                    found = _select(c, resolution, component, start, start + 1)
                    merged = found.get((component, start), Bucket())
                    merged.merge(delta)
                    _replace(c, resolution, component, start, merged)
        if deltas:
            self._run(tx)

    def read_buckets(self, resolution: str, since: float, until: float | None = None,
                     components: Iterable[str] | None = None) -> dict[BucketKey, Bucket]:
        end = until if until is not None else 2**62
        rows = self._run(lambda c: _select(c, resolution, None, int(since), int(end)))
        if components is not None:
            wanted = set(components)
            rows = {k: v for k, v in rows.items() if k[0] in wanted}
        return rows

    def rollup(self, starts: Iterable[int]) -> None:
        """Recompute the hour rows holding these minute starts, then their day rows.
        Idempotent: a roll-up replaces, never adds, so running it twice is harmless."""
        hours = sorted({int(s) // 3600 * 3600 for s in starts})
        days = sorted({h // 86400 * 86400 for h in hours})

        def tx(c: sqlite3.Connection) -> None:
            with c:
                c.execute("BEGIN IMMEDIATE")
                for coarse, fine, period, starts_ in (("hour", "minute", 3600, hours),
                                                      ("day", "hour", 86400, days)):
                    for start in starts_:
                        totals: dict[str, Bucket] = {}
                        for (component, _), b in _select(c, fine, None, start, start + period).items():
                            totals.setdefault(component, Bucket()).merge(b)
                        for component, b in totals.items():
                            _replace(c, coarse, component, start, b)
        if hours:
            self._run(tx)

    def prune(self, now: float, keep_s: dict[str, float], incident_keep_s: float) -> int:
        """Delete what is past retention; returns the number of rows deleted."""
        def tx(c: sqlite3.Connection) -> int:
            n = 0
            with c:
                for resolution, seconds in keep_s.items():
                    n += c.execute("DELETE FROM buckets WHERE resolution = ? AND start < ?",
                                   (resolution, int(now - seconds))).rowcount
                n += c.execute("DELETE FROM incidents WHERE resolved_at IS NOT NULL "
                               "AND resolved_at < ?", (now - incident_keep_s,)).rowcount
            return n
        return self._run(tx)

    # -- incidents -------------------------------------------------------------------------

    def save_incidents(self, incidents: list[dict[str, Any]]) -> None:
        def tx(c: sqlite3.Connection) -> None:
            with c:
                write_incidents(c, incidents)
        if incidents:
            self._run(tx)

    def load_incident(self, incident_id: str) -> dict[str, Any] | None:
        row = self._run(lambda c: c.execute(
            "SELECT data FROM incidents WHERE id = ?", (incident_id,)).fetchone())
        return orjson.loads(row[0]) if row else None

    def load_incidents(self, limit: int = 50, unresolved_only: bool = False) -> list[dict[str, Any]]:
        where = "WHERE resolved_at IS NULL" if unresolved_only else ""
        rows = self._run(lambda c: c.execute(
            f"SELECT data FROM incidents {where} ORDER BY created_at DESC LIMIT ?", (limit,)
        ).fetchall())
        return [orjson.loads(r[0]) for r in rows]

    # -- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._run(lambda c: c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone())
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._run(lambda c: c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                      (key, value)))


def write_incidents(c: sqlite3.Connection, incidents: list[dict[str, Any]]) -> None:
    """Upsert whole incidents (inside the caller's transaction)."""
    for d in incidents:
        c.execute(
            "INSERT OR REPLACE INTO incidents (id, subject, status, created_at, "
            "updated_at, resolved_at, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (d["id"], d["subject"], d["status"], d["created_at"], d["updated_at"],
             d.get("resolved_at"), orjson.dumps(d).decode()))


def _select(c: sqlite3.Connection, resolution: str, component: str | None, start: int,
            end: int) -> dict[BucketKey, Bucket]:
    sql = f"SELECT component, start, {', '.join(_COLUMNS)} FROM buckets " \
          "WHERE resolution = ? AND start >= ? AND start < ?"
    args: list[Any] = [resolution, start, end]
    if component is not None:
        sql += " AND component = ?"
        args.append(component)
    out: dict[BucketKey, Bucket] = {}
    for row in c.execute(sql, args):
        d = dict(zip(_COLUMNS, row[2:], strict=True))
        for name in ("outcomes", "latency", "ttft"):
            d[name] = orjson.loads(d[name])
        out[(row[0], int(row[1]))] = Bucket.from_row(d)
    return out


def _replace(c: sqlite3.Connection, resolution: str, component: str, start: int, b: Bucket) -> None:
    row = b.to_row()
    for name in ("outcomes", "latency", "ttft"):
        row[name] = orjson.dumps(row[name]).decode()
    c.execute(
        f"INSERT OR REPLACE INTO buckets (resolution, start, component, {', '.join(_COLUMNS)}) "
        f"VALUES (?, ?, ?, {', '.join('?' for _ in _COLUMNS)})",
        (resolution, start, component, *(row[k] for k in _COLUMNS)))
