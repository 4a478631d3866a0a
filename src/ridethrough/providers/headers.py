"""Which upstream response headers reach the client, and how Retry-After is read.

Hop-by-hop headers and our framing headers are dropped; so are Retry-After, x-should-retry
and rate-limit headers, because ridethrough decides itself whether and when the client
should retry (the SDKs obey these headers, see protocols.md §3).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable

_DROP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "content-length", "content-encoding",
    "retry-after", "retry-after-ms", "x-should-retry", "set-cookie", "server", "date",
    "alt-svc", "via", "request-id", "x-request-id",
})


def filter_response_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in items:
        lk = k.lower()
        if lk in _DROP or "ratelimit" in lk or lk.startswith(("cf-", "x-envoy-")):
            continue
        out[lk] = v
    return out


def upstream_request_id(headers: dict[str, str]) -> str | None:
    return headers.get("request-id") or headers.get("x-request-id")


def parse_retry_after(headers: dict[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))
