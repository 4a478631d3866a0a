"""The one migration runner for every SQLite file ridethrough writes (cache, health store).

The simonw/llm way: a migration is a name and some SQL, appended to its file's list and
never edited after release; the names applied are recorded in a table of the file itself,
so a file written by an older ridethrough is brought forward at open and no step runs
twice. Each file keeps its own list and its own record table (the names those tables
already have on disk: renaming one would re-run every step on existing files).

Several processes may open a new file at the same moment: each step runs under the write
lock (``BEGIN IMMEDIATE``) and is re-checked there, so exactly one process applies it and
the others find it done instead of failing on "table exists".
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

Migration = tuple[str, str]   # (name, SQL: one or more statements)


def apply_migrations(conn: sqlite3.Connection, migrations: Sequence[Migration], *,
                     table: str) -> list[str]:
    """Apply the steps not yet recorded in ``table``; return their names.

    ``conn`` is in autocommit mode (``isolation_level=None``): each step is its own
    explicit transaction.
    """
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, applied_at REAL)")
    done = {row[0] for row in conn.execute(f"SELECT name FROM {table}")}
    applied = []
    for name, sql in migrations:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute(f"SELECT 1 FROM {table} WHERE name = ?", (name,)).fetchone():
                conn.execute("COMMIT")   # another process applied it while we waited
                continue
            for statement in statements(sql):
                conn.execute(statement)
            conn.execute(f"INSERT INTO {table} (name, applied_at) VALUES (?, ?)",
                         (name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def statements(sql: str) -> list[str]:
    """``sql`` split into statements, ``--`` comments dropped first (they may hold a ``;``)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
