"""OpenAI Chat Completions: request validation, error bodies, chunk meaning. No I/O."""

from __future__ import annotations

from typing import Any

import orjson

from ridethrough.errors import InvalidRequest

STATUS_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota",
    403: "permission_error", 404: "not_found_error", 413: "invalid_request_error",
    415: "invalid_request_error", 429: "rate_limit_error", 500: "server_error",
    503: "service_unavailable", 504: "timeout",
}

# What validate_request checks: only what ridethrough reads itself (docs/errors.md → Bad input).
VALIDATED = ("model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options")

def error_body(status: int, message: str, *, code: str | None = None, param: str | None = None,
               error_type: str | None = None, **extra: Any) -> bytes:
    err: dict[str, Any] = {"message": message,
                           "type": error_type or STATUS_ERROR_TYPES.get(status, "server_error"),
                           "param": param, "code": code}
    err.update(extra)
    return orjson.dumps({"error": err})


def _require(cond: bool, message: str, param: str) -> None:
    if not cond:
        raise InvalidRequest(f"{param}: {message}", param=param)


def validate_request(body: Any) -> None:
    """Only what ridethrough itself needs (docs/errors.md → Bad input): the
    route name, the messages as a list of objects, the answer's size and mode. Roles, parts,
    other fields are the provider's to judge: a same-format target gets them untouched, and
    its own 400 comes back to the caller."""
    _require(isinstance(body, dict), "request body must be a JSON object", "body")
    _require(isinstance(body.get("model"), str) and body["model"] != "", "is required (a string)", "model")
    msgs = body.get("messages")
    _require(isinstance(msgs, list), "is required (a list)", "messages")
    for i, m in enumerate(msgs):
        _require(isinstance(m, dict), "must be an object", f"messages[{i}]")
    for k in ("max_tokens", "max_completion_tokens"):
        if body.get(k) is not None:
            v = body[k]
            _require(isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                     "must be an integer >= 1", k)
    if body.get("stream") is not None:
        _require(isinstance(body["stream"], bool), "must be a boolean", "stream")
    if body.get("stream_options") is not None:
        _require(isinstance(body["stream_options"], dict), "must be an object", "stream_options")


def is_content_chunk(data: Any) -> bool:
    """The commit point: the first chunk with content, a tool call or reasoning."""
    for choice in data.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content") \
                or delta.get("refusal") or delta.get("function_call"):
            return True
    return False


def models_list(names: list[str], created: int = 1735689600) -> dict[str, Any]:
    return {"object": "list",
            "data": [{"id": n, "object": "model", "created": created, "owned_by": "ridethrough"}
                     for n in names]}
