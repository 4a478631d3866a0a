"""``serve --workers N``: N gateway processes on one port, kept running, stopped together.

Each worker binds the port itself with ``SO_REUSEPORT`` (see ``server.run_worker``), so the
kernel spreads new connections over the workers that are listening, and a worker that dies
simply drops out of that set: the port stays up on the others while this supervisor starts
a replacement. The supervisor itself holds no listening socket — only a bound one that
reserves the port — so when every worker has closed its listener on SIGTERM, new
connections are refused at once (a load balancer moves on) rather than queueing in a
backlog nobody will accept.

Why not uvicorn's own ``workers=N``: its workers run a plain ``uvicorn.Server``, so our
SIGTERM hook (readiness goes 503 while streams finish) would not run, and its parent keeps
the shared listening socket open until the last worker exits, so connections made during
the drain wait unanswered instead of being refused.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

log = logging.getLogger("ridethrough.supervisor")

StartWorker = Callable[[int, Any], BaseProcess]   # (slot, ready event) → a started process
MAX_BACKOFF_S = 30.0


@dataclass(slots=True)
class _Slot:
    index: int
    process: BaseProcess | None = None
    ready: Any = None                  # multiprocessing Event the worker sets once listening
    failures: int = 0                  # deaths in a row before ever becoming ready
    start_at: float | None = 0.0       # monotonic time to (re)start at; None: do not


class Supervisor:
    """Start ``workers`` processes with ``start``; restart any that dies; stop all on a signal.

    A worker that dies after it was ready is replaced at once. One that dies before it ever
    got ready is retried with backoff, and after ``max_start_failures`` in a row the
    supervisor gives up (exit 1): a broken config or port fails the same way every time.
    """

    def __init__(self, workers: int, start: StartWorker, new_event: Callable[[], Any], *,
                 stop_timeout_s: float, max_start_failures: int = 5) -> None:
        self.slots = [_Slot(i) for i in range(workers)]
        self.start = start
        self.new_event = new_event
        self.stop_timeout_s = stop_timeout_s
        self.max_start_failures = max_start_failures
        self.stopping = False
        self.exit_code = 0
        self._signals = 0

    # -- signals ---------------------------------------------------------------------------

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.stopping = True
        self._signals += 1

    def run(self) -> int:
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        # The wakeup fd turns a signal into a readable pipe, so ``wait`` returns at once.
        old_fd = signal.set_wakeup_fd(w)
        old = {s: signal.signal(s, self._on_signal)
               for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            while not self.stopping:
                self._reap_and_start()
                if self.stopping:
                    break
                self._wait(r, self._next_timeout())
            return self._stop_all(r)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            signal.set_wakeup_fd(old_fd)
            os.close(r)
            os.close(w)

    # -- keeping N alive -------------------------------------------------------------------

    def _reap_and_start(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            p = slot.process
            if p is not None and not p.is_alive():
                p.join()
                ready = slot.ready is not None and slot.ready.is_set()
                slot.process = None
                if ready:
                    slot.failures = 0
                    slot.start_at = now
                    log.error("worker %d (pid %s) died (exit code %s); starting a replacement",
                              slot.index, p.pid, p.exitcode)
                else:
                    slot.failures += 1
                    if slot.failures >= self.max_start_failures:
                        log.error("worker %d failed to start %d times in a row (last exit code "
                                  "%s); stopping", slot.index, slot.failures, p.exitcode)
                        self.exit_code = 1
                        self.stopping = True
                        return
                    delay = min(MAX_BACKOFF_S, 0.5 * 2 ** (slot.failures - 1))
                    slot.start_at = now + delay
                    log.error("worker %d (pid %s) exited before it was ready (exit code %s); "
                              "retrying in %.1f s", slot.index, p.pid, p.exitcode, delay)
            if slot.process is None and slot.start_at is not None and now >= slot.start_at:
                slot.ready = self.new_event()
                slot.process = self.start(slot.index, slot.ready)
                slot.start_at = None
                log.info("worker %d started (pid %s)", slot.index, slot.process.pid)

    def _next_timeout(self) -> float:
        pending = [s.start_at for s in self.slots if s.process is None and s.start_at is not None]
        if not pending:
            return 1.0
        return max(0.0, min(min(pending) - time.monotonic(), 1.0))

    def _wait(self, wakeup: int, timeout: float) -> None:
        sentinels: list[Any] = [s.process.sentinel for s in self.slots if s.process is not None]
        wait([*sentinels, wakeup], timeout)
        try:
            while os.read(wakeup, 512):
                pass
        except BlockingIOError:
            pass

    def alive(self) -> list[BaseProcess]:
        return [s.process for s in self.slots if s.process is not None and s.process.is_alive()]

    # -- stopping --------------------------------------------------------------------------

    def _stop_all(self, wakeup: int) -> int:
        """SIGTERM every worker (each drains: readiness 503, streams get their grace), wait,
        then SIGKILL what is left. A second signal asks the workers to hurry (SIGINT twice is
        uvicorn's "exit now")."""
        seen = self._signals
        for p in self.alive():
            _kill(p, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        while self.alive() and time.monotonic() < deadline:
            self._wait(wakeup, min(1.0, max(0.0, deadline - time.monotonic())))
            if self._signals > seen:
                seen = self._signals
                for p in self.alive():
                    _kill(p, signal.SIGINT)
        for p in self.alive():
            log.error("worker pid %s did not stop within %.0f s; killing it", p.pid,
                      self.stop_timeout_s)
            _kill(p, signal.SIGKILL)
        for s in self.slots:
            if s.process is not None:
                s.process.join(10)
        return self.exit_code


def _kill(p: BaseProcess, sig: int) -> None:
    if p.pid is None:
        return
    try:
        os.kill(p.pid, sig)
    except ProcessLookupError:
        pass
