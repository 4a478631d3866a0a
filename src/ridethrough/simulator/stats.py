"""What reached the simulated provider: counters and the last raw requests.

Gateway tests need to see the provider's side of the wire: how many attempts a
failover made, which model was asked, whether a client header was passed through or a
key was injected. The server runs on its own loop (often in another thread), so
everything here is guarded by a lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["RecordedRequest", "SimStats"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as received: header names lower-cased, body as raw bytes."""

    path: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    query: str = ""

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class _Counts:
    total: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)


class SimStats:
    """Request counters. Admin (``/_sim``) requests are never counted.

    ``by_outcome`` keys: ``ok``, ``invalid_request``, ``authentication_error``,
    ``not_found``, or the ``FaultKind`` value of the fault that hit the request
    (``refuse`` counts requests that arrived on an already-open connection while the
    port was closed; they are reset).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c = _Counts()

    def record_request(self, path: str, model: str | None) -> None:
        with self._lock:
            self._c.total += 1
            self._c.by_path[path] += 1
            if model:
                self._c.by_model[model] += 1

    def record_outcome(self, outcome: str) -> None:
        with self._lock:
            self._c.by_outcome[outcome] += 1

    def reset(self) -> None:
        with self._lock:
            self._c = _Counts()

    @property
    def total(self) -> int:
        with self._lock:
            return self._c.total

    @property
    def by_path(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c.by_path)

    @property
    def by_model(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c.by_model)

    @property
    def by_outcome(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c.by_outcome)

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self._c.total,
                "by_path": dict(self._c.by_path),
                "by_model": dict(self._c.by_model),
                "by_outcome": dict(self._c.by_outcome),
            }
