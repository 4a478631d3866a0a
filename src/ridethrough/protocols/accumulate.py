"""Stream -> final object, so a streamed answer can be cached and its usage logged.

The gateway forwards stream frames as they arrive and feeds a copy here. The result is the
object the non-streaming API would have returned, so the cache stores one shape for both
modes (``synthesize`` turns it back into a stream on replay). ``complete`` and ``error`` are
what keep a truncated or in-band-failed stream from being cached or logged as a success.

Pure state machines: no I/O. Tool arguments are parsed with the same lenient decoder as the
translators, so a small model's broken JSON is kept under ``_raw_arguments``, never raised.
"""

from __future__ import annotations

import copy
from typing import Any

from .translate_response import decode_tool_arguments

__all__ = ["AnthropicAccumulator", "OpenAIAccumulator"]

JSON = dict[str, Any]


class AnthropicAccumulator:
    """Anthropic ``(event, data)`` pairs -> a ``Message`` object."""

    def __init__(self) -> None:
        self._message: JSON | None = None
        self._blocks: dict[int, JSON] = {}
        self._json: dict[int, list[str]] = {}
        self._complete = False
        self.error: JSON | None = None
        """The ``error`` object of an in-band ``error`` event, if one arrived."""

    def feed(self, event: str, data: JSON) -> None:
        kind = data.get("type") or event
        if kind == "message_start":
            self._message = copy.deepcopy(data.get("message") or {})
            self._message.setdefault("usage", {})
        elif kind == "error":
            self.error = data.get("error") or data
        elif self._message is None:
            return  # ping before message_start, or a stream that never started
        elif kind == "content_block_start":
            index = data.get("index", len(self._blocks))
            self._blocks[index] = copy.deepcopy(data.get("content_block") or {})
        elif kind == "content_block_delta":
            self._apply_delta(data.get("index", 0), data.get("delta") or {})
        elif kind == "content_block_stop":
            self._finish_tool_input(data.get("index", 0))
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            for key, value in delta.items():
                self._message[key] = value
            for key, value in (data.get("usage") or {}).items():
                if value is not None:  # cumulative totals: overwrite, but omitted keys survive
                    self._message["usage"][key] = value
        elif kind == "message_stop":
            self._complete = True

    def _apply_delta(self, index: int, delta: JSON) -> None:
        block = self._blocks.get(index)
        if block is None:
            return
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = (block.get("text") or "") + (delta.get("text") or "")
        elif kind == "input_json_delta":
            self._json.setdefault(index, []).append(delta.get("partial_json") or "")
        elif kind == "thinking_delta":
            block["thinking"] = (block.get("thinking") or "") + (delta.get("thinking") or "")
        elif kind == "signature_delta":
            block["signature"] = delta.get("signature") or ""
        elif kind == "citations_delta":
            block["citations"] = [*(block.get("citations") or []), delta.get("citation")]

    def _finish_tool_input(self, index: int) -> None:
        fragments = self._json.pop(index, None)
        block = self._blocks.get(index)
        if block is not None and fragments is not None and "".join(fragments).strip():
            block["input"] = decode_tool_arguments("".join(fragments))

    @property
    def complete(self) -> bool:
        """``message_stop`` was seen: the answer is whole and may be cached."""
        return self._complete

    @property
    def has_content(self) -> bool:
        """Anything a user would see: text, a tool call, or thinking."""
        for block in self._blocks.values():
            kind = block.get("type")
            if kind == "text" and block.get("text"):
                return True
            if kind == "thinking" and block.get("thinking"):
                return True
            if kind not in ("text", "thinking"):
                return True
        return False

    @property
    def usage(self) -> JSON:
        return dict((self._message or {}).get("usage") or {})

    def result(self) -> JSON:
        """The ``Message`` so far (complete only if ``complete``); tool inputs parsed."""
        for index in list(self._json):
            self._finish_tool_input(index)
        message = copy.deepcopy(self._message or {"type": "message", "role": "assistant"})
        message["content"] = [copy.deepcopy(self._blocks[i]) for i in sorted(self._blocks)]
        return message


class OpenAIAccumulator:
    """OpenAI chunk dicts -> a ``chat.completion`` object; call ``done()`` on ``[DONE]``."""

    def __init__(self) -> None:
        self._head: JSON = {}
        self._choices: dict[int, JSON] = {}
        self._usage: JSON | None = None
        self._complete = False
        self.error: JSON | None = None
        """The ``error`` object of an in-band error chunk, if one arrived."""

    def feed(self, chunk: JSON) -> None:
        if chunk.get("error"):
            self.error = chunk["error"]
            return
        for key in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if chunk.get(key) is not None and key not in self._head:
                self._head[key] = chunk[key]
        for choice in chunk.get("choices") or []:
            self._apply_choice(choice)
        if chunk.get("usage"):
            self._usage = chunk["usage"]

    def _apply_choice(self, choice: JSON) -> None:
        index = choice.get("index") or 0
        state = self._choices.setdefault(
            index,
            {
                "content": [],
                "refusal": [],
                "reasoning": [],
                "tools": {},
                "finish": None,
                "last_tool": None,
            },
        )
        delta = choice.get("delta") or {}
        if delta.get("content"):
            state["content"].append(delta["content"])
        if delta.get("refusal"):
            state["refusal"].append(delta["refusal"])
        for key in ("reasoning_content", "reasoning"):
            if delta.get(key):
                state["reasoning"].append(delta[key])
        for call in delta.get("tool_calls") or []:
            self._apply_tool_call(state, call)
        if choice.get("finish_reason"):
            state["finish"] = choice["finish_reason"]

    @staticmethod
    def _apply_tool_call(state: JSON, call: JSON) -> None:
        tools: dict[Any, JSON] = state["tools"]
        function = call.get("function") or {}
        key = call.get("index")
        if key is None:  # whole calls without index (Gemini, Ollama)
            if call.get("id"):
                key = ("id", call["id"])
            elif function.get("name"):  # a name only comes with a call's first fragment
                key = ("unnamed", len(tools))
            else:
                key = state.get("last_tool")
        state["last_tool"] = key
        entry = tools.setdefault(key, {"id": None, "name": "", "arguments": []})
        if call.get("id") and not entry["id"]:
            entry["id"] = call["id"]
        name = function.get("name")
        if name and name != entry["name"]:
            entry["name"] += name  # fragments append; a server repeating the name is ignored
        if function.get("arguments"):
            entry["arguments"].append(function["arguments"])

    def done(self) -> None:
        """The upstream sent ``[DONE]``."""
        self._complete = True

    @property
    def complete(self) -> bool:
        return self._complete

    @property
    def has_content(self) -> bool:
        return any(
            state["content"] or state["refusal"] or state["tools"] or state["reasoning"]
            for state in self._choices.values()
        )

    @property
    def usage(self) -> JSON:
        return dict(self._usage or {})

    def result(self) -> JSON:
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            calls = [
                {
                    "id": entry["id"] or "",
                    "type": "function",
                    "function": {"name": entry["name"], "arguments": "".join(entry["arguments"])},
                }
                for entry in state["tools"].values()
            ]
            text = "".join(state["content"])
            message: JSON = {
                "role": "assistant",
                "content": text if text or not (calls or state["refusal"]) else None,
                "refusal": "".join(state["refusal"]) or None,
            }
            if calls:
                message["tool_calls"] = calls
            if state["reasoning"]:
                message["reasoning_content"] = "".join(state["reasoning"])
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "finish_reason": state["finish"],
                    "logprobs": None,
                }
            )
        result: JSON = {
            "id": self._head.get("id", ""),
            "object": "chat.completion",
            "created": self._head.get("created", 0),
            "model": self._head.get("model", ""),
            "choices": choices,
            "usage": self._usage,
        }
        for key in ("system_fingerprint", "service_tier"):
            if key in self._head:
                result[key] = self._head[key]
        return result
