"""OpenAI Chat Completions adapter (OpenAI itself and every OpenAI-compatible server).

Ollama, llama.cpp, vLLM, OpenRouter, Groq… all speak this format but their error bodies
vary (``{"error": "text"}``, ``{"detail": …}``, ``{"error": {"code": 500}}``), so the body
is normalized before classification, which keys on status and ``error.code``/``type`` only.
"""

from __future__ import annotations

from typing import Any

import orjson

from ridethrough.config import DEFAULT_BASE_URLS, Format, ProviderConfig
from ridethrough.errors import ErrorClass, UpstreamError
from ridethrough.providers.base import ResolvedCapabilities
from ridethrough.providers.headers import parse_retry_after
from ridethrough.providers.http import HttpProvider

_QUOTA_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"}
_TOO_LARGE_CODES = {"context_length_exceeded", "string_above_max_length"}
_MODEL_CODES = {"model_not_found"}


def normalize_error(body: bytes) -> tuple[str | None, str | None, str]:
    """(code, type, message) from any OpenAI-ish error body."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None, body[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data))
        if isinstance(err, dict):
            code = err.get("code")
            return (str(code) if code is not None else None, err.get("type"),
                    str(err.get("message", ""))[:300])
        return None, None, str(err)[:300]
    return None, None, str(data)[:300]


def classify_openai(status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
    code, etype, message = normalize_error(body)
    tag = code or etype
    if status == 429:
        cls = ErrorClass.QUOTA if (code in _QUOTA_CODES or etype in _QUOTA_CODES) else ErrorClass.RATE_LIMITED
    elif status == 402:
        cls = ErrorClass.QUOTA
    elif status in (401, 403):
        cls = ErrorClass.AUTH
    elif status == 404 or code in _MODEL_CODES:
        cls = ErrorClass.MODEL_NOT_FOUND
    elif status == 413 or code in _TOO_LARGE_CODES:
        cls = ErrorClass.TOO_LARGE
    elif status == 529 or etype == "overloaded_error":
        cls = ErrorClass.OVERLOADED
    elif status >= 500 or status == 408:
        cls = ErrorClass.SERVER
    elif 400 <= status < 500:
        cls = ErrorClass.CLIENT
    else:
        cls = ErrorClass.MALFORMED
    return UpstreamError(
        cls, f"{status} {tag or 'error'}: {message}"[:300], upstream_status=status, provider_type=tag,
        retry_after=parse_retry_after(headers), body=body, fields=error_fields(body),
    )


def error_fields(body: bytes) -> tuple[str, ...]:
    """The request fields an error names: OpenAI's ``error.param``, or the body paths of a
    FastAPI/pydantic 422's ``detail`` items (vLLM, LiteLLM, many self-hosted servers) —
    structure, never the message's wording."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ()
    if not isinstance(data, dict):
        return ()
    err = data.get("error")
    if isinstance(err, dict) and isinstance(err.get("param"), str):
        return (err["param"],)
    if isinstance(data.get("param"), str):
        return (data["param"],)
    detail = data.get("detail")
    message = data.get("message")
    if detail is None and isinstance(message, dict):  # Mistral: the 422 under "message"
        detail = message.get("detail")
    if not isinstance(detail, list):
        return ()
    paths = (".".join(str(p) for p in item.get("loc") or [] if p != "body")
             for item in detail if isinstance(item, dict))
    return tuple(p for p in paths if p)


def classify_openai_chunk_error(data: dict[str, Any]) -> UpstreamError:
    """A ``data: {"error": …}`` frame inside a 200 stream."""
    err = data.get("error")
    etype = err.get("type") if isinstance(err, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    message = err.get("message", "") if isinstance(err, dict) else str(err)
    cls = ErrorClass.OVERLOADED if "overloaded" in (str(etype), str(code)) or etype == "overloaded_error" \
        else ErrorClass.STREAM_ERROR
    return UpstreamError(cls, f"in-stream {etype or code or 'error'}: {message}"[:300],
                         provider_type=etype or (str(code) if code else None))


class OpenAIProvider(HttpProvider):
    kind = "openai"
    format: Format = "openai"
    chat_path = "/chat/completions"
    default_caps = ResolvedCapabilities(context_window=128_000)

    def __init__(self, name: str, cfg: ProviderConfig, base_url: str | None = None) -> None:
        super().__init__(name, cfg, base_url or cfg.base_url or DEFAULT_BASE_URLS["openai"])

    def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _headers(self, call_headers: dict[str, str]) -> dict[str, str]:
        # Client headers are not forwarded to OpenAI-format targets (they carry no meaning
        # there, and the client's Authorization must never leak upstream).
        return super()._headers({})

    def forward_path(self, path: str) -> str:
        return path.removeprefix("/v1")

    def classify(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        return classify_openai(status, body, headers)

    def classify_stream_error(self, data: dict[str, Any]) -> UpstreamError:
        return classify_openai_chunk_error(data)


class OpenAICompatibleProvider(OpenAIProvider):
    """Ollama, llama.cpp server, vLLM, OpenRouter, Groq, Together… (base_url required).

    Small open servers often lack tools and images; declare them per provider/target.
    """

    kind = "openai-compatible"
    default_caps = ResolvedCapabilities(json_mode=False, images=False, context_window=32_768)
