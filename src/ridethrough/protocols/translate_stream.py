"""Anthropic <-> OpenAI, for streams: one upstream frame in, the client's frames out.

Both SDKs validate the event grammar as they accumulate (Anthropic's needs ``message_start``
first and sequential, never interleaved, block indices; OpenAI's concatenates every string
field of a delta, so ``id``/``name``/``role`` may appear only once). These state machines keep
that grammar whatever the upstream does, because a client whose stream accumulator throws
sees an outage even when the answer itself was fine.

Pure state machines: no I/O, no clock (``created`` is read once at construction if not given).
"""

from __future__ import annotations

import json
import time
from typing import Any

from .translate_response import (
    anthropic_error_status,
    anthropic_error_to_openai,
    anthropic_stop_to_openai,
    anthropic_usage_to_openai,
    decode_tool_arguments,
    encode_tool_input,
    new_id,
    openai_error_to_anthropic,
    openai_finish_to_anthropic,
    openai_usage_to_anthropic,
    safe_tool_id,
)

__all__ = ["DONE", "AnthropicToOpenAIStream", "OpenAIToAnthropicStream"]

JSON = dict[str, Any]
Event = tuple[str, JSON]
DONE = "[DONE]"


class OpenAIToAnthropicStream:
    """OpenAI ``chat.completion.chunk`` dicts in, Anthropic ``(event, data)`` pairs out.

    Tool-call arguments are held until their block closes and then sent as one
    ``input_json_delta``. Small open models stream invalid JSON, and the Anthropic SDK parses
    ``partial_json`` as it arrives and raises on the first bad byte; holding the arguments
    lets us repair them (or keep them under ``_raw_arguments``) before the client sees them.
    The ``content_block_start`` still goes out at once, so the client sees the call begin.

    Only choice 0 is translated (``n > 1`` is refused before the request is sent). Argument
    fragments for a tool call whose block is already closed cannot be re-opened in Anthropic's
    sequential grammar and are ignored; no known server interleaves tool calls that way.
    """

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.message_id = message_id or new_id("msg_")
        self._started = False
        self._complete = False
        self._next_index = 0
        self._open: str | None = None  # "text" | "tool_use" | None
        self._tool_key: Any = None  # tool_calls[].index of the open block (or an id key)
        self._tool_args: list[str] = []
        self._closed_tools: set[Any] = set()
        self._saw_tool = False
        self._refused = False
        self._finish_reason: str | None = None
        self._finish_seen = False
        self._usage: JSON | None = None

    @property
    def complete(self) -> bool:
        """``message_stop`` (or an ``error`` event) has been emitted."""
        return self._complete

    def feed(self, chunk: JSON) -> list[Event]:
        """One upstream chunk (the parsed ``data:`` JSON) -> the Anthropic events it completes."""
        if self._complete:
            return []
        if chunk.get("error"):
            self._complete = True
            body = openai_error_to_anthropic(chunk, 0)
            return [("error", body)]
        out = self._start()
        for choice in chunk.get("choices") or []:
            if (choice.get("index") or 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out += self._text(str(delta["content"]))
            if delta.get("refusal"):
                self._refused = True
                out += self._text(str(delta["refusal"]))
            for call in delta.get("tool_calls") or []:
                out += self._tool_fragment(call)
            if choice.get("finish_reason"):
                out += self._close_block()
                self._finish_reason = choice["finish_reason"]
                self._finish_seen = True
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        if self._finish_seen and self._usage is not None:
            out += self._end()
        return out

    def finish(self) -> list[Event]:
        """The upstream sent ``[DONE]``: close what is open and send what is still owed."""
        if self._complete:
            return []
        return self._start() + self._close_block() + self._end()

    # -- internals -----------------------------------------------------------------------

    def _start(self) -> list[Event]:
        if self._started:
            return []
        self._started = True
        message: JSON = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _open_block(self, block: JSON, kind: str) -> list[Event]:
        self._open = kind
        data = {"type": "content_block_start", "index": self._next_index, "content_block": block}
        return [("content_block_start", data)]

    def _close_block(self) -> list[Event]:
        if self._open is None:
            return []
        out: list[Event] = []
        index = self._next_index
        if self._open == "tool_use":
            partial = _valid_arguments(self._tool_args)
            if partial:
                out.append(_delta(index, {"type": "input_json_delta", "partial_json": partial}))
            self._closed_tools.add(self._tool_key)
            self._tool_key, self._tool_args = None, []
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        self._open = None
        self._next_index += 1
        return out

    def _text(self, text: str) -> list[Event]:
        out: list[Event] = []
        if self._open != "text":
            out += self._close_block()
            out += self._open_block({"type": "text", "text": ""}, "text")
        out.append(_delta(self._next_index, {"type": "text_delta", "text": text}))
        return out

    def _tool_fragment(self, call: JSON) -> list[Event]:
        function = call.get("function") or {}
        key = call.get("index")
        if key is None:  # Gemini's and Ollama's compat layers send whole calls without index
            if call.get("id"):
                key = ("id", call["id"])
            elif function.get("name"):  # a name only comes with a call's first fragment
                key = ("unnamed", self._next_index)
            else:
                key = self._tool_key
        out: list[Event] = []
        if self._open != "tool_use" or key != self._tool_key:
            if key in self._closed_tools:
                return []
            out += self._close_block()
            block: JSON = {
                "type": "tool_use",
                "id": safe_tool_id(call.get("id")),
                "name": function.get("name") or "",
                "input": {},
            }
            out += self._open_block(block, "tool_use")
            self._tool_key = key
            self._saw_tool = True
        if function.get("arguments"):
            self._tool_args.append(str(function["arguments"]))
        return out

    def _end(self) -> list[Event]:
        stop = openai_finish_to_anthropic(self._finish_reason, has_tool_calls=self._saw_tool)
        if self._refused and stop == "end_turn":
            stop = "refusal"
        usage = openai_usage_to_anthropic(self._usage) if self._usage else {"output_tokens": 0}
        self._complete = True
        return [
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": usage,
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]


def _delta(index: int, delta: JSON) -> Event:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def _valid_arguments(fragments: list[str]) -> str:
    """The joined arguments if they are a JSON object, else their repaired/wrapped form."""
    raw = "".join(fragments)
    if not raw.strip():
        return ""
    try:
        if isinstance(json.loads(raw), dict):
            return raw
    except ValueError:
        pass
    return json.dumps(decode_tool_arguments(raw), ensure_ascii=False, separators=(",", ":"))


class AnthropicToOpenAIStream:
    """Anthropic ``(event, data)`` in, OpenAI chunk dicts (and the string ``"[DONE]"``) out.

    ``thinking_delta`` becomes the non-standard ``delta.reasoning_content`` (what vLLM and
    llama.cpp send, and what OpenAI clients that show reasoning read); signatures, citations
    and ``ping`` have no OpenAI form. An in-band ``error`` becomes a ``{"error": …}`` chunk,
    which the OpenAI SDK raises on, so the failure is not mistaken for a short answer.
    """

    def __init__(
        self,
        model: str,
        *,
        include_usage: bool,
        completion_id: str | None = None,
        created: int | None = None,
    ) -> None:
        self.model = model
        self.include_usage = include_usage
        self.completion_id = completion_id or new_id("chatcmpl-")
        self.created = int(time.time()) if created is None else created
        self._tool_of_block: dict[int, int] = {}
        self._tool_has_arguments: set[int] = set()
        self._sent_text = False
        self._usage: JSON = {}
        self._finish_sent = False
        self._complete = False

    @property
    def complete(self) -> bool:
        """``[DONE]`` (or an error chunk) has been emitted."""
        return self._complete

    def feed(self, event: str, data: JSON) -> list[JSON | str]:
        """One upstream Anthropic event -> OpenAI chunk dicts, and ``"[DONE]"`` at the end."""
        if self._complete:
            return []
        kind = data.get("type") or event
        if kind == "message_start":
            self._merge_usage((data.get("message") or {}).get("usage"))
            # content null, as OpenAI opens a tool-call-only answer; text deltas fill it in.
            return [self._chunk({"role": "assistant", "content": None})]
        if kind == "content_block_start":
            return self._block_start(data.get("index", 0), data.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(data.get("index", 0), data.get("delta") or {})
        if kind == "content_block_stop":
            return self._block_stop(data.get("index", 0))
        if kind == "message_delta":
            self._merge_usage(data.get("usage"))
            stop = anthropic_stop_to_openai((data.get("delta") or {}).get("stop_reason"))
            return self._finish_chunks(stop)
        if kind == "message_stop":
            out = [] if self._finish_sent else self._finish_chunks("stop")
            self._complete = True
            return [*out, DONE]
        if kind == "error":
            self._complete = True
            error_type = (data.get("error") or {}).get("type")
            return [anthropic_error_to_openai(data, anthropic_error_status(error_type))]
        return []  # ping, unknown future events

    def finish(self) -> list[JSON | str]:
        """The upstream ended. Owes ``[DONE]`` only if the answer was complete.

        A stream cut before ``message_delta`` is truncated; inventing a finish reason would
        hide that, so nothing is emitted and ``complete`` stays false for the caller to act on.
        """
        if self._complete or not self._finish_sent:
            return []
        self._complete = True
        return [DONE]

    # -- internals -----------------------------------------------------------------------

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> JSON:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }

    def _merge_usage(self, usage: JSON | None) -> None:
        for key, value in (usage or {}).items():
            if value is not None:
                self._usage[key] = value

    def _block_start(self, index: int, block: JSON) -> list[JSON | str]:
        kind = block.get("type")
        if kind == "tool_use":
            tool_index = len(self._tool_of_block)
            self._tool_of_block[index] = tool_index
            tool_input = block.get("input")
            if tool_input:
                self._tool_has_arguments.add(index)
            call = {
                "index": tool_index,
                "id": block.get("id") or new_id("call_"),
                "type": "function",
                "function": {
                    "name": block.get("name") or "",
                    "arguments": encode_tool_input(tool_input, unwrap_raw=False)
                    if tool_input
                    else "",
                },
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            self._sent_text = True
            return [self._chunk({"content": block["text"]})]
        return []

    def _block_delta(self, index: int, delta: JSON) -> list[JSON | str]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            self._sent_text = True
            return [self._chunk({"content": delta["text"]})]
        if (
            kind == "input_json_delta"
            and delta.get("partial_json")
            and index in self._tool_of_block
        ):
            self._tool_has_arguments.add(index)
            call = {
                "index": self._tool_of_block[index],
                "function": {"arguments": delta["partial_json"]},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        return []

    def _block_stop(self, index: int) -> list[JSON | str]:
        """A tool call that got no input still needs ``"{}"``: clients ``json.loads`` it."""
        if index not in self._tool_of_block or index in self._tool_has_arguments:
            return []
        self._tool_has_arguments.add(index)
        call = {"index": self._tool_of_block[index], "function": {"arguments": "{}"}}
        return [self._chunk({"tool_calls": [call]})]

    def _finish_chunks(self, finish_reason: str) -> list[JSON | str]:
        if self._finish_sent:
            return []
        self._finish_sent = True
        out: list[JSON | str] = []
        if not self._sent_text and not self._tool_of_block:
            out.append(self._chunk({"content": ""}))  # an empty answer is "", not null
        out.append(self._chunk({}, finish_reason))
        if self.include_usage:
            usage_chunk = self._chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = anthropic_usage_to_openai(self._usage)
            out.append(usage_chunk)
        return out
