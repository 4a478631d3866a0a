"""Anthropic Messages: request validation, error bodies, stream event meaning. No I/O."""

from __future__ import annotations

from typing import Any

import orjson

from ridethrough.errors import InvalidRequest

STATUS_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
    415: "invalid_request_error", 429: "rate_limit_error", 500: "api_error",
    503: "overloaded_error", 504: "timeout_error", 529: "overloaded_error",
}

_CONTENT_DELTAS = {"text_delta", "input_json_delta", "thinking_delta"}


def error_body(status: int, message: str, request_id: str | None = None,
               error_type: str | None = None, **extra: Any) -> bytes:
    err: dict[str, Any] = {"type": error_type or STATUS_ERROR_TYPES.get(status, "api_error"),
                           "message": message}
    err.update(extra)
    body: dict[str, Any] = {"type": "error", "error": err}
    if request_id:
        body["request_id"] = request_id
    return orjson.dumps(body)


def _require(cond: bool, message: str, param: str) -> None:
    if not cond:
        raise InvalidRequest(f"{param}: {message}", param=param)


def validate_request(body: Any) -> None:
    """Reject what the real API would reject, with a message naming the field."""
    _require(isinstance(body, dict), "request body must be a JSON object", "body")
    _require(isinstance(body.get("model"), str) and body["model"] != "", "Field required (a string)", "model")
    mt = body.get("max_tokens")
    _require(isinstance(mt, int) and not isinstance(mt, bool) and mt >= 1,
             "Field required (an integer >= 1)", "max_tokens")
    msgs = body.get("messages")
    _require(isinstance(msgs, list), "Field required (a list)", "messages")
    for i, m in enumerate(msgs):
        _require(isinstance(m, dict), "must be an object", f"messages.{i}")
        _require(m.get("role") in ("user", "assistant"), "role must be 'user' or 'assistant'",
                 f"messages.{i}.role")
        c = m.get("content")
        _require(isinstance(c, (str, list)), "content must be a string or a list of blocks",
                 f"messages.{i}.content")
        if isinstance(c, list):
            for j, b in enumerate(c):
                _require(isinstance(b, dict) and isinstance(b.get("type"), str),
                         "each block must be an object with a type", f"messages.{i}.content.{j}")
    if "system" in body:
        _require(isinstance(body["system"], (str, list)), "must be a string or a list of text blocks",
                 "system")
    if "temperature" in body:
        t = body["temperature"]
        _require(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t <= 1,
                 "must be a number between 0 and 1", "temperature")
    if "stream" in body:
        _require(isinstance(body["stream"], bool), "must be a boolean", "stream")
    if "tools" in body:
        tools = body["tools"]
        _require(isinstance(tools, list), "must be a list", "tools")
        for i, t in enumerate(tools):
            _require(isinstance(t, dict) and isinstance(t.get("name"), str),
                     "each tool needs a name", f"tools.{i}.name")
    if "stop_sequences" in body:
        _require(isinstance(body["stop_sequences"], list)
                 and all(isinstance(s, str) for s in body["stop_sequences"]),
                 "must be a list of strings", "stop_sequences")


def validate_count_tokens(body: Any) -> None:
    _require(isinstance(body, dict), "request body must be a JSON object", "body")
    _require(isinstance(body.get("model"), str), "Field required (a string)", "model")
    _require(isinstance(body.get("messages"), list), "Field required (a list)", "messages")


def is_content_event(event: str | None, data: Any) -> bool:
    """The commit point: the first event that carries answer content."""
    if event == "content_block_delta":
        delta = data.get("delta") or {}
        return delta.get("type") in _CONTENT_DELTAS
    if event == "content_block_start":
        block = data.get("content_block") or {}
        return block.get("type") in ("tool_use", "server_tool_use") or bool(block.get("text"))
    return False


def models_list(names: list[str], created: str = "2025-01-01T00:00:00Z") -> dict[str, Any]:
    data = [{"type": "model", "id": n, "display_name": n, "created_at": created} for n in names]
    return {"data": data, "has_more": False,
            "first_id": names[0] if names else None, "last_id": names[-1] if names else None}
