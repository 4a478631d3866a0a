"""OpenAI Chat Completions (and embeddings / models) bytes: requests in, answers out.

Shapes follow shared/protocols.md §2: ``chat.completion.chunk`` frames with the role on
the first delta, tool calls announced with id+name then argument fragments at index 0,
an optional usage chunk with ``choices: []``, then ``data: [DONE]``; errors are
``{"error": {message, type, param, code}}``, and an error after the 200 is a
``data: {"error": …}`` frame, which is what the official SDK raises on.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from typing import Any

import orjson

from ..protocols.sse import DONE, encode_data
from .answers import Answer, Conversation, ToolChoice, ToolSpec, estimate_tokens
from .checks import check_openai
from .ids import IdMint
from .wire import Frame, FrameKind, WireError

__all__ = ["FINISH_REASONS", "OpenAIWire", "embeddings_body", "models_list"]

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}

# status -> (type, code, message)
ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    402: ("billing_error", "billing_hard_limit_reached", "Billing hard limit has been reached."),
    403: ("permission_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found",
          "The model does not exist or you do not have access to it."),
    413: ("invalid_request_error", "request_too_large", "Request too large."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}

_QUOTA_MESSAGE = ("You exceeded your current quota, please check your plan and billing "
                  "details.")
_REQUESTS_LIMIT = 10_000
_TOKENS_LIMIT = 2_000_000
_EMBEDDING_DIMENSIONS = 8


class OpenAIWire:
    format = "openai"
    preamble_with_tools = False
    stream_content_type = "text/event-stream; charset=utf-8"

    def __init__(self, ids: IdMint) -> None:
        self._ids = ids

    # -- requests -------------------------------------------------------------------

    def parse(self, body: bytes) -> Conversation:
        data = load_object(body)
        check_openai(data)
        model, messages = data["model"], data["messages"]
        max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
        conv = Conversation(model=model, max_tokens=max_tokens)
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        if last_user is not None:
            conv.last_user_text = _text_of(last_user.get("content"))
        trailing_tools: list[str] = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            trailing_tools.insert(0, _text_of(message.get("content")))
        conv.tool_results = trailing_tools
        conv.image_count = sum(
            1 for m in messages if isinstance(m.get("content"), list)
            for part in m["content"] if isinstance(part, dict) and part.get("type") == "image_url"
        )
        tools = data.get("tools") or []
        conv.tools = [
            ToolSpec(t["function"]["name"], t["function"].get("parameters") or {})
            for t in tools
            if isinstance(t, dict) and isinstance(t.get("function"), dict) and "name" in t["function"]
        ]
        conv.tool_choice = _tool_choice(data.get("tool_choice"))
        stop = data.get("stop")
        conv.stop_sequences = [stop] if isinstance(stop, str) else [
            s for s in (stop or []) if isinstance(s, str)
        ]
        conv.input_tokens = max(estimate_tokens(messages, tools), 1)
        conv.stream = bool(data.get("stream"))
        options = data.get("stream_options") or {}
        conv.include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        conv.seed_material = orjson.dumps(
            [conv.last_user_text, conv.tool_results, conv.image_count, [t.name for t in conv.tools]]
        )
        return conv

    # -- answers --------------------------------------------------------------------

    def response_body(self, conv: Conversation, answer: Answer) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text if answer.text_tokens or answer.tool_call is None else None,
            "refusal": None,
            "annotations": [],
        }
        if answer.tool_call is not None:
            message["tool_calls"] = [{
                "id": self._ids.openai_tool_call(),
                "type": "function",
                "function": {"name": answer.tool_call.name,
                             "arguments": "".join(answer.tool_call.fragments)},
            }]
        return {
            "id": self._ids.openai_completion(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": conv.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS[answer.stop_reason],
            }],
            "usage": _usage(conv.input_tokens, answer.output_tokens),
            "service_tier": "default",
            "system_fingerprint": "fp_sim",
        }

    def stream_frames(self, conv: Conversation, answer: Answer) -> list[Frame]:
        head = {
            "id": self._ids.openai_completion(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": conv.model,
            "service_tier": "default",
            "system_fingerprint": "fp_sim",
        }
        if conv.include_usage:
            head["usage"] = None

        def chunk(kind: FrameKind, delta: dict[str, Any], finish: str | None = None) -> Frame:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return Frame(kind, encode_data({**head, "choices": [choice]}))

        frames = [chunk(FrameKind.START, {"role": "assistant", "content": "", "refusal": None})]
        frames.extend(chunk(FrameKind.TOKEN, {"content": t}) for t in answer.text_tokens)
        if answer.tool_call is not None:
            frames.append(chunk(FrameKind.OPEN, {"tool_calls": [{
                "index": 0, "id": self._ids.openai_tool_call(), "type": "function",
                "function": {"name": answer.tool_call.name, "arguments": ""},
            }]}))
            frames.extend(
                chunk(FrameKind.TOKEN, {"tool_calls": [{"index": 0, "function": {"arguments": f}}]})
                for f in answer.tool_call.fragments
            )
        frames.append(chunk(FrameKind.CLOSE, {}, FINISH_REASONS[answer.stop_reason]))
        if conv.include_usage:
            usage = {**head, "choices": [], "usage": _usage(conv.input_tokens, answer.output_tokens)}
            frames.append(Frame(FrameKind.CLOSE, encode_data(usage)))
        frames.append(Frame(FrameKind.END, encode_data(DONE)))
        return frames

    # -- failures -------------------------------------------------------------------

    def error_body(self, status: int, *, request_id: str, error_type: str | None = None,
                   code: str | None = None, message: str | None = None,
                   param: str | None = None) -> dict[str, Any]:
        default_type, default_code, default_message = ERRORS.get(
            status, ("invalid_request_error" if status < 500 else "server_error", None, "Error.")
        )
        if code == "insufficient_quota" or error_type == "insufficient_quota":
            default_type, default_code, default_message = (
                "insufficient_quota", "insufficient_quota", _QUOTA_MESSAGE)
        return {"error": {
            "message": message or default_message,
            "type": error_type or default_type,
            "param": param,
            "code": code if code is not None else default_code,
        }}

    def inband_error_frame(self, *, error_type: str | None, message: str | None) -> bytes:
        return encode_data({"error": {
            "message": message or "The server had an error while processing your request.",
            "type": error_type or "server_error",
            "param": None,
            "code": None,
        }})

    def malformed_frame(self) -> bytes:
        return b'data: {"id": "chatcmpl-broken", "object": "chat.completion.chunk", "choices": [{\n\n'

    def malformed_body(self) -> bytes:
        return (b'{"id": "' + self._ids.openai_completion().encode()
                + b'", "object": "chat.completion", "choices": [{"index": 0, "message": ')

    # -- headers --------------------------------------------------------------------

    def new_request_id(self) -> str:
        return self._ids.openai_request()

    def response_headers(self, request_id: str, served: int, *,
                         limited: bool = False) -> dict[str, str]:
        requests_left = 0 if limited else max(_REQUESTS_LIMIT - 1 - served % _REQUESTS_LIMIT, 0)
        return {
            "x-request-id": request_id,
            "openai-version": "2020-10-01",
            "openai-processing-ms": "12",
            "x-ratelimit-limit-requests": str(_REQUESTS_LIMIT),
            "x-ratelimit-remaining-requests": str(requests_left),
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": str(_TOKENS_LIMIT),
            "x-ratelimit-remaining-tokens": str(0 if limited else _TOKENS_LIMIT - 1000),
            "x-ratelimit-reset-tokens": "0s",
        }


def models_list(models: list[str]) -> dict[str, Any]:
    return {"object": "list", "data": [
        {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "ridethrough-sim"}
        for m in models
    ]}


def embeddings_body(data: dict[str, Any]) -> dict[str, Any]:
    """Small deterministic vectors (a hash of each input), float lists or base64 float32."""
    model = data.get("model")
    if not isinstance(model, str):
        raise WireError(400, "you must provide a model parameter", param="model")
    raw = data.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
        inputs = [raw]
    elif isinstance(raw, list) and raw:
        inputs = raw
    else:
        raise WireError(400, "'input' : input must be a string or an array", param="input")
    dimensions = data.get("dimensions") or _EMBEDDING_DIMENSIONS
    if not isinstance(dimensions, int) or not 1 <= dimensions <= 4096:
        raise WireError(400, "Invalid 'dimensions'", param="dimensions")
    as_base64 = data.get("encoding_format") == "base64"
    items = []
    for index, item in enumerate(inputs):
        vector = _vector_for(orjson.dumps(item), dimensions)
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            if as_base64 else vector
        )
        items.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = max(estimate_tokens(inputs), 1) if not isinstance(inputs[0], list) else sum(
        len(i) for i in inputs)
    return {"object": "list", "data": items, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def load_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(400, "We could not parse the JSON body of your request.") from exc
    if not isinstance(data, dict):
        raise WireError(400, "We could not parse the JSON body of your request.")
    return data


def _vector_for(seed: bytes, dimensions: int) -> list[float]:
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        values.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    vector = values[:dimensions]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    # Round-trip through float32 so list and base64 encodings carry identical numbers.
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in vector]


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p.get("text", "") for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


def _tool_choice(raw: Any) -> ToolChoice:
    if raw == "none":
        return ToolChoice("none")
    if raw == "required":
        return ToolChoice("any")
    if isinstance(raw, dict):
        function = raw.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return ToolChoice("tool", name)
    return ToolChoice("auto")
