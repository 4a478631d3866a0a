"""The tables that make several worker processes read as one gateway.

``serve --workers N`` runs N processes that share nothing but this SQLite file (design
decision 7: embedded by default, Redis when it runs as replicas). Every tick each worker
writes, in one transaction, what it saw — per-second health *slices*, its tallies for the
incident engine (the *feed*), and a row about itself (breakers, counters, store health).
The one elected leader reads them, judges, and *publishes*: one status snapshot, the
incidents, and how far it has read the feed — in one transaction too, so a leader that
dies half way leaves either all of it or none, and the next leader carries on from there.

WAL mode (set by ``SqliteStore.open``) lets every reader go on while one worker writes.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from ridethrough.store.sqlite import SqliteStore, write_incidents

SNAPSHOT_KEY = "health.snapshot"
CURSOR_KEY = "health.feed_cursor"
SEQ_KEY = "health.slice_seq"
# {"session", "epoch", "version", "targets": {target: {"mode": "up"|"down"|None, "v": n}}}:
# ``epoch`` is new with each store file (a deleted file restarts the count), ``version`` grows
# with every change and ``v`` is the version that last set that target (None: back to auto).
OVERRIDES_KEY = "admin.overrides"
INCIDENTS_SHOWN = 50


@dataclass(slots=True)
class SliceRow:
    instance: str
    component: str
    second: int
    data: dict[str, Any]


@dataclass(slots=True)
class SharedRead:
    """What a status endpoint needs, read in one snapshot of the database."""

    snapshot: dict[str, Any] | None
    incidents: list[dict[str, Any]]
    workers: list[dict[str, Any]]


def _meta(c: sqlite3.Connection, key: str) -> str | None:
    row = c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set_meta(c: sqlite3.Connection, key: str, value: str) -> None:
    c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def _dumps(v: Any) -> str:
    return orjson.dumps(v).decode()


class SharedTables:
    """Reads and writes of the worker tables; errors surface as ``StoreUnavailable``."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    # -- every worker ----------------------------------------------------------------------

    def exchange(self, worker: dict[str, Any], slices: list[tuple[str, int, dict[str, Any]]],
                 feed: list[dict[str, Any]], at: float) -> dict[str, Any] | None:
        """This worker's row, its changed slices (whole values, replacing) and feed entries;
        returns the operators' target overrides of this run (``set_override``), if any."""
        def tx(c: sqlite3.Connection) -> dict[str, Any] | None:
            with c:
                c.execute("BEGIN IMMEDIATE")
                c.execute("INSERT OR REPLACE INTO workers (instance, session, slot, pid, seen_at, "
                          "data) VALUES (?, ?, ?, ?, ?, ?)",
                          (worker["instance"], worker["session"], worker["slot"], worker["pid"],
                           worker["seen_at"], _dumps(worker)))
                if slices:
                    seq = int(_meta(c, SEQ_KEY) or 0) + 1
                    _set_meta(c, SEQ_KEY, str(seq))
                    c.executemany(
                        "INSERT OR REPLACE INTO live_slices (instance, component, second, seq, "
                        "data) VALUES (?, ?, ?, ?, ?)",
                        [(worker["instance"], comp, second, seq, _dumps(d))
                         for comp, second, d in slices])
                c.executemany("INSERT INTO health_feed (instance, at, data) VALUES (?, ?, ?)",
                              [(worker["instance"], at, _dumps(d)) for d in feed])
                return _overrides(c, worker["session"])
        return self.store.run(tx)

    def set_override(self, session: str, target: str, mode: str | None) -> dict[str, Any]:
        """An operator forced ``target`` down or up (``None``: back to automatic) for every
        worker of this run; each applies it on its next exchange. Returns the new overrides."""
        def tx(c: sqlite3.Connection) -> dict[str, Any]:
            with c:
                c.execute("BEGIN IMMEDIATE")
                raw = _meta(c, OVERRIDES_KEY)
                prev = orjson.loads(raw) if raw else {}
                current = _overrides(c, session) or {"session": session, "version": 0, "targets": {}}
                # versions only grow, across runs too, so a worker never mistakes an old value;
                # every call gets one, so repeating a call re-applies it everywhere
                version = int(prev.get("version", 0)) + 1
                targets = dict(current["targets"])
                targets[target] = {"mode": mode, "v": version}
                new = {"session": session, "epoch": prev.get("epoch") or secrets.token_hex(8),
                       "version": version, "targets": targets}
                _set_meta(c, OVERRIDES_KEY, _dumps(new))
            return new
        return self.store.run(tx)

    def read_view(self, session: str) -> SharedRead:
        def tx(c: sqlite3.Connection) -> SharedRead:
            with c:
                c.execute("BEGIN")  # one read snapshot for all three
                raw = _meta(c, SNAPSHOT_KEY)
                recent = [orjson.loads(r[0]) for r in c.execute(
                    "SELECT data FROM incidents ORDER BY created_at DESC LIMIT ?",
                    (INCIDENTS_SHOWN,))]
                ids = {d["id"] for d in recent}
                recent += [d for d in (orjson.loads(r[0]) for r in c.execute(
                    "SELECT data FROM incidents WHERE resolved_at IS NULL "
                    "ORDER BY created_at DESC LIMIT ?", (INCIDENTS_SHOWN,)))
                    if d["id"] not in ids]
                workers = _workers(c, session)
            return SharedRead(orjson.loads(raw) if raw else None, recent, workers)
        return self.store.run(tx)

    def read_workers(self, session: str) -> list[dict[str, Any]]:
        return self.store.run(lambda c: _workers(c, session))

    def append_feed(self, instance: str, entry: dict[str, Any], at: float) -> None:
        def tx(c: sqlite3.Connection) -> None:
            with c:
                c.execute("INSERT INTO health_feed (instance, at, data) VALUES (?, ?, ?)",
                          (instance, at, _dumps(entry)))
        self.store.run(tx)

    # -- the leader ------------------------------------------------------------------------

    def read_slices(self, *, after_seq: int = 0,
                    since_second: int | None = None) -> tuple[list[SliceRow], int]:
        """Slices written after ``after_seq`` (or all from ``since_second`` on), and the seq
        to ask after next time."""
        def tx(c: sqlite3.Connection) -> tuple[list[SliceRow], int]:
            with c:
                c.execute("BEGIN")
                seq = int(_meta(c, SEQ_KEY) or 0)
                if since_second is not None:
                    rows = c.execute("SELECT instance, component, second, data FROM live_slices "
                                     "WHERE second >= ?", (since_second,)).fetchall()
                else:
                    rows = c.execute("SELECT instance, component, second, data FROM live_slices "
                                     "WHERE seq > ?", (after_seq,)).fetchall()
            return [SliceRow(r[0], r[1], int(r[2]), orjson.loads(r[3])) for r in rows], seq
        return self.store.run(tx)

    def read_feed(self, after_id: int, limit: int = 5000) -> list[tuple[int, dict[str, Any]]]:
        rows = self.store.run(lambda c: c.execute(
            "SELECT id, data FROM health_feed WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit)).fetchall())
        return [(int(r[0]), orjson.loads(r[1])) for r in rows]

    def read_leader_state(self) -> tuple[dict[str, Any] | None, int]:
        """The last published snapshot and feed cursor, for a worker taking over."""
        def tx(c: sqlite3.Connection) -> tuple[dict[str, Any] | None, int]:
            with c:
                c.execute("BEGIN")
                raw = _meta(c, SNAPSHOT_KEY)
                cursor = int(_meta(c, CURSOR_KEY) or 0)
            return (orjson.loads(raw) if raw else None), cursor
        return self.store.run(tx)

    def publish(self, snapshot: dict[str, Any], incidents: list[dict[str, Any]], cursor: int,
                *, slices_before: int, session: str) -> None:
        """The leader's output, atomically; and the clean-up only the leader does."""
        def tx(c: sqlite3.Connection) -> None:
            with c:
                c.execute("BEGIN IMMEDIATE")
                write_incidents(c, incidents)
                _set_meta(c, SNAPSHOT_KEY, _dumps(snapshot))
                _set_meta(c, CURSOR_KEY, str(cursor))
                c.execute("DELETE FROM health_feed WHERE id <= ?", (cursor,))
                c.execute("DELETE FROM live_slices WHERE second < ?", (slices_before,))
                c.execute("DELETE FROM workers WHERE session != ?", (session,))
        self.store.run(tx)


def _overrides(c: sqlite3.Connection, session: str) -> dict[str, Any] | None:
    raw = _meta(c, OVERRIDES_KEY)
    found = orjson.loads(raw) if raw else None
    return found if found and found.get("session") == session else None


def _workers(c: sqlite3.Connection, session: str) -> list[dict[str, Any]]:
    rows = c.execute("SELECT data FROM workers WHERE session = ? ORDER BY slot, seen_at",
                     (session,)).fetchall()
    return [orjson.loads(r[0]) for r in rows]


__all__ = ["SharedRead", "SharedTables", "SliceRow"]
