"""What happened to one request: the access-log line, and the input of health tracking."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from ridethrough.errors import AttemptRecord

access_log = logging.getLogger("ridethrough.access")


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    route: str
    client_format: str
    stream: bool
    status: int
    outcome: str                     # ok | error | client_error | stream_error | cancelled
    attempts: list[AttemptRecord]
    served_by: str | None = None
    tier: str = "live"               # live | cache | stale | semantic | static
    ms: float = 0.0
    ttft_ms: float | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    key_id: str | None = None
    ts: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ts": round(self.ts, 3), "request_id": self.request_id, "route": self.route,
            "format": self.client_format, "stream": self.stream, "status": self.status,
            "outcome": self.outcome, "served_by": self.served_by, "tier": self.tier,
            "ms": round(self.ms, 1), "ttft_ms": round(self.ttft_ms, 1) if self.ttft_ms is not None else None,
            "attempts": [a.as_dict() for a in self.attempts],
            "tokens": {k: v for k, v in self.usage.items() if isinstance(v, int)},
            "key": self.key_id,
        }


def write_access_log(record: RequestRecord) -> None:
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(orjson.dumps(record.as_dict()).decode())
