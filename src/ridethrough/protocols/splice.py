"""One answer from two streams: what a client has received, and a continuation spliced in.

When a committed stream dies (cut, stalled, an in-band error), the executor may ask another
target to continue the answer from the text the client already has (routing/continuation.py).
The client must then read *one* answer, which its SDK's accumulator checks as it goes:

- ``AnthropicView`` / ``OpenAIView`` record what the client has received, in its own format;
  ``cut()`` says whether the answer can be continued faithfully, and from what text.
- ``AnthropicSplicer`` / ``OpenAISplicer`` rewrite the continuation's client-format frames:
  its opening (``message_start``, the role chunk) is dropped; a text block it opens merges
  into the one left open; block and tool-call indices move past those already sent; ids stay
  the first stream's; usage becomes one total.

Not continuable (``NotContinuable``): thinking or reasoning already shown (a prefill cannot
carry it), a refusal, or a tool call whose arguments the client has begun to receive. A tool
call opened with no arguments yet is *restarted*: the continuation must open the same tool,
whose arguments then fill the open block.

Pure state machines: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ridethrough.errors import RidethroughError

__all__ = [
    "AnthropicSplicer",
    "AnthropicView",
    "Cut",
    "NotContinuable",
    "OpenAISplicer",
    "OpenAIView",
    "SpliceMismatch",
    "splicer_for",
    "view_for",
]

JSON = dict[str, Any]
Event = tuple[str, JSON]
DONE = "[DONE]"
_HEAD_KEYS = ("id", "created", "model", "system_fingerprint")


class NotContinuable(RidethroughError):
    """The answer so far cannot be continued faithfully; ``str(e)`` says why."""


class SpliceMismatch(RidethroughError):
    """The continuation does not fit what the client has (another tool than the one open)."""


@dataclass(frozen=True, slots=True)
class Cut:
    """Where the client's answer stopped, as a continuation request needs it."""

    prefill: str              # the answer's text so far, trailing whitespace removed
    pending_ws: str           # that whitespace: the client has it, the continuation repeats it
    restart_tool: str | None  # a tool call opened without arguments: restarted by this name
    output_tokens: int        # content deltas received (one token each in OpenAI-style streams)
    input_tokens: int | None  # the prompt, as the first target counted it (if it said)

    def usage(self, continuation_input: Any, continuation_output: Any) -> tuple[int, int]:
        """The one (input, output) total the client is told: the prompt as the first target
        counted it (else the continuation's, which also carried the partial answer, less
        that), and what was generated before the cut plus after it."""
        if self.input_tokens is not None:
            prompt = self.input_tokens
        else:
            prompt = max(0, int(continuation_input or 0) - self.output_tokens)
        return prompt, self.output_tokens + int(continuation_output or 0)


def _cut(text: list[str], restart_tool: str | None, deltas: int, input_tokens: int | None) -> Cut:
    joined = "".join(text)
    prefill = joined.rstrip()
    return Cut(prefill, joined[len(prefill):], restart_tool, deltas, input_tokens)


class _Whitespace:
    """Drops from the continuation's opening text the whitespace the client already has
    (a prefill may not end in whitespace, so the model writes it again)."""

    def __init__(self, pending: str) -> None:
        self.pending = len(pending)

    def strip(self, text: str) -> str:
        if not self.pending or not text:
            return text
        n = 0
        while n < len(text) and n < self.pending and text[n].isspace():
            n += 1
        self.pending = 0 if n < len(text) else self.pending - n
        return text[n:]


# -- Anthropic ---------------------------------------------------------------------------------


class AnthropicView:
    """What an Anthropic-format client has received."""

    def __init__(self) -> None:
        self.input_tokens: int | None = None
        self.text: list[str] = []
        self.deltas = 0
        self.open: tuple[int, str, str | None] | None = None  # index, block type, tool name
        self.open_has_args = False
        self.next_index = 0
        self.blocked: str | None = None

    def observe(self, name: str, data: JSON) -> None:
        kind = data.get("type") or name
        if kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            if isinstance(usage.get("input_tokens"), int) and usage["input_tokens"] > 0:
                self.input_tokens = usage["input_tokens"]
        elif kind == "content_block_start":
            index = data.get("index", self.next_index)
            block = data.get("content_block") or {}
            btype = block.get("type") or "text"
            self.open = (index, btype, block.get("name"))
            self.open_has_args = bool(block.get("input"))
            self.next_index = max(self.next_index, index + 1)
            if btype == "text" and block.get("text"):
                self.text.append(block["text"])
            elif btype not in ("text", "tool_use"):
                self.blocked = f"a {btype} block was sent"
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                self.text.append(delta.get("text") or "")
                self.deltas += 1
            elif dtype == "input_json_delta":
                if delta.get("partial_json"):
                    self.open_has_args = True
                self.deltas += 1
            elif dtype in ("thinking_delta", "signature_delta"):
                self.blocked = "thinking was sent"
            elif dtype == "citations_delta":
                self.blocked = "citations were sent"
        elif kind == "content_block_stop":
            if self.open is not None and self.open[1] == "tool_use":
                self.blocked = "a whole tool call was sent"
            self.open = None
        elif kind == "message_delta" and (data.get("delta") or {}).get("stop_reason"):
            self.blocked = "the answer had finished"

    def cut(self) -> Cut:
        if self.blocked:
            raise NotContinuable(self.blocked)
        restart = None
        if self.open is not None and self.open[1] == "tool_use":
            if self.open_has_args:
                raise NotContinuable("a tool call's arguments were partly sent")
            restart = self.open[2] or ""
        return _cut(self.text, restart, self.deltas, self.input_tokens)


class AnthropicSplicer:
    """A continuation's Anthropic events → the events that continue the client's stream."""

    def __init__(self, view: AnthropicView, cut: Cut) -> None:
        self._open = view.open          # a snapshot: the view goes on observing our output
        self._next = view.next_index
        self._cut = cut
        self._map: dict[int, int] = {}
        self._first = True
        self._ws = _Whitespace(cut.pending_ws)
        self.usage: JSON = {}         # the continuation's own, as its target counted it
        self.client_usage: JSON = {}  # the one total the client was sent

    def feed(self, name: str, data: JSON) -> list[Event]:
        kind = data.get("type") or name
        if kind == "message_start":
            self.usage.update((data.get("message") or {}).get("usage") or {})
            return []
        if kind == "ping":
            return []
        if kind == "content_block_start":
            return self._start(data.get("index", 0), data.get("content_block") or {})
        if kind == "content_block_delta":
            index = self._map.get(data.get("index", 0))
            if index is None:
                return []
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                text = self._ws.strip(delta.get("text") or "")
                if not text:
                    return []
                delta = {**delta, "text": text}
            return [(name, {**data, "index": index, "delta": delta})]
        if kind == "content_block_stop":
            index = self._map.get(data.get("index", 0))
            return [] if index is None else [(name, {**data, "index": index})]
        if kind == "message_delta":
            usage = {k: v for k, v in (data.get("usage") or {}).items() if v is not None}
            self.usage.update(usage)  # the continuation's own count (cumulative)
            prompt, usage["output_tokens"] = self._cut.usage(self.usage.get("input_tokens"),
                                                             usage.get("output_tokens"))
            if "input_tokens" in usage:
                usage["input_tokens"] = prompt
            self.client_usage = usage
            return [(name, {**data, "usage": usage})]
        return [(name, data)]  # message_stop, unknown future events

    def _start(self, index: int, block: JSON) -> list[Event]:
        out: list[Event] = []
        btype = block.get("type") or "text"
        if self._first:
            self._first = False
            if self._open is not None:
                open_index, open_type, open_name = self._open
                if open_type == "tool_use":
                    if btype != "tool_use" or block.get("name") != open_name:
                        raise SpliceMismatch(f"the continuation opened a {btype} block, not "
                                             f"the {open_name!r} tool call left open")
                    self._map[index] = open_index
                    return []
                if btype == "text":
                    self._map[index] = open_index
                    text = self._ws.strip(block.get("text") or "")
                    return [_text_delta(open_index, text)] if text else []
                out.append(("content_block_stop", {"type": "content_block_stop", "index": open_index}))
        self._map[index] = self._next
        self._next += 1
        if btype == "text" and block.get("text"):
            block = {**block, "text": self._ws.strip(block["text"])}
        out.append(("content_block_start",
                    {"type": "content_block_start", "index": self._map[index], "content_block": block}))
        return out


def _text_delta(index: int, text: str) -> Event:
    return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                    "delta": {"type": "text_delta", "text": text}})


# -- OpenAI ------------------------------------------------------------------------------------


class OpenAIView:
    """What an OpenAI-format client has received (choice 0: continuation refuses ``n > 1``)."""

    def __init__(self) -> None:
        self.head: JSON = {}
        self.text: list[str] = []
        self.deltas = 0
        self.tools: dict[int, list[Any]] = {}  # client index -> [name, arguments sent]
        self.input_tokens: int | None = None
        self.blocked: str | None = None

    def observe(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            return  # "[DONE]"
        for key in _HEAD_KEYS:
            if key not in self.head and chunk.get(key) is not None:
                self.head[key] = chunk[key]
        usage = chunk.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            self.input_tokens = usage["prompt_tokens"]
        for choice in chunk.get("choices") or ():
            if (choice.get("index") or 0) != 0:
                self.blocked = "the answer has several choices"
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.text.append(delta["content"])
                self.deltas += 1
            if delta.get("refusal"):
                self.blocked = "a refusal was sent"
            if delta.get("reasoning_content") or delta.get("reasoning"):
                self.blocked = "reasoning was sent"
            if choice.get("finish_reason"):
                # Finished, and cut before its usage chunk: nothing is left to continue.
                self.blocked = "the answer had finished"
            for call in delta.get("tool_calls") or ():
                entry = self.tools.setdefault(call.get("index") or 0, ["", False])
                function = call.get("function") or {}
                if function.get("name"):
                    entry[0] = function["name"]
                if function.get("arguments"):
                    entry[1] = True
                    self.deltas += 1

    def cut(self) -> Cut:
        if self.blocked:
            raise NotContinuable(self.blocked)
        if any(sent for _, sent in self.tools.values()):
            raise NotContinuable("a tool call's arguments were partly sent")
        if len(self.tools) > 1:
            raise NotContinuable("several tool calls were opened")
        restart = next((name for name, _ in self.tools.values()), None)
        return _cut(self.text, restart, self.deltas, self.input_tokens)


class OpenAISplicer:
    """A continuation's OpenAI chunks → chunks that continue the client's stream."""

    def __init__(self, view: OpenAIView, cut: Cut) -> None:
        self._head = dict(view.head)
        self._cut = cut
        self._open_tool = next(iter(view.tools), None) if cut.restart_tool is not None else None
        self._next_tool = max(view.tools, default=-1) + 1
        self._map: dict[int, int] = {}
        self._ws = _Whitespace(cut.pending_ws)
        self.usage: JSON = {}
        self.client_usage: JSON = {}

    def feed(self, chunk: Any) -> list[Any]:
        if not isinstance(chunk, dict) or chunk.get("error"):
            return [chunk]  # "[DONE]", or an in-band error the relay raises on anyway
        out = dict(chunk)
        for key, value in self._head.items():  # one answer: the first stream's id and model
            if key in chunk or key != "system_fingerprint":
                out[key] = value
        choices = []
        for choice in chunk.get("choices") or ():
            delta = dict(choice.get("delta") or {})
            delta.pop("role", None)
            if "content" in delta:
                text = self._ws.strip(delta["content"] or "")
                if text and self._open_tool is not None and not self._map:
                    raise SpliceMismatch("the continuation wrote text before restarting the "
                                         "open tool call")
                if text:
                    delta["content"] = text
                else:
                    del delta["content"]
            if delta.get("tool_calls"):
                delta["tool_calls"] = [self._tool(call) for call in delta["tool_calls"]]
            if delta or choice.get("finish_reason"):
                choices.append({**choice, "delta": delta})
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            out["usage"] = self._usage(usage)
        elif not choices:
            return []
        out["choices"] = choices
        return [out]

    def _tool(self, call: JSON) -> JSON:
        index = call.get("index") or 0
        if index not in self._map:
            name = (call.get("function") or {}).get("name")
            if self._open_tool is not None and not self._map:
                if name != self._cut.restart_tool:
                    raise SpliceMismatch(f"the continuation called {name!r}, not the "
                                         f"{self._cut.restart_tool!r} tool call left open")
                self._map[index] = self._open_tool
                # The client has this call's id and name already: only arguments follow.
                return {"index": self._open_tool,
                        "function": {"arguments": (call.get("function") or {}).get("arguments") or ""}}
            self._map[index] = self._next_tool
            self._next_tool += 1
        return {**call, "index": self._map[index]}

    def _usage(self, usage: JSON) -> JSON:
        self.usage = dict(usage)
        prompt, completion = self._cut.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        self.client_usage = {**usage, "prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}
        return self.client_usage


def view_for(client_fmt: str) -> AnthropicView | OpenAIView:
    return AnthropicView() if client_fmt == "anthropic" else OpenAIView()


def splicer_for(view: AnthropicView | OpenAIView, cut: Cut) -> AnthropicSplicer | OpenAISplicer:
    if isinstance(view, AnthropicView):
        return AnthropicSplicer(view, cut)
    return OpenAISplicer(view, cut)
