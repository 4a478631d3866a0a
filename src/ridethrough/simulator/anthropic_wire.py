"""Anthropic Messages API bytes: requests in, messages / SSE / errors out.

Shapes follow shared/protocols.md §1 exactly (event names equal the JSON ``type``, block
indices sequential, ``message_delta`` carries ``usage.output_tokens``), because the whole
point of the simulator is that the official SDK and the gateway cannot tell it apart
from the real API.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from ..protocols.anthropic import PREFILL_REFUSED, accepts_prefill
from ..protocols.sse import encode_event
from .answers import Answer, Conversation, ToolChoice, ToolSpec, estimate_tokens
from .checks import check_anthropic
from .ids import IdMint
from .wire import Frame, FrameKind, WireError

__all__ = ["AnthropicWire", "count_tokens_body", "models_page"]

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "The requested resource could not be found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "This request would exceed the rate limit for your organization.",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}

_REQUESTS_LIMIT = 4000
_TOKENS_LIMIT = 400_000


class AnthropicWire:
    format = "anthropic"
    preamble_with_tools = True
    stream_content_type = "text/event-stream; charset=utf-8"

    def __init__(self, ids: IdMint) -> None:
        self._ids = ids

    # -- requests -------------------------------------------------------------------

    def parse(self, body: bytes, *, require_max_tokens: bool = True) -> Conversation:
        data = _load_object(body)
        check_anthropic(data, require_max_tokens=require_max_tokens)
        model, max_tokens, messages = data["model"], data.get("max_tokens"), data["messages"]

        conv = Conversation(model=model, max_tokens=max_tokens if require_max_tokens else None)
        last = messages[-1]
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        if last_user is not None:
            conv.last_user_text = _text_of(last_user.get("content"))
        if last.get("role") == "user" and isinstance(last.get("content"), list):
            conv.tool_results = [
                _text_of(block.get("content"))
                for block in last["content"]
                if isinstance(block, dict) and block.get("type") == "tool_result"
            ]
        if last.get("role") == "assistant":
            conv.prefill = _prefill_of(model, last.get("content"))
        conv.image_count = _count_images(messages)
        tools = data.get("tools") or []
        conv.tools = [
            ToolSpec(t["name"], t.get("input_schema") or {})
            for t in tools
            if isinstance(t, dict) and "name" in t and "input_schema" in t
        ]
        choice = data.get("tool_choice") or {}
        if isinstance(choice, dict):
            conv.tool_choice = ToolChoice(choice.get("type", "auto"), choice.get("name"))
        stops = data.get("stop_sequences") or []
        conv.stop_sequences = [s for s in stops if isinstance(s, str)]
        conv.input_tokens = max(estimate_tokens(data.get("system"), messages, tools), 1)
        conv.stream = bool(data.get("stream"))
        conv.seed_material = orjson.dumps(
            [conv.last_user_text, conv.tool_results, conv.image_count, [t.name for t in conv.tools]]
        )
        return conv

    # -- answers --------------------------------------------------------------------

    def response_body(self, conv: Conversation, answer: Answer) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if answer.text_tokens:
            content.append({"type": "text", "text": answer.text})
        if answer.tool_call is not None:
            content.append({
                "type": "tool_use",
                "id": self._ids.anthropic_tool_use(),
                "name": answer.tool_call.name,
                "input": answer.tool_call.arguments,
            })
        return {
            "id": self._ids.anthropic_message(),
            "type": "message",
            "role": "assistant",
            "model": conv.model,
            "content": content,
            "stop_reason": answer.stop_reason,
            "stop_sequence": answer.stop_sequence,
            "usage": _usage(conv.input_tokens, answer.output_tokens),
        }

    def stream_frames(self, conv: Conversation, answer: Answer) -> list[Frame]:
        start = {
            "type": "message_start",
            "message": {
                "id": self._ids.anthropic_message(),
                "type": "message",
                "role": "assistant",
                "model": conv.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": _usage(conv.input_tokens, 1),
            },
        }
        frames = [_frame(FrameKind.START, start)]
        blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        if answer.text_tokens:
            blocks.append((
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": t} for t in answer.text_tokens],
            ))
        if answer.tool_call is not None:
            blocks.append((
                {"type": "tool_use", "id": self._ids.anthropic_tool_use(),
                 "name": answer.tool_call.name, "input": {}},
                [{"type": "input_json_delta", "partial_json": f} for f in answer.tool_call.fragments],
            ))
        if not blocks:
            frames.append(_frame(FrameKind.OPEN, {"type": "ping"}))
        for index, (block, deltas) in enumerate(blocks):
            frames.append(_frame(FrameKind.OPEN, {
                "type": "content_block_start", "index": index, "content_block": block,
            }))
            if index == 0:  # the real API pings right after the first block opens
                frames.append(_frame(FrameKind.OPEN, {"type": "ping"}))
            frames.extend(
                _frame(FrameKind.TOKEN, {"type": "content_block_delta", "index": index, "delta": d})
                for d in deltas
            )
            frames.append(_frame(FrameKind.CLOSE, {"type": "content_block_stop", "index": index}))
        frames.append(_frame(FrameKind.CLOSE, {
            "type": "message_delta",
            "delta": {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence},
            "usage": {"output_tokens": answer.output_tokens},
        }))
        frames.append(_frame(FrameKind.END, {"type": "message_stop"}))
        return frames

    # -- failures -------------------------------------------------------------------

    def error_body(self, status: int, *, request_id: str, error_type: str | None = None,
                   code: str | None = None, message: str | None = None,
                   param: str | None = None) -> dict[str, Any]:
        del code, param  # OpenAI-only fields
        kind = error_type or ERROR_TYPES.get(
            status, "invalid_request_error" if status < 500 else "api_error"
        )
        return {
            "type": "error",
            "error": {"type": kind, "message": message or ERROR_MESSAGES.get(kind, "Error")},
            "request_id": request_id,
        }

    def inband_error_frame(self, *, error_type: str | None, message: str | None) -> bytes:
        kind = error_type or "overloaded_error"
        body = {"type": "error", "error": {"type": kind,
                                           "message": message or ERROR_MESSAGES.get(kind, "Error")}}
        return encode_event("error", body)

    def malformed_frame(self) -> bytes:
        # A well-formed SSE frame whose JSON is cut off: only a JSON parser notices.
        return (b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
                b'"delta": {"type": "text_delta", "text": "unterminated\n\n')

    def malformed_body(self) -> bytes:
        return (b'{"id": "' + self._ids.anthropic_message().encode()
                + b'", "type": "message", "role": "assistant", "content": [{"type": "text", "text"')

    # -- headers --------------------------------------------------------------------

    def new_request_id(self) -> str:
        return self._ids.anthropic_request()

    def response_headers(self, request_id: str, served: int, *,
                         limited: bool = False) -> dict[str, str]:
        reset = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).replace(microsecond=0)
        reset_s = reset.isoformat().replace("+00:00", "Z")
        requests_left = 0 if limited else max(_REQUESTS_LIMIT - 1 - served % _REQUESTS_LIMIT, 0)
        tokens_left = 0 if limited else _TOKENS_LIMIT - 1000
        headers = {"request-id": request_id}
        headers["anthropic-ratelimit-requests-limit"] = str(_REQUESTS_LIMIT)
        headers["anthropic-ratelimit-requests-remaining"] = str(requests_left)
        headers["anthropic-ratelimit-requests-reset"] = reset_s
        for kind in ("tokens", "input-tokens", "output-tokens"):
            headers[f"anthropic-ratelimit-{kind}-limit"] = str(_TOKENS_LIMIT)
            headers[f"anthropic-ratelimit-{kind}-remaining"] = str(tokens_left)
            headers[f"anthropic-ratelimit-{kind}-reset"] = reset_s
        return headers


def count_tokens_body(conv: Conversation) -> dict[str, Any]:
    return {"input_tokens": conv.input_tokens}


def models_page(models: list[str]) -> dict[str, Any]:
    data = [
        {"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
         "created_at": "2025-02-19T00:00:00Z"}
        for m in models
    ]
    return {"data": data, "has_more": False,
            "first_id": models[0] if models else None, "last_id": models[-1] if models else None}


def _frame(kind: FrameKind, data: dict[str, Any]) -> Frame:
    return Frame(kind, encode_event(data["type"], data))


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(400, f"There was an error parsing the body of your request: {exc}") from exc
    if not isinstance(data, dict):
        raise WireError(400, "Input should be an object")
    return data


def _prefill_of(model: str, content: Any) -> str:
    """A trailing assistant turn, as the Claude API judges it: refused by the models that
    take no prefill, and by every model when it ends in whitespace."""
    if not accepts_prefill(model):
        raise WireError(400, PREFILL_REFUSED, error_type="invalid_request_error")
    text = content if isinstance(content, str) else "".join(
        b.get("text", "") for b in content or []
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str))
    if text != text.rstrip():
        raise WireError(400, "messages: final assistant content cannot end with trailing whitespace",
                        error_type="invalid_request_error")
    return text


def _text_of(content: Any) -> str:
    """The text of a message's (or a tool_result's) content: a string or text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            b.get("text", "") for b in content
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    return ""


def _count_images(messages: list[Any]) -> int:
    count = 0
    stack: list[Any] = [m.get("content") for m in messages if isinstance(m, dict)]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if item.get("type") == "image":
                count += 1
            elif item.get("type") == "tool_result":
                stack.append(item.get("content"))
    return count
