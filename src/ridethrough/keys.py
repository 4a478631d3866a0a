"""Gateway and admin keys: stored as SHA-256 hashes, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ridethrough.config import GatewayKey


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(prefix: str = "rt") -> str:
    return f"{prefix}-{secrets.token_urlsafe(32)}"


def presented_key(headers: dict[str, str]) -> str | None:
    """The key a client sent, as ``x-api-key`` or ``Authorization: Bearer``."""
    k = headers.get("x-api-key")
    if k:
        return k.strip()
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


class KeyRing:
    def __init__(self, keys: list[GatewayKey]) -> None:
        self._keys = [(k.name, bytes.fromhex(k.sha256)) for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def identify(self, presented: str | None) -> str | None:
        """The name of the matching key, or None. Every stored hash is compared, always,
        so the time taken says nothing about which key (or how much of it) matched."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found: str | None = None
        for name, stored in self._keys:
            if hmac.compare_digest(digest, stored) and found is None:
                found = name
        return found
