"""Final object -> a proper stream, for answers that were never streamed from upstream.

A cache hit, a static fallback answer or a non-streaming local model still has to reach a
client that asked for ``stream: true``, and the client's SDK accumulates that stream with
strict rules (event order, one-time ``id``/``name``/``role`` fields, parseable tool JSON). The
events built here follow exactly the grammar the providers emit, so the SDK rebuilds the
same object that went in; ``with_fresh_ids`` keeps replayed answers from sharing ids.

Pure functions: no I/O, no pacing (the caller decides how fast to send).
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from .translate_response import new_id

__all__ = ["anthropic_message_to_events", "openai_completion_to_chunks", "with_fresh_ids"]

JSON = dict[str, Any]
Event = tuple[str, JSON]
DONE = "[DONE]"
_MIN_PIECE = 32
_MAX_PIECES = 8


def split_for_stream(text: str) -> list[str]:
    """A few pieces (at most about eight), cut after a space or comma.

    Cutting there never splits a JSON escape sequence (``\\n``, ``\\u00e9``) or a multi-byte
    character, so partial-JSON parsers in the SDKs see valid prefixes.
    """
    if not text:
        return []
    size = max(_MIN_PIECE, -(-len(text) // _MAX_PIECES))
    pieces: list[str] = []
    start = 0
    while start < len(text):
        cut = start + size
        if cut >= len(text):
            pieces.append(text[start:])
            break
        while cut < len(text) and text[cut - 1] not in " ,":
            cut += 1
        pieces.append(text[start:cut])
        start = cut
    return pieces


# ---------------------------------------------------------------------------------------------
# Anthropic


def anthropic_message_to_events(msg: JSON) -> list[Event]:
    """A ``Message`` -> ``message_start``, blocks (start, deltas, stop), ``message_delta``, stop."""
    usage = dict(msg.get("usage") or {})
    start_usage = {k: v for k, v in usage.items() if k != "output_tokens"}
    start_usage["output_tokens"] = 0
    head = {k: copy.deepcopy(v) for k, v in msg.items() if k not in ("content", "usage")}
    head.update(
        content=[],
        stop_reason=None,
        stop_sequence=None,
        usage=start_usage,
        type="message",
        role="assistant",
    )
    if "stop_details" in head:
        head["stop_details"] = None
    events: list[Event] = [("message_start", {"type": "message_start", "message": head})]
    for index, block in enumerate(msg.get("content") or []):
        events += _block_events(index, block)
    delta: JSON = {"stop_reason": msg.get("stop_reason"), "stop_sequence": msg.get("stop_sequence")}
    if msg.get("stop_details") is not None:
        delta["stop_details"] = msg["stop_details"]
    usage.setdefault("output_tokens", 0)
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _block_events(index: int, block: JSON) -> list[Event]:
    kind = block.get("type")
    deltas: list[JSON] = []
    if kind == "text":
        start = {k: v for k, v in block.items() if k not in ("text", "citations")}
        start["text"] = ""
        deltas = [
            {"type": "text_delta", "text": p} for p in split_for_stream(block.get("text") or "")
        ]
        deltas += [{"type": "citations_delta", "citation": c} for c in block.get("citations") or []]
    elif kind in ("tool_use", "server_tool_use"):
        start = {**block, "input": {}}
        tool_input = block.get("input") or {}
        if tool_input:
            partial = json.dumps(tool_input, ensure_ascii=False, separators=(",", ":"))
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in split_for_stream(partial)
            ]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [
            {"type": "thinking_delta", "thinking": p}
            for p in split_for_stream(block.get("thinking") or "")
        ]
        deltas.append({"type": "signature_delta", "signature": block.get("signature") or ""})
    else:  # redacted_thinking, server tool results: sent whole, as the API does
        start = copy.deepcopy(block)
    events: list[Event] = [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
    ]
    events += [
        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        for d in deltas
    ]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


# ---------------------------------------------------------------------------------------------
# OpenAI


def openai_completion_to_chunks(resp: JSON, *, include_usage: bool) -> list[JSON | str]:
    """A ``chat.completion`` -> role, content, tool-call and finish chunks, usage, ``[DONE]``.

    ``id`` and ``name`` appear only on a tool call's first chunk and ``role`` only on the
    first: the OpenAI SDK concatenates every repeated string field.
    """
    base: JSON = {
        "id": resp.get("id") or new_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": resp.get("created") if resp.get("created") is not None else int(time.time()),
        "model": resp.get("model") or "",
    }
    for key in ("system_fingerprint", "service_tier"):
        if resp.get(key) is not None:
            base[key] = resp[key]

    def chunk(index: int, delta: JSON, finish_reason: str | None = None) -> JSON:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**base, "choices": [choice]}

    out: list[JSON | str] = []
    for choice in resp.get("choices") or []:
        index = choice.get("index") or 0
        message = choice.get("message") or {}
        content = message.get("content")
        out.append(
            chunk(index, {"role": "assistant", "content": "" if isinstance(content, str) else None})
        )
        for key in ("reasoning_content", "content", "refusal"):
            value = message.get(key)
            if isinstance(value, str):
                out += [chunk(index, {key: piece}) for piece in split_for_stream(value)]
        for k, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            first = {
                "index": k,
                "id": call.get("id") or new_id("call_"),
                "type": "function",
                "function": {"name": function.get("name") or "", "arguments": ""},
            }
            out.append(chunk(index, {"tool_calls": [first]}))
            for piece in split_for_stream(function.get("arguments") or ""):
                out.append(
                    chunk(index, {"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
                )
        out.append(chunk(index, {}, choice.get("finish_reason") or "stop"))
    if include_usage:
        zero = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        out.append({**base, "choices": [], "usage": copy.deepcopy(resp.get("usage") or zero)})
    out.append(DONE)
    return out


# ---------------------------------------------------------------------------------------------
# replay hygiene


def with_fresh_ids(obj: JSON, fmt: str) -> JSON:
    """A deep copy with a new message/completion id and new tool-call ids.

    A cached answer replayed twice must not hand two clients the same ``toolu_…``/``call_…``
    ids (agents key tool results by them). References inside the copy (a server tool result's
    ``tool_use_id``) follow the renaming. ``fmt`` is ``"anthropic"`` or ``"openai"``.
    """
    out = copy.deepcopy(obj)
    if fmt == "anthropic":
        out["id"] = new_id("msg_")
        renamed: dict[str, str] = {}
        for block in out.get("content") or []:
            if block.get("type") in ("tool_use", "server_tool_use") and block.get("id"):
                prefix = "srvtoolu_" if block["type"] == "server_tool_use" else "toolu_"
                fresh = new_id(prefix)
                renamed[block["id"]] = fresh
                block["id"] = fresh
        for block in out.get("content") or []:
            if block.get("tool_use_id") in renamed:
                block["tool_use_id"] = renamed[block["tool_use_id"]]
    elif fmt == "openai":
        out["id"] = new_id("chatcmpl-")
        out["created"] = int(time.time())
        for choice in out.get("choices") or []:
            for call in (choice.get("message") or {}).get("tool_calls") or []:
                call["id"] = new_id("call_")
    else:
        raise ValueError(f"unknown format {fmt!r}; expected 'anthropic' or 'openai'")
    return out
