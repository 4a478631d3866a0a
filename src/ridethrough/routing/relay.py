"""Upstream SSE events → client frames, plus what the executor must know about each event.

Same format in and out forwards each frame's original bytes (passthrough); across formats
the translators of ``protocols.translate`` rewrite events into chunks or back. Either way
every event is inspected for the facts the commit point and health depend on: did content
arrive, did the stream end — by its terminator, or complete by meaning when the connection
closed without it — did an in-band error arrive. A frame that does not parse is dropped and
counted, not fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from ridethrough.errors import ErrorClass, UpstreamError
from ridethrough.protocols import anthropic as A
from ridethrough.protocols import openai as O
from ridethrough.protocols.accumulate import AnthropicAccumulator, OpenAIAccumulator
from ridethrough.protocols.splice import AnthropicSplicer, AnthropicView, OpenAISplicer, OpenAIView
from ridethrough.protocols.sse import DONE, SSEEvent, encode_data, encode_event

log = logging.getLogger("ridethrough.relay")


MAX_MALFORMED_FRAMES = 16  # past this many unreadable frames the stream is not worth reading


class StreamRelay:
    """One upstream stream → the client's frames. ``view`` (continuation on) records what
    the client received; ``splicer`` (a continuation's relay) rewrites this stream's frames so
    they continue the client's earlier stream."""

    __slots__ = (
        "_acc",
        "_blocks_open",
        "_choices",
        "_classify",
        "_finished",
        "_model",
        "_stop_reason",
        "_translator",
        "client_fmt",
        "client_include_usage",
        "content_seen",
        "ended_without_terminator",
        "malformed",
        "splicer",
        "strip_usage",
        "terminal_seen",
        "upstream_fmt",
        "usage",
        "usage_seen",
        "view",
    )

    def __init__(self, upstream_fmt: str, client_fmt: str, *, model: str,
                 client_include_usage: bool, strip_usage: bool, accumulate: bool,
                 classify: Callable[[dict[str, Any]], UpstreamError],
                 view: AnthropicView | OpenAIView | None = None,
                 splicer: AnthropicSplicer | OpenAISplicer | None = None) -> None:
        self.upstream_fmt = upstream_fmt
        self.client_fmt = client_fmt
        self.client_include_usage = client_include_usage
        self.strip_usage = strip_usage
        self.content_seen = False
        self.terminal_seen = False
        self.ended_without_terminator = False
        self.malformed = 0
        self.usage: dict[str, Any] = {}
        self.usage_seen = False
        self.view = view
        self.splicer = splicer
        self._classify = classify  # the upstream provider's reading of an in-band error
        self._model = model
        # What "complete by meaning" needs: Anthropic's stop reason with every block closed;
        # OpenAI's finish reason on every choice seen.
        self._stop_reason = False
        self._blocks_open: set[Any] = set()
        self._choices: set[int] = set()
        self._finished: set[int] = set()
        self._translator: Any = None
        if upstream_fmt != client_fmt:
            from ridethrough.protocols import translate

            if client_fmt == "anthropic":
                self._translator = translate.OpenAIToAnthropicStream(model)
            else:
                self._translator = translate.AnthropicToOpenAIStream(
                    model, include_usage=client_include_usage)
        self._acc: AnthropicAccumulator | OpenAIAccumulator | None = None
        if accumulate:
            self._acc = AnthropicAccumulator() if client_fmt == "anthropic" else OpenAIAccumulator()

    # -- the entry points --------------------------------------------------------------------

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
        return self._client(self._translator.finish())

    def end_of_stream(self) -> list[bytes] | None:
        """The upstream closed before its terminator. If the answer is complete by meaning —
        every OpenAI choice has its finish reason (and the usage chunk, if the client asked
        for it); Anthropic's ``message_delta`` stop reason came with every block closed — the
        frames that end the client's stream properly (``[DONE]``, ``message_stop``). Else None:
        the stream was cut."""
        if self.terminal_seen:
            return self.finish()
        if self.upstream_fmt == "anthropic":
            complete = self._stop_reason and not self._blocks_open
        else:
            complete = bool(self._choices) and self._choices <= self._finished and (
                self.usage_seen or not self.client_include_usage)
        if not complete:
            return None
        self.terminal_seen = True
        self.ended_without_terminator = True
        if self.upstream_fmt == "anthropic":
            stop = {"type": "message_stop"}
            if self._translator is not None:
                return self._client(self._translator.feed("message_stop", stop))
            return self._client([("message_stop", stop)])
        if self._translator is not None:
            return self._client(self._translator.finish())
        return self._client([DONE])

    @property
    def accumulated(self) -> dict[str, Any] | None:
        if self._acc is None or not self.terminal_seen:
            return None
        return self._acc.result()

    # -- per upstream format ---------------------------------------------------------------

    def _data(self, ev: SSEEvent) -> dict[str, Any] | None:
        """The frame's JSON object, or None for a malformed frame: it is dropped and counted
        (a provider's one bad frame must not cost the client the answer); too many fail."""
        try:
            data = ev.json()
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return data
        self.malformed += 1
        log.warning("dropped a malformed upstream SSE frame (%d so far in this stream)", self.malformed)
        if self.malformed > MAX_MALFORMED_FRAMES:
            raise UpstreamError(ErrorClass.MALFORMED, f"upstream sent {self.malformed} unreadable "
                                                      "SSE frames")
        return None

    def _feed_anthropic(self, ev: SSEEvent) -> list[bytes]:
        data = self._data(ev)
        if data is None:
            return []
        name = ev.event or data.get("type")
        if name == "error":
            raise self._classify(data)
        if not self.content_seen and A.is_content_event(name, data):
            self.content_seen = True
        if name == "content_block_start":
            self._blocks_open.add(data.get("index"))
        elif name == "content_block_stop":
            self._blocks_open.discard(data.get("index"))
        elif name == "message_start":
            self.usage.update((data.get("message") or {}).get("usage") or {})
        elif name == "message_delta":
            self.usage.update(data.get("usage") or {})
            self._stop_reason = self._stop_reason or bool((data.get("delta") or {}).get("stop_reason"))
        elif name == "message_stop":
            self.terminal_seen = True
        if self._translator is not None:
            return self._client(self._translator.feed(name, data))
        if name == "ping":
            return [] if self.splicer is not None else [ev.raw]
        return self._client([(name, data)], ev.raw)

    def _feed_openai(self, ev: SSEEvent) -> list[bytes]:
        if ev.is_done:
            self.terminal_seen = True
            if self._translator is not None:
                return self._client(self._translator.finish())
            return self._client([DONE], ev.raw)
        data = self._data(ev)
        if data is None:
            return []
        if data.get("error") is not None:
            raise self._classify(data)
        if not self.content_seen and O.is_content_chunk(data):
            self.content_seen = True
        for choice in data.get("choices") or ():
            index = choice.get("index") or 0
            self._choices.add(index)
            if choice.get("finish_reason"):
                self._finished.add(index)
        if data.get("usage"):
            self.usage.update(data["usage"])
            self.usage_seen = True
            if self.strip_usage and not data.get("choices"):
                return []  # we asked for usage; the client did not
        if self._translator is not None:
            return self._client(self._translator.feed(data))
        return self._client([data], ev.raw)

    def _client(self, items: list[Any], raw: bytes | None = None) -> list[bytes]:
        """Client-format items out: spliced (a continuation), recorded (the continuation view,
        the cache's accumulator), encoded — or their original bytes, when passed through."""
        if self.splicer is not None:
            items = [out for item in items for out in self._splice(item)]
            raw = None
        out: list[bytes] = []
        view, acc = self.view, self._acc
        if self.client_fmt == "anthropic":
            for name, data in items:
                if isinstance(view, AnthropicView):
                    view.observe(name, data)
                if isinstance(acc, AnthropicAccumulator):
                    acc.feed(name, data)
                out.append(raw if raw is not None else encode_event(name, data))
            return out
        for item in items:
            if isinstance(view, OpenAIView):
                view.observe(item)
            if item == DONE:
                if isinstance(acc, OpenAIAccumulator):
                    acc.done()
                out.append(raw if raw is not None else encode_data(DONE))
            else:
                if isinstance(acc, OpenAIAccumulator):
                    acc.feed(item)
                out.append(raw if raw is not None else encode_data(item))
        return out

    def _splice(self, item: Any) -> list[Any]:
        if isinstance(self.splicer, AnthropicSplicer):
            return list(self.splicer.feed(*item))
        assert self.splicer is not None
        return self.splicer.feed(item)
