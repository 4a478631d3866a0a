"""Which worker judges: an exclusive ``flock`` on a file next to the health store.

Incidents must be opened, updated and resolved by exactly one process at a time, or two
workers would open two incidents for one outage and send every webhook twice. The kernel
already has the right primitive: ``flock`` is held by an open file, released when the
process closes it or dies (even by SIGKILL), and never leaks past its holder — so "the
leader died, another takes over" needs no heartbeat, lease or clock. No home-made
consensus (design decision 7); across machines this becomes a Redis lock.

Each worker calls ``try_acquire`` every tick; the holder's call is a cheap check that the
file it holds is still the one at ``path`` (someone may have deleted the data dir).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading

log = logging.getLogger("ridethrough.health")


class LeaderLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._warned = False
        self._mutex = threading.Lock()   # ticks run in worker threads; one at a time here

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """True if this process holds the lock now (never blocks)."""
        with self._mutex:
            return self._try_acquire()

    def _try_acquire(self) -> bool:
        if self._fd is not None:
            if self._still_at_path():
                return True
            log.warning("leader lock %s was deleted or replaced; electing again", self.path)
            self._release()
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            if not self._warned:
                log.error("cannot open leader lock %s: %s (this worker will not lead)",
                          self.path, e)
                self._warned = True
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: another worker leads
            os.close(fd)
            return False
        try:  # for an operator wondering who leads: `cat health.leader.lock`
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        self._fd = fd
        self._warned = False
        return True

    def release(self) -> None:
        with self._mutex:
            self._release()

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            pass
        os.close(fd)

    def _still_at_path(self) -> bool:
        assert self._fd is not None
        try:
            mine, there = os.fstat(self._fd), os.stat(self.path)
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def lock_path_for(store_path: str) -> str:
    """``<data_dir>/health.leader.lock``, beside ``health.sqlite3``."""
    return os.path.join(os.path.dirname(os.path.abspath(store_path)), "health.leader.lock")
