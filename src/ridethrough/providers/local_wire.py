"""The local model's wire format: OpenAI Chat Completions requests in, OpenAI JSON out.

The local provider speaks the OpenAI format so the gateway's passthrough and translation
serve both kinds of client unchanged. These are pure functions (no model, no I/O): the
request becomes messages and sampling parameters, and a generation becomes exactly the
``chat.completion`` / ``chat.completion.chunk`` objects OpenAI itself would send.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from ridethrough.errors import ErrorClass, UpstreamError
from ridethrough.protocols.openai import error_body
from ridethrough.providers.local_engine import SamplingParams

# OpenAI's default temperature is 1.0; a 135M-parameter model rambles at that heat, so when
# the client does not choose we sample as llama-cpp-python's own server does for chat.
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.95


@dataclass(frozen=True, slots=True)
class LocalRequest:
    messages: list[Any]
    params: SamplingParams
    include_usage: bool
    continue_final: bool = False  # the last (assistant) message is a prefill to continue


def _client_error(message: str, param: str) -> UpstreamError:
    body = error_body(400, message, param=param, error_type="invalid_request_error")
    return UpstreamError(ErrorClass.CLIENT, message, upstream_status=400,
                         provider_type="invalid_request_error", body=body)


def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    v = body.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise _client_error(f"{key}: must be a number between {lo:g} and {hi:g}", key)
    return float(v)


def parse_request(raw: bytes) -> LocalRequest:
    """An OpenAI Chat Completions body → what the engine needs. Raises UpstreamError(CLIENT)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _client_error("the request body is not valid JSON", "body") from None
    if not isinstance(body, dict):
        raise _client_error("the request body must be a JSON object", "body")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _client_error("messages: is required (a non-empty list)", "messages")
    if (body.get("n") or 1) != 1:
        raise _client_error("n: the local model returns one choice (n must be 1)", "n")
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < 1):
        raise _client_error("max_tokens: must be an integer >= 1", "max_tokens")
    stop = body.get("stop")
    if isinstance(stop, str):
        stops: tuple[str, ...] = (stop,)
    elif stop is None:
        stops = ()
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = tuple(stop)
    else:
        raise _client_error("stop: must be a string or a list of strings", "stop")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _client_error("seed: must be an integer", "seed")
    so = body.get("stream_options")
    params = SamplingParams(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", DEFAULT_TEMPERATURE, 0.0, 2.0),
        top_p=_number(body, "top_p", DEFAULT_TOP_P, 0.0, 1.0),
        stop=stops,
        seed=seed % 2**32 if seed is not None else None,
    )
    return LocalRequest(messages, params,
                        include_usage=bool(isinstance(so, dict) and so.get("include_usage")),
                        continue_final=body.get("continue_final_message") is True)


def new_completion_id() -> str:
    return "chatcmpl-local-" + uuid.uuid4().hex[:24]


def new_request_id() -> str:
    return "local-" + uuid.uuid4().hex


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_body(*, completion_id: str, model: str, text: str, finish_reason: str,
                    prompt_tokens: int, completion_tokens: int,
                    created: int | None = None) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None,
            "finish_reason": finish_reason,
        }],
        "usage": usage(prompt_tokens, completion_tokens),
    }


class ChunkWriter:
    """The ``chat.completion.chunk`` objects of one stream: same id, created and model."""

    __slots__ = ("completion_id", "created", "include_usage", "model")

    def __init__(self, model: str, include_usage: bool, completion_id: str | None = None,
                 created: int | None = None) -> None:
        self.completion_id = completion_id or new_completion_id()
        self.created = created if created is not None else int(time.time())
        self.model = model
        self.include_usage = include_usage

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        c: dict[str, Any] = {"id": self.completion_id, "object": "chat.completion.chunk",
                             "created": self.created, "model": self.model, "choices": choices}
        if self.include_usage:
            c["usage"] = None  # as OpenAI does on every chunk but the last when usage is asked
        return c

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish_reason}])

    def role(self) -> dict[str, Any]:
        return self.delta({"role": "assistant", "content": ""})

    def content(self, text: str) -> dict[str, Any]:
        return self.delta({"content": text})

    def finish(self, finish_reason: str) -> dict[str, Any]:
        return self.delta({}, finish_reason)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        c = self._chunk([])
        c["usage"] = usage(prompt_tokens, completion_tokens)
        return c


def not_found_body(method: str, path: str) -> bytes:
    return error_body(404, f"{method} {path}: the local model serves chat completions only",
                      error_type="invalid_request_error", code="unknown_url")
