"""The cache file's schema, as named migrations recorded in a table (after simonw/llm).

A cache file outlives the process that wrote it, and several gateway versions may open it in
turn; a named, recorded step per change lets a newer gateway upgrade an older file in place
and never runs a step twice (the runner is ``sqlite_migrations``, shared with the health
store). Append new steps; never edit or reorder applied ones.

What the schema holds is the no-secrets rule made concrete: a hash of the normalized request
(never the request), the route, the scope (a gateway key's *name*), the response, its format,
timestamps and sizes; for semantic entries an embedding and digests of the question's words,
and the question itself only as ``disclosure.redact_question`` leaves it (secret-looking tokens
replaced, capped), for the header that tells a caller which question a semantic answer
answered. No column can hold a header or an API key.
"""

from __future__ import annotations

import sqlite3

from ridethrough.sqlite_migrations import Migration
from ridethrough.sqlite_migrations import apply_migrations as run_migrations

__all__ = ["MIGRATIONS", "apply_migrations"]

MIGRATIONS: list[Migration] = [
    (
        "m001_entries",
        """
        CREATE TABLE entries (
            id         INTEGER PRIMARY KEY,
            key        TEXT NOT NULL UNIQUE,   -- sha256 of route + scope + normalized request
            route      TEXT NOT NULL,
            scope      TEXT NOT NULL,          -- 'key:<name>', 'anonymous' or 'shared'
            fmt        TEXT NOT NULL,          -- 'anthropic' | 'openai': the response's format
            response   BLOB NOT NULL,          -- the final response object, JSON
            stored_at  REAL NOT NULL,
            expires_at REAL NOT NULL,          -- stored_at + ttl_s + stale_ttl_s: retention
            last_used  REAL NOT NULL,          -- eviction order (least recently used first)
            size       INTEGER NOT NULL        -- bytes counted against max_bytes
        );
        CREATE INDEX entries_lru ON entries (last_used, size);  -- covers SUM(size), eviction
        CREATE INDEX entries_expires_at ON entries (expires_at);
        """,
    ),
    (
        "m002_vectors",
        """
        CREATE TABLE vectors (
            entry_id INTEGER PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,
            space    TEXT NOT NULL,            -- sha256 of route, scope, system, tools, history
            model    TEXT NOT NULL,            -- vectors of different models never compare
            vector   BLOB NOT NULL,            -- float32, L2-normalized
            guard    BLOB NOT NULL             -- guards.Fingerprint as JSON (digests only)
        );
        CREATE INDEX vectors_space ON vectors (space, model);
        """,
    ),
    (
        "m003_vector_question",
        """
        ALTER TABLE vectors ADD COLUMN question TEXT  -- redacted and capped; NULL before m003
        """,
    ),
]


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply the steps not yet recorded; return their names. ``conn`` is in autocommit mode."""
    return run_migrations(conn, MIGRATIONS, table="migrations")
