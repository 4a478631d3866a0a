"""The supervisor with stand-in workers (real spawned processes that only signal "ready"):
a worker that dies is replaced, a signal stops them all, a worker that never starts makes
it give up instead of restarting forever."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

from ridethrough.supervisor import Supervisor

CTX = multiprocessing.get_context("spawn")


def ready_then_wait(slot: int, ready: Any) -> None:
    ready.set()
    time.sleep(600)          # SIGTERM's default action ends it


def fail_at_start(slot: int, ready: Any) -> None:
    sys.exit(3)


def starter(target: Any) -> Any:
    def start(slot: int, ready: Any) -> Any:
        p = CTX.Process(target=target, args=(slot, ready))
        p.start()
        return p
    return start


def wait_for(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise TimeoutError


def test_a_dead_worker_is_replaced_and_a_signal_stops_all() -> None:
    sup = Supervisor(2, starter(ready_then_wait), CTX.Event, stop_timeout_s=30)
    seen: dict[str, Any] = {}

    def ready_pids() -> set[int] | None:
        slots = list(sup.slots)
        if all(s.process is not None and s.ready is not None and s.ready.is_set() for s in slots):
            return {s.process.pid for s in slots}  # type: ignore[union-attr]
        return None

    def drive() -> None:
        try:
            first = wait_for(ready_pids)
            victim = sorted(first)[0]
            os.kill(victim, signal.SIGKILL)
            seen["after"] = wait_for(lambda: (p := ready_pids()) and victim not in p and p)
            seen["first"], seen["victim"] = first, victim
            seen["processes"] = [s.process for s in sup.slots]
        finally:
            os.kill(os.getpid(), signal.SIGTERM)   # what an operator (or systemd) sends

    threading.Thread(target=drive, daemon=True).start()
    assert sup.run() == 0
    assert len(seen["after"]) == 2 and seen["victim"] not in seen["after"]
    assert (seen["first"] - {seen["victim"]}) <= seen["after"]   # the other one was left alone
    assert all(not p.is_alive() for p in seen["processes"])


def test_a_worker_that_never_starts_makes_it_give_up() -> None:
    sup = Supervisor(2, starter(fail_at_start), CTX.Event, stop_timeout_s=10, max_start_failures=2)
    assert sup.run() == 1
    assert sup.alive() == []
