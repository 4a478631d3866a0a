"""Secrets out of error text, before it reaches a log, a client or the cache.

Providers echo part of a rejected key ("Incorrect API key provided: sk-proj-ab***wxyz"), and
error text travels to logs, to clients (in-band errors, the all-failed body) and to the
access log's attempt details. So anything key-shaped is cut out first, wherever the text is
produced: adapters redact what they read, the executor what it records.
"""

from __future__ import annotations

import re

__all__ = ["attempt_detail", "redact", "redact_text"]

_KEYISH = re.compile(rb"(sk|rt|key|pk)[-_][A-Za-z0-9_\-*]{6,}")


def redact(body: bytes, secret: str | None) -> bytes:
    if secret:
        body = body.replace(secret.encode(), b"[redacted]")
    return _KEYISH.sub(b"[redacted]", body)


def redact_text(text: str, secret: str | None) -> str:
    return redact(text.encode(), secret).decode("utf-8", "replace")


def attempt_detail(text: str) -> str:
    """An error's text as the access log and attempt records keep it: redacted, short."""
    return redact_text(text, None)[:200]
