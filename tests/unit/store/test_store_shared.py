"""The worker tables: what each worker writes, what the leader reads and publishes."""

from __future__ import annotations

import threading
from pathlib import Path

from ridethrough.store import SharedTables, SqliteStore, StoreUnavailable


def row(instance: str, session: str = "run", slot: int = 0, seen_at: float = 100.0) -> dict:
    return {"instance": instance, "session": session, "slot": slot, "pid": 1, "seen_at": seen_at}


def incident(id_: str, created: float, resolved: float | None = None) -> dict:
    return {"id": id_, "subject": "provider:p", "status": "resolved" if resolved else "identified",
            "created_at": created, "updated_at": created, "resolved_at": resolved}


def test_the_leader_reads_only_slices_written_since_it_last_asked(tmp_path: Path) -> None:
    t = SharedTables(SqliteStore(str(tmp_path / "h.sqlite3")))
    t.exchange(row("w0"), [("route:r", 100, {"n": 1})], [], 100.0)
    t.exchange(row("w1", slot=1), [("route:r", 100, {"n": 2})], [], 100.0)
    first, seq = t.read_slices(after_seq=0)
    assert sorted((r.instance, r.data["n"]) for r in first) == [("w0", 1), ("w1", 2)]
    t.exchange(row("w0"), [("route:r", 100, {"n": 5}), ("route:r", 101, {"n": 1})], [], 101.0)
    t.exchange(row("w1", slot=1), [], [], 101.0)          # a tick with nothing new
    newer, seq2 = t.read_slices(after_seq=seq)
    assert sorted((r.second, r.data["n"]) for r in newer) == [(100, 5), (101, 1)]
    assert seq2 > seq and t.read_slices(after_seq=seq2)[0] == []
    everything, _ = t.read_slices(since_second=0)         # a new leader reads the whole window
    assert len(everything) == 3


def test_publishing_is_one_step_and_cleans_what_was_consumed(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "h.sqlite3"))
    t = SharedTables(store)
    t.exchange(row("old", session="earlier-run"), [("route:r", 10, {"n": 1})], [], 10.0)
    t.exchange(row("w0"), [("route:r", 500, {"n": 1})], [{"kind": "batch", "counts": {}}], 500.0)
    t.append_feed("w0", {"kind": "note"}, 500.0)
    feed = t.read_feed(0)
    assert [e["kind"] for _, e in feed] == ["batch", "note"]
    t.publish({"components": {}, "leader": {"slot": 0}}, [incident("i1", 400.0)], feed[0][0],
              slices_before=100, session="run")
    assert [e["kind"] for _, e in t.read_feed(0)] == ["note"]   # consumed rows gone
    snapshot, cursor = t.read_leader_state()
    assert snapshot == {"components": {}, "leader": {"slot": 0}} and cursor == feed[0][0]
    assert [r.second for r in t.read_slices(since_second=0)[0]] == [500]
    read = t.read_view("run")
    assert [w["instance"] for w in read.workers] == ["w0"]      # earlier runs' rows are gone
    assert [i["id"] for i in read.incidents] == ["i1"]
    assert store.load_incident("i1")["status"] == "identified"


def test_the_view_lists_recent_incidents_and_every_unresolved_one(tmp_path: Path) -> None:
    t = SharedTables(SqliteStore(str(tmp_path / "h.sqlite3")))
    old_open = incident("open", 1.0)
    resolved = [incident(f"r{i}", 100.0 + i, 200.0 + i) for i in range(60)]
    t.publish({}, [old_open, *resolved], 0, slices_before=0, session="run")
    ids = [i["id"] for i in t.read_view("run").incidents]
    assert len(ids) == 51 and "open" in ids and ids[0] == "r59"


def test_workers_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    path = str(tmp_path / "h.sqlite3")
    stores = [SqliteStore(path, busy_timeout_s=10.0) for _ in range(6)]
    start, errors = threading.Barrier(len(stores)), []

    def open_it(s: SqliteStore) -> None:
        start.wait()
        try:
            s.open()
            s.ping()
        except StoreUnavailable as e:
            errors.append(str(e))

    threads = [threading.Thread(target=open_it, args=(s,)) for s in stores]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    for s in stores:
        s.close()


def test_operator_overrides_reach_every_worker_of_the_run_and_only_that_run(tmp_path: Path) -> None:
    t = SharedTables(SqliteStore(str(tmp_path / "h.sqlite3")))
    assert t.exchange(row("w0"), [], [], 1.0) is None         # nothing forced yet
    t.set_override("run", "p/m", "down")
    t.set_override("run", "q/m", "up")
    seen = t.exchange(row("w1", slot=1), [], [], 2.0)
    assert seen is not None
    assert seen["targets"] == {"p/m": {"mode": "down", "v": 1}, "q/m": {"mode": "up", "v": 2}}
    after = t.set_override("run", "p/m", None)                 # back to automatic: kept, dated
    assert after["targets"]["p/m"] == {"mode": None, "v": 3}
    again = t.set_override("run", "q/m", "up")                 # a repeat is a new version
    assert again["targets"]["q/m"] == {"mode": "up", "v": 4}
    # a later run (new session) starts with no overrides, and its versions keep growing
    assert t.exchange(row("w0", session="next"), [], [], 3.0) is None
    fresh = t.set_override("next", "p/m", "down")
    assert fresh["targets"] == {"p/m": {"mode": "down", "v": 5}} and fresh["epoch"] == seen["epoch"]
