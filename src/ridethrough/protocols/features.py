"""What a request needs from a target — tools, images, JSON mode, context — for planning.

Token counts here are a conservative estimate (no tokenizer may be downloaded at run time):
about 3 characters per token, which over-counts English so a small-window target is
skipped rather than overflowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

CHARS_PER_TOKEN = 3.0


@dataclass(frozen=True, slots=True)
class RequestFeatures:
    tools: bool
    images: bool
    json_mode: bool
    estimated_input_tokens: int
    max_output_tokens: int


def estimate_tokens(obj: Any) -> int:
    text = obj if isinstance(obj, str) else orjson.dumps(obj).decode()
    return int(len(text) / CHARS_PER_TOKEN) + 4


def _has_image_anthropic(messages: list[Any]) -> bool:
    for m in messages:
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, list):
            for b in c:
                if isinstance(b, dict):
                    if b.get("type") in ("image", "document"):
                        return True
                    if b.get("type") == "tool_result" and isinstance(b.get("content"), list) and any(
                            isinstance(x, dict) and x.get("type") == "image" for x in b["content"]):
                        return True
    return False


def _has_image_openai(messages: list[Any]) -> bool:
    for m in messages:
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, list) and any(isinstance(p, dict) and p.get("type") == "image_url" for p in c):
            return True
    return False


def features_of(fmt: str, body: dict[str, Any], default_max_tokens: int = 4096) -> RequestFeatures:
    messages = body.get("messages") or []
    if fmt == "anthropic":
        tools = bool(body.get("tools")) or any(
            isinstance(m, dict) and isinstance(m.get("content"), list) and any(
                isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result") for b in m["content"])
            for m in messages)
        images = _has_image_anthropic(messages)
        json_mode = False
        max_out = int(body.get("max_tokens") or default_max_tokens)
        size = estimate_tokens(messages) + estimate_tokens(body.get("system") or "")
    else:
        tools = bool(body.get("tools")) or any(
            isinstance(m, dict) and (m.get("role") == "tool" or m.get("tool_calls")) for m in messages)
        images = _has_image_openai(messages)
        rf = body.get("response_format")
        json_mode = isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema")
        max_out = int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
        size = estimate_tokens(messages)
    if body.get("tools"):
        size += estimate_tokens(body["tools"])
    return RequestFeatures(tools, images, json_mode, size, max_out)
