"""The cache's SQLite file: open, check, read, write, bound. Raises; ``ResponseCache`` catches.

This layer is deliberately naive about failure — it raises ``sqlite3.Error``, ``OSError`` or a
:class:`CacheFileError` and lets the one caller above translate every failure into "no cache
right now". What it adds is *noticing* failure SQLite itself would hide:

* a file deleted while open keeps working on Linux (the inode lives on) and every answer
  stored after that is lost at the next restart, so each use compares the path's inode with
  the one opened;
* a file overwritten with junk can keep answering from the page cache for a while, so each
  use checks the 16-byte SQLite header.

WAL mode lets lookups read while another process writes; ``secure_delete`` zeroes evicted
answers instead of leaving them in free pages.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ridethrough.errors import RidethroughError

from .migrations import apply_migrations

__all__ = ["CacheDB", "CacheFileCorrupt", "CacheFileError", "CacheFileMissing", "Candidate", "Row"]

SQLITE_MAGIC = b"SQLite format 3\x00"
# Result codes (sqlite3.h). An error with one of these means the file itself is bad.
SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26
SQLITE_BUSY = 5
SQLITE_LOCKED = 6


class CacheFileError(RidethroughError):
    """The cache file is not the one we opened, or not a database any more."""


class CacheFileMissing(CacheFileError):
    pass


class CacheFileCorrupt(CacheFileError):
    pass


def is_corruption(exc: BaseException) -> bool:
    if isinstance(exc, CacheFileCorrupt):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)


def is_contention(exc: BaseException) -> bool:
    """Another process holds the lock: the connection is fine, only this write failed."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)


@dataclass(frozen=True)
class Row:
    id: int
    fmt: str
    response: bytes
    stored_at: float


@dataclass(frozen=True)
class Candidate:
    id: int
    fmt: str
    response: bytes
    stored_at: float
    vector: bytes
    guard: bytes
    question: str | None = None   # redacted (disclosure.redact_question)
    scope: str = ""


class CacheDB:
    """One connection to the cache file (or to a private in-memory database when ``path`` is
    None). Not thread-safe by itself: the caller holds a lock around every call."""

    def __init__(self, path: Path | None, *, busy_timeout_s: float) -> None:
        self.path = path
        self._identity: tuple[int, int] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        target = ":memory:" if path is None else str(path)
        conn = sqlite3.connect(target, timeout=busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # a lost last answer is fine; a slow one not
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA secure_delete=ON")
            apply_migrations(conn)
            if path is not None:
                st = os.stat(path)
                self._identity = (st.st_dev, st.st_ino)
        except BaseException:
            conn.close()
            raise
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    def check_file(self) -> None:
        """Raise if the file was deleted, replaced, or overwritten since we opened it."""
        if self.path is None:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise CacheFileMissing(f"{self.path} was deleted") from None
        if (st.st_dev, st.st_ino) != self._identity:
            raise CacheFileMissing(f"{self.path} was replaced by another file")
        with open(self.path, "rb") as f:
            if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise CacheFileCorrupt(f"{self.path} is no longer an SQLite database")

    # -- reads ---------------------------------------------------------------------------------

    def get(self, key: str) -> Row | None:
        row = self.conn.execute(
            "SELECT id, fmt, response, stored_at FROM entries WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else Row(*row)

    def candidates(self, space: str, model: str, newer_than: float, limit: int) -> list[Candidate]:
        rows = self.conn.execute(
            """SELECT e.id, e.fmt, e.response, e.stored_at, v.vector, v.guard, v.question,
                      e.scope
               FROM vectors v JOIN entries e ON e.id = v.entry_id
               WHERE v.space = ? AND v.model = ? AND e.stored_at >= ?
               ORDER BY e.stored_at DESC LIMIT ?""",
            (space, model, newer_than, limit),
        ).fetchall()
        return [Candidate(*r) for r in rows]

    def totals(self) -> tuple[int, int]:
        count, size = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
        ).fetchone()
        return int(count), int(size)

    # -- writes --------------------------------------------------------------------------------

    def put(
        self,
        *,
        key: str,
        route: str,
        scope: str,
        fmt: str,
        response: bytes,
        stored_at: float,
        expires_at: float,
        vector: tuple[str, str, bytes, bytes, str] | None,
    ) -> None:
        """Insert or replace one entry (and its vector: ``(space, model, vector, guard,
        redacted question)``)."""
        size = len(response) + (len(vector[2]) + len(vector[3]) if vector else 0)
        with self._transaction():
            entry_id = self.conn.execute(
                """INSERT INTO entries
                       (key, route, scope, fmt, response, stored_at, expires_at, last_used, size)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET
                       fmt = excluded.fmt, response = excluded.response,
                       stored_at = excluded.stored_at, expires_at = excluded.expires_at,
                       last_used = excluded.last_used, size = excluded.size
                   RETURNING id""",
                (key, route, scope, fmt, response, stored_at, expires_at, stored_at, size),
            ).fetchone()[0]
            if vector is None:
                self.conn.execute("DELETE FROM vectors WHERE entry_id = ?", (entry_id,))
            else:
                self.conn.execute(
                    """INSERT OR REPLACE INTO vectors
                           (entry_id, space, model, vector, guard, question)
                       VALUES (?, ?, ?, ?, ?, ?)""",
                    (entry_id, *vector),
                )

    def put_vector(self, key: str, vector: tuple[str, str, bytes, bytes, str]) -> bool:
        """Attach a vector embedded after its entry was written (the background embedder).
        False when the entry is gone (evicted, replaced by a newer answer meanwhile)."""
        with self._transaction():
            row = self.conn.execute("SELECT id FROM entries WHERE key = ?", (key,)).fetchone()
            if row is None:
                return False
            self.conn.execute(
                """INSERT OR REPLACE INTO vectors
                       (entry_id, space, model, vector, guard, question)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (row[0], *vector),
            )
            self.conn.execute("UPDATE entries SET size = size + ? WHERE id = ?",
                              (len(vector[2]) + len(vector[3]), row[0]))
        return True

    def touch_and_forget(self, touched: dict[int, float], expired: dict[int, float]) -> None:
        """Record deferred LRU touches and delete entries found expired by lookups.

        Lookups only read (so they never wait on another process's write lock); what they
        learned is written here, in one transaction, on the next write. An expired entry is
        deleted only if nobody stored it again meanwhile (``expired``: id -> stored_at seen).
        """
        if not touched and not expired:
            return
        with self._transaction():
            self.conn.executemany(
                "UPDATE entries SET last_used = MAX(last_used, ?) WHERE id = ?",
                [(ts, entry_id) for entry_id, ts in touched.items()],
            )
            self.conn.executemany("DELETE FROM entries WHERE id = ? AND stored_at = ?",
                                  list(expired.items()))

    def purge_expired(self, now: float) -> int:
        with self._transaction():
            return self.conn.execute("DELETE FROM entries WHERE expires_at < ?", (now,)).rowcount

    def enforce_limits(self, max_entries: int, max_bytes: int) -> int:
        """Evict least recently used entries until both bounds hold; return how many."""
        count, size = self.totals()
        if count <= max_entries and size <= max_bytes:
            return 0
        evict: list[int] = []
        with self._transaction():
            for entry_id, entry_size in self.conn.execute(
                "SELECT id, size FROM entries ORDER BY last_used ASC, id ASC"
            ):
                if count <= max_entries and size <= max_bytes:
                    break
                evict.append(entry_id)
                count -= 1
                size -= entry_size
            self.conn.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in evict])
        return len(evict)

    def _transaction(self) -> _Transaction:
        return _Transaction(self.conn)


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error (the connection is autocommit)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.outer = False

    def __enter__(self) -> None:
        # Inside a transaction already (a batch of stores): join it, the outer one commits.
        self.outer = not self.conn.in_transaction
        if self.outer:
            self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self.outer:
            return
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the original error is the one worth reporting


def quarantine(path: Path) -> None:
    """Move a corrupt cache file aside (one ``.corrupt`` copy kept for inspection) and drop its
    WAL and shared-memory files, so the next open starts a fresh database."""
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if path.exists():
        os.replace(path, f"{path}.corrupt")
