"""Anthropic Messages <-> OpenAI Chat Completions, for requests.

A failover target may speak the other protocol, so a request is rewritten for it. Every
difference ends in one of three ways (the full table is in ``translate.py``'s docstring):

* carried: mapped to the target's equivalent;
* dropped: the target has no such knob and the answer keeps its meaning — the loss is named
  in ``Translated.dropped`` so the access log can show it;
* ``Untranslatable``: carrying on would change what the answer means (a forged thinking
  signature, ``n > 1``, JSON mode …). The planner then skips that target.

``check_*`` runs the same rules without building anything so the planner can ask cheaply, and
the translators call it first, so the two can never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ridethrough.errors import RidethroughError

from .shape import misfit
from .translate_response import decode_tool_arguments, encode_tool_input, safe_tool_id

__all__ = [
    "Translated",
    "Untranslatable",
    "anthropic_to_openai_request",
    "check_anthropic_to_openai",
    "check_openai_to_anthropic",
    "openai_to_anthropic_request",
]

JSON = dict[str, Any]

ANTHROPIC_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
OPENAI_TOOL_NAME_MAX = 64
OPENAI_STOP_MAX = 4
_DATA_URI = re.compile(
    r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[^;,]*)*?;base64,(?P<data>.*)$", re.DOTALL
)


class Untranslatable(RidethroughError):
    """A loss that changes the meaning of the request: the planner skips that target."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Translated:
    """The request in the target's format (``model`` set) and the harmless losses on the way."""

    body: JSON
    dropped: list[str] = field(default_factory=list)


class _Losses:
    """Ordered, de-duplicated names of what was dropped."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, name: str) -> None:
        if name not in self.names:
            self.names.append(name)

    def scan_cache_control(self, obj: Any) -> None:
        if isinstance(obj, dict) and "cache_control" in obj:
            self.add("cache_control")


# =============================================================================================
# Anthropic -> OpenAI

# fmt: off
_A2O_HANDLED = frozenset({
    "model", "max_tokens", "messages", "system", "temperature", "top_p", "top_k",
    "stop_sequences", "stream", "metadata", "tools", "tool_choice", "thinking",
    "output_config",
})
# fmt: on
# Which blocks each role may carry to OpenAI. A ``system`` message inside ``messages`` (Anthropic's
# mid-conversation system messages) is OpenAI's own ``system`` role, in the same position.
_A2O_BLOCKS = {
    "user": ("text", "image", "tool_result"),
    "assistant": ("text", "tool_use"),
    "system": ("text",),
}
_A2O_TOOL_KEYS = frozenset({"name", "description", "input_schema", "type", "cache_control"})


def check_anthropic_to_openai(body: JSON, *, prefill: bool = False) -> str | None:
    """Why this Anthropic request cannot be carried to an OpenAI target, or ``None``.
    ``prefill``: the target continues a trailing assistant turn (a mid-stream continuation
    to the local model), so that turn means the same on both sides."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "messages: not a list"
    wrong = misfit("anthropic", body)
    if wrong:
        return str(wrong)
    if body.get("mcp_servers"):
        return "mcp_servers: remote MCP tools run inside Anthropic's API"
    for i, tool in enumerate(body.get("tools") or []):
        kind = tool.get("type")
        if kind not in (None, "custom"):
            return f"tools[{i}]: Anthropic-defined tool {kind!r} has no OpenAI equivalent"
        if len(str(tool.get("name", ""))) > OPENAI_TOOL_NAME_MAX:
            return f"tools[{i}].name: longer than {OPENAI_TOOL_NAME_MAX} characters"
    stops = body.get("stop_sequences") or []
    if len(stops) > OPENAI_STOP_MAX:
        return f"stop_sequences: {len(stops)} given, OpenAI takes at most {OPENAI_STOP_MAX}"
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            return f"messages[{i}].role: {role!r} has no OpenAI equivalent"
        content = message.get("content")
        if not isinstance(content, list):
            if content is None:
                return f"messages[{i}].content: missing"
            continue
        allowed = _A2O_BLOCKS[role]
        for j, block in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            kind = block.get("type")
            if kind in ("thinking", "redacted_thinking"):
                return f"{where}: {kind} carries an Anthropic signature; it cannot cross providers"
            if kind not in allowed:
                return f"{where}: {kind!r} block has no OpenAI equivalent in a {role} message"
            if kind == "image":
                reason = _check_anthropic_image(block, where)
                if reason:
                    return reason
            if kind == "tool_result":
                inner = block.get("content")
                for k, part in enumerate(inner if isinstance(inner, list) else []):
                    if part.get("type") != "text":
                        return (
                            f"{where}.content[{k}]: {part.get('type')!r} inside a tool_result;"
                            " OpenAI tool messages carry text only"
                        )
    if messages and messages[-1].get("role") == "assistant" and messages[-1].get("content") \
            and not prefill:
        return "last message is an assistant prefill; OpenAI answers it instead of continuing it"
    return None


def _check_anthropic_image(block: JSON, where: str) -> str | None:
    source = block.get("source") or {}
    if source.get("type") not in ("base64", "url"):
        return f"{where}: image source {source.get('type')!r} cannot be sent to OpenAI"
    return None


def anthropic_to_openai_request(
    body: JSON,
    model: str,
    *,
    include_usage: bool = True,
    max_tokens_field: str = "max_tokens",
    prefill: bool = False,
) -> Translated:
    """Rewrite an Anthropic Messages request for an OpenAI Chat Completions target.

    ``max_tokens_field`` lets an adapter ask for ``max_completion_tokens`` (OpenAI's reasoning
    models refuse ``max_tokens``; most local servers only know ``max_tokens``).
    """
    reason = check_anthropic_to_openai(body, prefill=prefill)
    if reason:
        raise Untranslatable(reason)
    losses = _Losses()
    messages: list[JSON] = []
    system = _anthropic_system_text(body.get("system"), losses)
    if system:
        messages.append({"role": "system", "content": system})
    for message in body["messages"]:
        messages.extend(_a2o_message(message, losses))
    out: JSON = {"model": model, "messages": messages}
    if body.get("max_tokens") is not None:
        out[max_tokens_field] = body["max_tokens"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("top_k") is not None:
        losses.add("top_k")
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if body.get("stream"):
        out["stream"] = True
        if include_usage:
            out["stream_options"] = {"include_usage": True}
    for key, value in (body.get("metadata") or {}).items():
        if key == "user_id" and value and isinstance(value, str):
            out["user"] = value
        elif value is not None:
            losses.add(f"metadata.{key}")
    _a2o_tools(body, out, losses)
    thinking = body.get("thinking") or {}
    if thinking.get("type") not in (None, "disabled"):
        losses.add("thinking")
    _a2o_output_config(body.get("output_config"), out, losses)
    for key in body:
        if key not in _A2O_HANDLED:
            losses.add(key)
    return Translated(out, losses.names)


def _anthropic_system_text(system: Any, losses: _Losses) -> str:
    if isinstance(system, str):
        return system
    texts = []
    for block in system or []:
        losses.scan_cache_control(block)
        if block.get("text"):
            texts.append(block["text"])
    return "\n\n".join(texts)


def _a2o_message(message: JSON, losses: _Losses) -> list[JSON]:
    """One Anthropic message -> one or more OpenAI messages (tool results split out first)."""
    role = message.get("role")
    content = message.get("content")
    losses.scan_cache_control(message)
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks: list[JSON] = content or []
    for block in blocks:
        losses.scan_cache_control(block)
        if block.get("citations"):
            losses.add("citations")
    if role == "system":  # a mid-conversation system message: OpenAI's system role, in place
        return [{"role": "system", "content": "\n\n".join(b.get("text") or "" for b in blocks)}]
    if role == "assistant":
        text = "".join(b.get("text") or "" for b in blocks if b.get("type") == "text")
        calls = [
            {
                "id": b.get("id"),
                "type": "function",
                "function": {"name": b.get("name"), "arguments": encode_tool_input(b.get("input"))},
            }
            for b in blocks
            if b.get("type") == "tool_use"
        ]
        out: JSON = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            out["tool_calls"] = calls
        return [out]
    tool_messages: list[JSON] = []
    parts: list[JSON] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "tool_result":
            if block.get("is_error"):
                losses.add("tool_result.is_error")
            tool_messages.append(
                {
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id"),
                    "content": _tool_result_text(block.get("content"), losses),
                }
            )
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block["source"])}})
    if not parts and tool_messages:
        return tool_messages
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*tool_messages, {"role": "user", "content": parts[0]["text"]}]
    return [*tool_messages, {"role": "user", "content": parts}]


def _tool_result_text(content: Any, losses: _Losses) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for part in content or []:
        losses.scan_cache_control(part)
        texts.append(part.get("text") or "")
    return "\n".join(texts)


def _image_url(source: JSON) -> str:
    if source.get("type") == "url":
        return str(source.get("url"))
    return f"data:{source.get('media_type')};base64,{source.get('data')}"


def _a2o_tools(body: JSON, out: JSON, losses: _Losses) -> None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if not tools:
        if choice.get("type") not in (None, "auto", "none"):
            losses.add("tool_choice")
        return
    converted = []
    for tool in tools:
        losses.scan_cache_control(tool)
        for key in tool:
            if key not in _A2O_TOOL_KEYS:
                losses.add(f"tools.{key}")
        function: JSON = {"name": tool.get("name")}
        if tool.get("description"):
            function["description"] = tool["description"]
        function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
        converted.append({"type": "function", "function": function})
    out["tools"] = converted
    kind = choice.get("type")
    if kind == "any":
        out["tool_choice"] = "required"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif kind in ("auto", "none"):
        out["tool_choice"] = kind
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def _a2o_output_config(config: Any, out: JSON, losses: _Losses) -> None:
    """Anthropic structured output (``output_config.format``) -> ``response_format``."""
    for key, value in (config or {}).items():
        if key == "format" and isinstance(value, dict) and value.get("type") == "json_schema":
            out["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": value.get("schema") or {}},
            }
        elif value is not None:
            losses.add(f"output_config.{key}")


# =============================================================================================
# OpenAI -> Anthropic

# fmt: off
_O2A_HANDLED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "stop", "stream", "stream_options", "user", "tools", "tool_choice",
    "parallel_tool_calls", "n", "logprobs", "response_format",
})
# fmt: on
_O2A_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def check_openai_to_anthropic(body: JSON, *, prefill: bool = False) -> str | None:
    """Why this OpenAI request cannot be carried to an Anthropic target, or ``None``.
    ``prefill``: a trailing assistant turn is meant to be continued (a mid-stream
    continuation), which is what Anthropic does with it."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "messages: not a list"
    wrong = misfit("openai", body)
    if wrong:
        return str(wrong)
    if (body.get("n") or 1) > 1:
        return "n > 1: Anthropic returns one choice per request"
    if body.get("logprobs") or body.get("top_logprobs"):
        return "logprobs: Anthropic does not return token log-probabilities"
    fmt = (body.get("response_format") or {}).get("type")
    if fmt in ("json_object", "json_schema"):
        return f"response_format {fmt}: no JSON mode on the Anthropic Messages target"
    if "audio" in (body.get("modalities") or []) or body.get("audio"):
        return "audio output is not available from Anthropic"
    if body.get("functions") or body.get("function_call"):
        return "legacy functions/function_call: only tools are translated"
    if body.get("web_search_options") is not None:
        return "web_search_options: search runs inside OpenAI's API"
    for i, tool in enumerate(body.get("tools") or []):
        if tool.get("type") != "function":
            return f"tools[{i}]: {tool.get('type')!r} tools have no Anthropic equivalent"
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") not in (None, "function"):
        return f"tool_choice {choice.get('type')!r} has no Anthropic equivalent"
    stops = body.get("stop")
    for stop in [stops] if isinstance(stops, str) else stops or []:
        if stop and not stop.strip():
            return f"stop {stop!r}: Anthropic refuses whitespace-only stop sequences"
    conversational = False
    for i, message in enumerate(messages):
        reason = _check_openai_message(message, f"messages[{i}]")
        if reason:
            return reason
        conversational = conversational or (message.get("role") not in ("system", "developer")
                                            and _says_something(message))
    if not conversational:
        return "messages: no user or assistant message (Anthropic needs at least one)"
    if messages[-1].get("role") == "assistant" and not prefill:
        return "last message is an assistant turn; Anthropic would continue it as a prefill"
    return None


def _says_something(message: JSON) -> bool:
    """Survives translation as a turn (an empty one is dropped: "messages.empty")."""
    return bool(message.get("content") or message.get("tool_calls") or message.get("refusal")
                or message.get("role") == "tool")


def _check_openai_message(message: JSON, where: str) -> str | None:
    role = message.get("role")
    if role not in _O2A_ROLES:
        return f"{where}: role {role!r} has no Anthropic equivalent"
    if role == "assistant" and (message.get("audio") or message.get("function_call")):
        return f"{where}: assistant audio/function_call cannot be replayed to Anthropic"
    content = message.get("content")
    for j, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type")
        if kind in ("text", "refusal"):
            continue
        if kind == "image_url" and role == "user":
            reason = _check_openai_image(part, f"{where}.content[{j}]")
            if reason:
                return reason
            continue
        return f"{where}.content[{j}]: {kind!r} part has no Anthropic equivalent"
    return None


def _check_openai_image(part: JSON, where: str) -> str | None:
    url = _image_part_url(part)
    if url.startswith("data:"):
        match = _DATA_URI.match(url)
        if not match:
            return f"{where}: image data URI is not base64"
        if (match.group("type") or "").lower() not in ANTHROPIC_IMAGE_TYPES:
            return (
                f"{where}: image type {match.group('type')!r} (Anthropic takes jpeg/png/gif/webp)"
            )
    elif not url.startswith(("https://", "http://")):
        return f"{where}: image URL scheme cannot be fetched by Anthropic"
    return None


def _image_part_url(part: JSON) -> str:
    image = part.get("image_url")
    return str(image.get("url") or "") if isinstance(image, dict) else str(image or "")


def openai_to_anthropic_request(
    body: JSON, model: str, *, default_max_tokens: int = 4096, system_messages: bool = False,
    prefill: bool = False,
) -> Translated:
    """Rewrite an OpenAI Chat Completions request for an Anthropic Messages target.

    ``system_messages``: the target takes ``{"role": "system"}`` messages inside ``messages``
    (capability ``system_messages``), so a system message after the first turn keeps its
    place where Anthropic's placement rules allow it; otherwise it joins ``system``.
    """
    reason = check_openai_to_anthropic(body, prefill=prefill)
    if reason:
        raise Untranslatable(reason)
    losses = _Losses()
    system: list[str] = []
    converted: list[JSON] = []
    for message in body["messages"]:
        role = message.get("role")
        if role in ("system", "developer"):
            text = _openai_text(message.get("content"))
            if converted and system_messages:
                if text:
                    converted.append({"role": "system", "content": [{"type": "text", "text": text}]})
                continue
            if converted:
                losses.add("system.position")
            if text:
                system.append(text)
            continue
        if message.get("name"):
            losses.add("messages.name")
        converted.append(_o2a_message(message, losses))
    if system_messages:
        converted = _place_system_messages(converted, system, losses)
    out: JSON = {"model": model}
    if system:
        out["system"] = (
            system[0] if len(system) == 1 else [{"type": "text", "text": t} for t in system]
        )
    out["messages"] = _merge_same_role(converted, losses)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    out["max_tokens"] = int(max_tokens) if max_tokens else default_max_tokens
    temperature = body.get("temperature")
    if temperature is not None:
        if temperature > 1:
            losses.add("temperature.clamped")
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stops = body.get("stop")
    stops = [stops] if isinstance(stops, str) else list(stops or [])
    if "" in stops:
        losses.add("stop.empty")
    if any(stops):
        out["stop_sequences"] = [s for s in stops if s]
    if body.get("stream"):
        out["stream"] = True
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    _o2a_tools(body, out, losses)
    for key in body:
        if key not in _O2A_HANDLED and body[key] is not None:
            losses.add(key)
    return Translated(out, losses.names)


def _openai_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(p.get("text") or p.get("refusal") or "") for p in content or [])


def _o2a_message(message: JSON, losses: _Losses) -> JSON:
    role = message["role"]
    content = message.get("content")
    if role == "tool":
        result: JSON = {
            "type": "tool_result",
            "tool_use_id": safe_tool_id(message.get("tool_call_id")),
        }
        text = _openai_text(content)
        if text:
            result["content"] = text
        return {"role": "user", "content": [result]}
    blocks: list[JSON] = []
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    else:
        for part in content or []:
            if part.get("type") == "image_url":
                blocks.append(_o2a_image(part, losses))
            elif part.get("text") or part.get("refusal"):
                blocks.append({"type": "text", "text": part.get("text") or part.get("refusal")})
    if role == "assistant":
        if message.get("refusal"):
            blocks.append({"type": "text", "text": str(message["refusal"])})
        if message.get("reasoning_content") or message.get("reasoning"):
            losses.add("reasoning_content")
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            blocks.append(
                {
                    "type": "tool_use",
                    "id": safe_tool_id(call.get("id")),
                    "name": function.get("name") or "",
                    "input": decode_tool_arguments(function.get("arguments")),
                }
            )
    return {"role": role, "content": blocks}


def _o2a_image(part: JSON, losses: _Losses) -> JSON:
    image = part.get("image_url")
    if isinstance(image, dict) and image.get("detail") not in (None, "auto"):
        losses.add("image.detail")
    url = _image_part_url(part)
    match = _DATA_URI.match(url)
    if match:
        source: JSON = {
            "type": "base64",
            "media_type": (match.group("type") or "").lower(),
            "data": match.group("data"),
        }
    else:
        source = {"type": "url", "url": url}
    return {"type": "image", "source": source}


def _merge_same_role(messages: list[JSON], losses: _Losses) -> list[JSON]:
    """Join consecutive same-role turns; keep tool_result blocks first in a user turn.

    OpenAI sends one ``tool`` message per result and may follow them with a user message;
    Anthropic wants them all in one user turn, results before any other block.
    """
    merged: list[JSON] = []
    for message in messages:
        if not message["content"]:
            losses.add("messages.empty")
            continue
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1]["content"].extend(message["content"])
        else:
            merged.append({"role": message["role"], "content": list(message["content"])})
    for message in merged:
        blocks = message["content"]
        results = [b for b in blocks if b["type"] == "tool_result"]
        if results:
            message["content"] = results + [b for b in blocks if b["type"] != "tool_result"]
        elif len(blocks) == 1 and blocks[0]["type"] == "text":
            message["content"] = blocks[0]["text"]
    return merged


def _place_system_messages(messages: list[JSON], system: list[str], losses: _Losses) -> list[JSON]:
    """Keep a mid-conversation system message where Anthropic allows one — right after a
    user turn, and last or followed by an assistant turn (a run of them becomes one) — else
    join it to ``system``. Runs before ``_merge_same_role``, on lists of blocks."""
    roles = [m["role"] if m["content"] else None for m in messages]  # empty ones will go
    kept: list[JSON] = []
    for i, message in enumerate(messages):
        if message["role"] != "system" or not message["content"]:
            kept.append(message)
            continue
        before = next((r for r in reversed(roles[:i]) if r not in (None, "system")), None)
        after = next((r for r in roles[i + 1:] if r not in (None, "system")), None)
        if before == "user" and after in (None, "assistant"):
            kept.append(message)
            continue
        losses.add("system.position")
        system.append("\n\n".join(b["text"] for b in message["content"]))
    return kept


def _o2a_tools(body: JSON, out: JSON, losses: _Losses) -> None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if not tools:
        if choice not in (None, "auto", "none"):
            losses.add("tool_choice")
        if body.get("parallel_tool_calls") is not None:
            losses.add("parallel_tool_calls")
        return
    converted = []
    for tool in tools:
        function = tool.get("function") or {}
        if "strict" in function:
            losses.add("tools.strict")
        converted_tool: JSON = {"name": function.get("name")}
        if function.get("description"):
            converted_tool["description"] = function["description"]
        converted_tool["input_schema"] = function.get("parameters") or {
            "type": "object",
            "properties": {},
        }
        converted.append(converted_tool)
    out["tools"] = converted
    mapped: JSON | None = None
    if choice == "required":
        mapped = {"type": "any"}
    elif choice in ("auto", "none"):
        mapped = {"type": choice}
    elif isinstance(choice, dict):
        mapped = {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    if body.get("parallel_tool_calls") is False and (mapped or {}).get("type") != "none":
        mapped = {**(mapped or {"type": "auto"}), "disable_parallel_tool_use": True}
    if mapped:
        out["tool_choice"] = mapped
