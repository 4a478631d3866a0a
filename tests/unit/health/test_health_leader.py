"""The leader lock: exactly one holder, handed on when the holder goes — however it goes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ridethrough.health.leader import LeaderLock, lock_path_for

HOLD = """
import sys, time
from ridethrough.health.leader import LeaderLock
lock = LeaderLock(sys.argv[1])
print("held" if lock.try_acquire() else "refused", flush=True)
time.sleep(600)
"""


def test_one_holder_at_a_time_and_release_hands_over(tmp_path: Path) -> None:
    path = str(tmp_path / "health.leader.lock")
    a, b = LeaderLock(path), LeaderLock(path)   # two open files: flock sees two contenders
    assert a.try_acquire() and a.held
    assert not b.try_acquire() and not b.held
    assert a.try_acquire()                      # the holder keeps it, tick after tick
    assert Path(path).read_text().strip() == str(os.getpid())
    a.release()
    assert b.try_acquire() and not a.try_acquire()
    b.release()


def test_a_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "health.leader.lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        mine = LeaderLock(path)
        assert not mine.try_acquire()
        holder.send_signal(signal.SIGKILL)       # no clean-up code runs
        holder.wait(30)
        assert mine.try_acquire()
        mine.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)


def test_a_replaced_lock_file_is_noticed(tmp_path: Path) -> None:
    path = str(tmp_path / "health.leader.lock")
    a, b = LeaderLock(path), LeaderLock(path)
    assert a.try_acquire()
    os.unlink(path)                              # someone cleaned the data dir
    assert b.try_acquire()                       # a new file, a new holder …
    assert not a.try_acquire() and not a.held    # … and the old one steps down on its next tick
    b.release()


def test_the_lock_lives_beside_the_store(tmp_path: Path) -> None:
    assert lock_path_for(str(tmp_path / "health.sqlite3")) == str(tmp_path / "health.leader.lock")
