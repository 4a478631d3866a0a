"""The health store's schema: named migrations, each applied once and recorded in
``_migrations`` (the runner is ``sqlite_migrations``, shared with the cache).

Append new steps, never edit applied ones. A database written by an older ridethrough is
brought forward at open; one written by a newer one keeps working as long as it only added
tables and columns.
"""

from __future__ import annotations

import sqlite3

from ridethrough.sqlite_migrations import Migration, apply_migrations

MIGRATIONS: list[Migration] = [
    ("001_health_buckets", """
        CREATE TABLE buckets (
            resolution TEXT NOT NULL,          -- minute | hour | day
            start INTEGER NOT NULL,            -- unix seconds, aligned to the resolution
            component TEXT NOT NULL,           -- catalog key: route:<name>, target:<p>/<m>
            total INTEGER NOT NULL, ok INTEGER NOT NULL, failed INTEGER NOT NULL,
            fallback INTEGER NOT NULL, saved INTEGER NOT NULL, worst INTEGER NOT NULL,
            latency_sum_ms REAL NOT NULL, ttft_sum_ms REAL NOT NULL, ttft_n INTEGER NOT NULL,
            outcomes TEXT NOT NULL,            -- JSON {outcome: count}
            latency TEXT NOT NULL,             -- JSON histogram (stats.LATENCY_BOUNDS_MS)
            ttft TEXT NOT NULL,
            PRIMARY KEY (resolution, component, start)
        );
        CREATE INDEX buckets_by_time ON buckets (resolution, start);
    """),
    ("002_incidents", """
        CREATE TABLE incidents (
            id TEXT PRIMARY KEY,
            subject TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            resolved_at REAL,
            data TEXT NOT NULL                 -- JSON of the whole incident with its updates
        );
        CREATE INDEX incidents_by_created ON incidents (created_at);
    """),
    ("003_meta", """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """),
    ("004_workers", """
        CREATE TABLE live_slices (
            instance TEXT NOT NULL,            -- the worker process that saw the samples
            component TEXT NOT NULL,
            second INTEGER NOT NULL,           -- unix second the samples fell in
            seq INTEGER NOT NULL,              -- write number: readers ask for "newer than"
            data TEXT NOT NULL,                -- JSON of health.slices.Slice
            PRIMARY KEY (instance, component, second)
        );
        CREATE INDEX live_slices_by_seq ON live_slices (seq);
        CREATE INDEX live_slices_by_second ON live_slices (second);
        CREATE TABLE workers (
            instance TEXT PRIMARY KEY,
            session TEXT NOT NULL,             -- one `serve --workers N` run
            slot INTEGER NOT NULL,
            pid INTEGER NOT NULL,
            seen_at REAL NOT NULL,
            data TEXT NOT NULL                 -- JSON: breakers, counters, store health
        );
        CREATE TABLE health_feed (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            instance TEXT NOT NULL,
            at REAL NOT NULL,
            data TEXT NOT NULL                 -- JSON: request tallies, or an operator command
        );
    """),
]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    return apply_migrations(conn, MIGRATIONS, table="_migrations")
