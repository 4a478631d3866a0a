"""Provider-shaped identifiers (``msg_…``, ``toolu_…``, ``chatcmpl-…``, ``req_…``).

Gateways log and correlate these, and some clients check their prefixes. They come from
a seeded sequence, so a simulator built with the same seed hands out the same ids in the
same order, which keeps golden recordings stable.
"""

from __future__ import annotations

import random
import string
import threading

__all__ = ["IdMint"]

_ALPHABET = string.ascii_letters + string.digits


class IdMint:
    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(f"ids:{seed}")
        self._lock = threading.Lock()

    def _token(self, length: int, alphabet: str = _ALPHABET) -> str:
        with self._lock:
            return "".join(self._rng.choice(alphabet) for _ in range(length))

    def anthropic_message(self) -> str:
        return "msg_01" + self._token(22)

    def anthropic_tool_use(self) -> str:
        return "toolu_01" + self._token(22)

    def anthropic_request(self) -> str:
        return "req_01" + self._token(22)

    def openai_completion(self) -> str:
        return "chatcmpl-" + self._token(29)

    def openai_tool_call(self) -> str:
        return "call_" + self._token(24)

    def openai_request(self) -> str:
        return "req_" + self._token(32, "0123456789abcdef")
