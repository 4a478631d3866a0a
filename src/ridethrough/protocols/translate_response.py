"""Anthropic <-> OpenAI for finished answers: responses, errors, and the shared vocabulary.

A failover only helps if the client cannot tell which provider answered, so a Claude answer
given to an OpenAI client must look exactly like a ``chat.completion`` (and vice versa). The
small pieces both the response and the stream translators need — stop-reason and usage
mapping, tool-argument JSON codec, id minting, error bodies — live here so the streaming,
accumulating and synthesizing modules agree with each other by construction.

Pure functions only: no I/O. ``created`` timestamps read the clock unless given.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import time
from typing import Any

__all__ = [
    "RAW_ARGUMENTS_KEY",
    "anthropic_error_status",
    "anthropic_error_to_openai",
    "anthropic_stop_to_openai",
    "anthropic_to_openai_response",
    "anthropic_usage_to_openai",
    "decode_tool_arguments",
    "encode_tool_input",
    "new_id",
    "openai_error_to_anthropic",
    "openai_finish_to_anthropic",
    "openai_to_anthropic_response",
    "openai_usage_to_anthropic",
    "safe_tool_id",
]

JSON = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# ids

_ALPHABET = string.ascii_letters + string.digits
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def new_id(prefix: str, length: int = 24) -> str:
    """A fresh id in the style of the side that lacks one (``msg_``, ``toolu_``, ``chatcmpl-``…)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def safe_tool_id(tool_id: str | None) -> str:
    """A tool-call id Anthropic accepts (``^[A-Za-z0-9_-]+$``).

    Some OpenAI-compatible servers mint ids like ``functions.get_weather:0``. The mapping is
    deterministic so a ``tool_calls[].id`` and the later ``tool_call_id`` that refers to it
    still match after translation.
    """
    if not tool_id:
        return new_id("toolu_")
    return _UNSAFE_ID_CHARS.sub("_", tool_id)


def _derived_id(source: str | None, old_prefix: str, new_prefix: str) -> str:
    """Keep the upstream id recognisable (useful when reading logs) under the client's prefix."""
    if source:
        core = _UNSAFE_ID_CHARS.sub("", source.removeprefix(old_prefix))
        if core:
            return new_prefix + core
    return new_id(new_prefix)


# ---------------------------------------------------------------------------------------------
# tool arguments: OpenAI carries a JSON *string*, Anthropic an *object*

RAW_ARGUMENTS_KEY = "_raw_arguments"
"""Where undecodable tool arguments are kept, so nothing a small model said is thrown away.

``encode_tool_input`` turns ``{RAW_ARGUMENTS_KEY: s}`` back into exactly ``s``, so a client
that echoes the tool call in its next turn sends the upstream its own text unchanged."""

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def decode_tool_arguments(arguments: Any) -> dict[str, Any]:
    """OpenAI ``function.arguments`` -> Anthropic ``tool_use.input``. Never raises.

    Small open models emit code fences, trailing tokens after the object, or JSON encoded
    twice; those are repaired. Anything still not an object is wrapped under
    ``RAW_ARGUMENTS_KEY`` instead of crashing the translation or silently becoming ``{}``.
    """
    if isinstance(arguments, dict):
        return arguments
    if arguments is None:
        return {}
    if not isinstance(arguments, str):
        return {RAW_ARGUMENTS_KEY: json.dumps(arguments)}
    if not arguments.strip():
        return {}
    value = _loads_leniently(arguments)
    if isinstance(value, str):  # double-encoded: "{\"city\": \"Paris\"}"
        value = _loads_leniently(value)
    if isinstance(value, dict):
        return value
    return {RAW_ARGUMENTS_KEY: arguments}


def _loads_leniently(text: str) -> Any:
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:  # a complete object followed by junk such as "<|eom_id|>" or a second "}"
        value, _ = json.JSONDecoder().raw_decode(text.strip())
        return value
    except ValueError:
        return None


def encode_tool_input(tool_input: Any, *, unwrap_raw: bool = True) -> str:
    """Anthropic ``tool_use.input`` -> OpenAI ``function.arguments`` (compact JSON).

    Requests unwrap ``RAW_ARGUMENTS_KEY`` so the upstream sees its own text again. Answers to
    a client pass ``unwrap_raw=False``: the wrapper is valid JSON a client can ``json.loads``,
    and the streaming translator (which cannot hold arguments back) sends the same.
    """
    if (
        unwrap_raw
        and isinstance(tool_input, dict)
        and len(tool_input) == 1
        and isinstance(tool_input.get(RAW_ARGUMENTS_KEY), str)
    ):
        return str(tool_input[RAW_ARGUMENTS_KEY])
    if tool_input is None:
        tool_input = {}
    return json.dumps(tool_input, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# stop reasons and usage

_A2O_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_O2A_FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def anthropic_stop_to_openai(stop_reason: str | None) -> str:
    return _A2O_STOP.get(stop_reason or "", "stop")


def openai_finish_to_anthropic(finish_reason: str | None, *, has_tool_calls: bool = False) -> str:
    """Map a finish reason; a tool call that ended with ``stop`` is still a ``tool_use`` stop.

    Several OpenAI-compatible servers (Gemini's, some llama.cpp builds) report ``stop`` after a
    tool call; an Anthropic client only runs tools when it sees ``tool_use``.
    """
    reason = _O2A_FINISH.get(finish_reason or "", "end_turn")
    if has_tool_calls and reason == "end_turn":
        return "tool_use"
    return reason


def anthropic_usage_to_openai(usage: JSON | None) -> JSON:
    """Anthropic counts uncached input apart from cache reads/writes; OpenAI's prompt sums them."""
    usage = usage or {}
    uncached = int(usage.get("input_tokens") or 0)
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    output = int(usage.get("output_tokens") or 0)
    prompt = uncached + cache_read + cache_write
    details: JSON = {"cached_tokens": cache_read}
    if cache_write:
        details["cache_write_tokens"] = cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": details,
    }


def openai_usage_to_anthropic(usage: JSON | None) -> JSON:
    """The inverse: subtract cached and cache-written tokens from ``prompt_tokens``."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    cache_read = int(details.get("cached_tokens") or 0)
    cache_write = int(details.get("cache_write_tokens") or 0)
    prompt = int(usage.get("prompt_tokens") or 0)
    return {
        "input_tokens": max(prompt - cache_read - cache_write, 0),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }


# ---------------------------------------------------------------------------------------------
# responses


def anthropic_to_openai_response(
    resp: JSON, *, model: str | None = None, created: int | None = None
) -> JSON:
    """A Claude ``Message`` as a ``chat.completion`` an OpenAI client cannot tell apart.

    Text blocks are concatenated; ``tool_use`` blocks become ``tool_calls`` in order;
    ``thinking`` text goes to the non-standard ``message.reasoning_content`` that vLLM and
    llama.cpp use (redacted thinking and signatures have no OpenAI form and are dropped).
    """
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[JSON] = []
    for block in resp.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id") or new_id("call_"),
                    "type": "function",
                    "function": {
                        "name": block.get("name") or "",
                        "arguments": encode_tool_input(block.get("input"), unwrap_raw=False),
                    },
                }
            )
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
    message: JSON = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    return {
        "id": _derived_id(resp.get("id"), "msg_", "chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model or resp.get("model") or "",
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": anthropic_stop_to_openai(resp.get("stop_reason")),
                "logprobs": None,
            }
        ],
        "usage": anthropic_usage_to_openai(resp.get("usage")),
    }


def openai_to_anthropic_response(resp: JSON, *, model: str | None = None) -> JSON:
    """A ``chat.completion`` (choice 0) as a Claude ``Message``.

    ``reasoning_content`` is dropped on purpose: an Anthropic thinking block needs a signature
    only Anthropic can mint, and a client echoing a forged one would break its next request
    the moment it is routed back to Claude.
    """
    choices = resp.get("choices") or [{}]
    choice = choices[0] or {}
    message = choice.get("message") or {}
    content: list[JSON] = []
    text = _message_text(message.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    if message.get("refusal"):
        content.append({"type": "text", "text": str(message["refusal"])})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": safe_tool_id(call.get("id")),
                "name": function.get("name") or "",
                "input": decode_tool_arguments(function.get("arguments")),
            }
        )
    has_tools = any(block["type"] == "tool_use" for block in content)
    stop_reason = openai_finish_to_anthropic(choice.get("finish_reason"), has_tool_calls=has_tools)
    if message.get("refusal") and stop_reason == "end_turn":
        stop_reason = "refusal"
    return {
        "id": _derived_id(resp.get("id"), "chatcmpl-", "msg_"),
        "type": "message",
        "role": "assistant",
        "model": model or resp.get("model") or "",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": openai_usage_to_anthropic(resp.get("usage")),
    }


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text") or part.get("refusal") or "")
            for part in content
            if isinstance(part, dict)
        )
    return ""


# ---------------------------------------------------------------------------------------------
# errors: keyed on status and the provider's own type/code, never on message text

_ANTHROPIC_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
# anthropic error type -> (openai type, openai code)
_A2O_ERROR: dict[str, tuple[str, str | None]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "permission_error": ("invalid_request_error", "permission_denied"),
    "not_found_error": ("invalid_request_error", "not_found"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit_error": ("requests", "rate_limit_exceeded"),
    "api_error": ("server_error", None),
    "timeout_error": ("server_error", "timeout"),
    "overloaded_error": ("server_error", "overloaded"),
}
# openai code or type -> anthropic type; checked before the status
_O2A_ERROR_CODE = {
    "insufficient_quota": "billing_error",
    "rate_limit_exceeded": "rate_limit_error",
    "invalid_api_key": "authentication_error",
    "model_not_found": "not_found_error",
    "context_length_exceeded": "invalid_request_error",
    "server_error": "api_error",
    "requests": "rate_limit_error",
    "tokens": "rate_limit_error",
}


def anthropic_error_status(error_type: str | None) -> int:
    """The HTTP status Anthropic pairs with an error type (for in-band stream errors)."""
    return _ANTHROPIC_STATUS.get(error_type or "", 500)


def _status_to_anthropic_type(status: int) -> str:
    for error_type, code in _ANTHROPIC_STATUS.items():
        if code == status:
            return error_type
    if status == 503:
        return "overloaded_error"  # vLLM / llama.cpp answer 503 when their queue is full
    if status == 408:
        return "timeout_error"
    if 400 <= status < 500:
        return "invalid_request_error"
    return "api_error"


def _error_message(err_body: Any, status: int) -> str:
    """Dig the human message out of whatever shape a provider or local server sent."""
    if isinstance(err_body, dict):
        inner = err_body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str) and inner:
            return inner  # Ollama: {"error": "model 'x' not found"}
        for key in ("message", "detail"):
            if isinstance(err_body.get(key), str) and err_body[key]:
                return str(err_body[key])
    elif isinstance(err_body, str) and err_body.strip():
        return err_body.strip()
    return f"upstream returned HTTP {status}" if status else "upstream error"


def anthropic_error_to_openai(err_body: JSON, status: int) -> JSON:
    """Anthropic ``{"type": "error", "error": {type, message}}`` -> OpenAI ``{"error": {…}}``."""
    inner = err_body.get("error") if isinstance(err_body, dict) else None
    a_type = inner.get("type") if isinstance(inner, dict) else None
    if a_type not in _A2O_ERROR:
        a_type = _status_to_anthropic_type(status)
    o_type, code = _A2O_ERROR[a_type]
    return {
        "error": {
            "message": _error_message(err_body, status),
            "type": o_type,
            "param": None,
            "code": code,
        }
    }


def openai_error_to_anthropic(err_body: JSON, status: int) -> JSON:
    """``{"error": {message, type, code}}`` (or a local server's variant) -> Anthropic's shape."""
    inner = err_body.get("error") if isinstance(err_body, dict) else None
    a_type: str | None = None
    if isinstance(inner, dict):
        for key in ("code", "type"):
            value = inner.get(key)
            if isinstance(value, str) and value in _O2A_ERROR_CODE:
                a_type = _O2A_ERROR_CODE[value]
                break
    if a_type is None:
        a_type = _status_to_anthropic_type(status)
    return {"type": "error", "error": {"type": a_type, "message": _error_message(err_body, status)}}
