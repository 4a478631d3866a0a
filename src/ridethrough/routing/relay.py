"""Upstream SSE events → client frames, plus what the executor must know about each event.

Same format in and out forwards each frame's original bytes (passthrough); across formats
the translators of ``protocols.translate`` rewrite events into chunks or back. Either way
every event is inspected for the three facts the commit point and health depend on: did
content arrive, did the stream end properly, did an in-band error arrive.
"""

from __future__ import annotations

from typing import Any

import orjson

from ridethrough.errors import ErrorClass, UpstreamError
from ridethrough.protocols import anthropic as A
from ridethrough.protocols import openai as O
from ridethrough.protocols.sse import DONE, SSEEvent, encode_data, encode_event
from ridethrough.providers.anthropic import classify_anthropic_event
from ridethrough.providers.openai import classify_openai_chunk_error


class StreamRelay:
    __slots__ = (
        "_acc",
        "_model",
        "_translator",
        "client_fmt",
        "content_seen",
        "strip_usage",
        "terminal_seen",
        "upstream_fmt",
        "usage",
    )

    def __init__(self, upstream_fmt: str, client_fmt: str, *, model: str,
                 client_include_usage: bool, strip_usage: bool, accumulate: bool) -> None:
        self.upstream_fmt = upstream_fmt
        self.client_fmt = client_fmt
        self.strip_usage = strip_usage
        self.content_seen = False
        self.terminal_seen = False
        self.usage: dict[str, Any] = {}
        self._model = model
        self._translator: Any = None
        if upstream_fmt != client_fmt:
            from ridethrough.protocols import translate

            if client_fmt == "anthropic":
                self._translator = translate.OpenAIToAnthropicStream(model)
            else:
                self._translator = translate.AnthropicToOpenAIStream(
                    model, include_usage=client_include_usage)
        self._acc: Any = None
        if accumulate:
            from ridethrough.protocols import accumulate as acc

            self._acc = acc.AnthropicAccumulator() if client_fmt == "anthropic" else acc.OpenAIAccumulator()

    # -- the one entry point ---------------------------------------------------------------

    def feed(self, ev: SSEEvent) -> list[bytes]:
        if ev.event == "comment":
            return []  # upstream keep-alives; we send our own
        if self.upstream_fmt == "anthropic":
            return self._feed_anthropic(ev)
        return self._feed_openai(ev)

    def finish(self) -> list[bytes]:
        """Called when the upstream stream ended; emits what translators still owe."""
        if self._translator is None:
            return []
        return self._encode(self._translator.finish())

    @property
    def accumulated(self) -> dict[str, Any] | None:
        if self._acc is None or not self.terminal_seen:
            return None
        return self._acc.result()

    # -- per upstream format ---------------------------------------------------------------

    def _data(self, ev: SSEEvent) -> Any:
        try:
            return ev.json()
        except orjson.JSONDecodeError:
            raise UpstreamError(ErrorClass.MALFORMED, "upstream sent an unparseable SSE frame") from None

    def _feed_anthropic(self, ev: SSEEvent) -> list[bytes]:
        data = self._data(ev)
        name = ev.event or (data.get("type") if isinstance(data, dict) else None)
        if not isinstance(data, dict):
            raise UpstreamError(ErrorClass.MALFORMED, "upstream SSE frame is not an object")
        if name == "error":
            raise classify_anthropic_event(data)
        if not self.content_seen and A.is_content_event(name, data):
            self.content_seen = True
        if name == "message_start":
            self.usage.update((data.get("message") or {}).get("usage") or {})
        elif name == "message_delta":
            self.usage.update(data.get("usage") or {})
        elif name == "message_stop":
            self.terminal_seen = True
        if self._translator is not None:
            return self._encode(self._translator.feed(name, data))
        if self._acc is not None and name != "ping":
            self._acc.feed(name, data)
        return [ev.raw]

    def _feed_openai(self, ev: SSEEvent) -> list[bytes]:
        if ev.is_done:
            self.terminal_seen = True
            if self._translator is not None:
                return self._encode(self._translator.finish())
            if self._acc is not None:
                self._acc.done()
            return [ev.raw]
        data = self._data(ev)
        if not isinstance(data, dict):
            raise UpstreamError(ErrorClass.MALFORMED, "upstream chunk is not an object")
        if data.get("error") is not None:
            raise classify_openai_chunk_error(data)
        if not self.content_seen and O.is_content_chunk(data):
            self.content_seen = True
        if data.get("usage"):
            self.usage.update(data["usage"])
            if self.strip_usage and not data.get("choices"):
                return []  # we asked for usage; the client did not
        if self._translator is not None:
            return self._encode(self._translator.feed(data))
        if self._acc is not None:
            self._acc.feed(data)
        return [ev.raw]

    def _encode(self, items: list[Any]) -> list[bytes]:
        out: list[bytes] = []
        for item in items:
            if self.client_fmt == "anthropic":
                name, data = item
                if self._acc is not None:
                    self._acc.feed(name, data)
                out.append(encode_event(name, data))
            elif item == DONE:
                if self._acc is not None:
                    self._acc.done()
                out.append(encode_data(DONE))
            else:
                if self._acc is not None:
                    self._acc.feed(item)
                out.append(encode_data(item))
        return out


def in_band_error_frame(client_fmt: str, error_type: str, message: str) -> bytes:
    """How a failure after commit reaches the client: a proper in-band error event."""
    if client_fmt == "anthropic":
        return encode_event("error", {"type": "error", "error": {"type": error_type, "message": message}})
    return encode_data({"error": {"message": message, "type": error_type, "param": None,
                                  "code": error_type}})
