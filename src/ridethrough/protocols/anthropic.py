"""Anthropic Messages: request validation, error bodies, stream event meaning. No I/O."""

from __future__ import annotations

import re
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
# Claude models that refuse an assistant prefill ("This model does not support assistant
# message prefill", 400): Opus and Sonnet from 4.6 on, every 5-series model. Older ones
# (Haiku 4.5, *-4-5, 3.x) accept it. A target not listed here that refuses is learned.
_NO_PREFILL = re.compile(r"claude-(?:(?:opus|sonnet)-4-(?:[6-9]|\d\d)|[a-z]+-(?:[5-9]|\d\d)(?:\b|-))")
PREFILL_REFUSED = "This model does not support assistant message prefill. The conversation must " \
                  "end with a user message."


def accepts_prefill(model: str) -> bool:
    """Whether this Claude model continues a trailing assistant message."""
    return _NO_PREFILL.search(model) is None


# What validate_request checks: only what ridethrough reads itself (docs/errors.md → Bad input).
VALIDATED = ("model", "messages", "max_tokens", "stream")


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


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def validate_request(body: Any) -> None:
    """Only what ridethrough itself needs (docs/errors.md → Bad input): the
    route name, the messages as a list of objects, the answer's size and mode. Roles, block
    types, other fields and betas are the provider's to judge: a same-format target gets them
    untouched, and its own 400 comes back to the caller."""
    _require(isinstance(body, dict), "request body must be a JSON object", "body")
    _require(isinstance(body.get("model"), str) and body["model"] != "", "Field required (a string)", "model")
    msgs = body.get("messages")
    _require(isinstance(msgs, list), "Field required (a list)", "messages")
    for i, m in enumerate(msgs):
        _require(isinstance(m, dict), "must be an object", f"messages.{i}")
    if body.get("max_tokens") is not None:
        _require(_positive_int(body["max_tokens"]), "must be an integer >= 1", "max_tokens")
    if body.get("stream") is not None:
        _require(isinstance(body["stream"], bool), "must be a boolean", "stream")


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
