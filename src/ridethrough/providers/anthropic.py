"""Anthropic Messages API adapter, and the one place Anthropic errors are classified."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from ridethrough.config import DEFAULT_BASE_URLS, Format, ProviderConfig
from ridethrough.errors import ErrorClass, UpstreamError
from ridethrough.protocols.anthropic import accepts_prefill
from ridethrough.providers.base import ResolvedCapabilities
from ridethrough.providers.headers import parse_retry_after
from ridethrough.providers.http import HttpProvider

ANTHROPIC_VERSION = "2023-06-01"

# (status, error.type) → class. Status-only entries use type None.
_BY_TYPE = {
    "overloaded_error": ErrorClass.OVERLOADED,
    "rate_limit_error": ErrorClass.RATE_LIMITED,
    "billing_error": ErrorClass.QUOTA,
    "authentication_error": ErrorClass.AUTH,
    "permission_error": ErrorClass.AUTH,
    "not_found_error": ErrorClass.MODEL_NOT_FOUND,
    "request_too_large": ErrorClass.TOO_LARGE,
    "api_error": ErrorClass.SERVER,
    "timeout_error": ErrorClass.SERVER,
    "invalid_request_error": ErrorClass.CLIENT,
}
_BY_STATUS = {
    529: ErrorClass.OVERLOADED, 429: ErrorClass.RATE_LIMITED, 402: ErrorClass.QUOTA,
    401: ErrorClass.AUTH, 403: ErrorClass.AUTH, 404: ErrorClass.MODEL_NOT_FOUND,
    413: ErrorClass.TOO_LARGE, 408: ErrorClass.SERVER,
}


def error_type_of(body: bytes) -> tuple[str | None, str]:
    """(error.type, message) from an Anthropic error body, tolerating junk."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, body[:200].decode("utf-8", "replace")
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return err.get("type"), str(err.get("message", ""))
    return None, str(data)[:200]


def classify_anthropic(status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
    etype, message = error_type_of(body)
    if status >= 500 and status != 529:
        cls = _BY_TYPE.get(etype or "", ErrorClass.SERVER)
        if cls not in (ErrorClass.OVERLOADED, ErrorClass.SERVER):
            cls = ErrorClass.SERVER
    elif status in _BY_STATUS:
        cls = _BY_STATUS[status]
    else:
        cls = _BY_TYPE.get(etype or "", ErrorClass.CLIENT if 400 <= status < 500 else ErrorClass.SERVER)
    # Anthropic has no error code for an over-long prompt, nor for an empty account (a 400
    # invalid_request_error, not 402 billing_error); its fixed messages are the only signal.
    # This is the single place message text is consulted, and only for these two.
    if cls is ErrorClass.CLIENT and message.startswith("prompt is too long"):
        cls = ErrorClass.TOO_LARGE
    elif cls is ErrorClass.CLIENT and message.startswith("Your credit balance is too low"):
        cls = ErrorClass.QUOTA
    return UpstreamError(
        cls, f"{status} {etype or 'error'}: {message}"[:300], upstream_status=status, provider_type=etype,
        retry_after=parse_retry_after(headers), body=body,
    )


def classify_anthropic_event(data: object) -> UpstreamError:
    """An in-band ``event: error`` inside a 200 stream."""
    err = data.get("error") if isinstance(data, dict) else None
    etype = err.get("type") if isinstance(err, dict) else None
    message = err.get("message", "") if isinstance(err, dict) else ""
    cls = ErrorClass.OVERLOADED if etype == "overloaded_error" else ErrorClass.STREAM_ERROR
    return UpstreamError(cls, f"in-stream {etype or 'error'}: {message}"[:300], provider_type=etype)


class AnthropicProvider(HttpProvider):
    kind = "anthropic"
    format: Format = "anthropic"
    chat_path = "/v1/messages"
    default_caps = ResolvedCapabilities(json_mode=False, context_window=200_000)

    def __init__(self, name: str, cfg: ProviderConfig, base_url: str | None = None) -> None:
        super().__init__(name, cfg, base_url or cfg.base_url or DEFAULT_BASE_URLS["anthropic"])

    def capabilities(self, model: str) -> ResolvedCapabilities:
        caps = super().capabilities(model)
        if self.cfg.capabilities.prefill is None:
            caps = dataclasses.replace(caps, prefill=accepts_prefill(model))
        return caps

    def auth_headers(self) -> dict[str, str]:
        h = {"anthropic-version": ANTHROPIC_VERSION}
        if self.api_key:
            h["x-api-key"] = self.api_key
        return h

    def _headers(self, call_headers: dict[str, str]) -> dict[str, str]:
        h = super()._headers({})
        # The client's anthropic-version / anthropic-beta survive; our key replaces theirs.
        h.update({k: v for k, v in call_headers.items() if k.startswith("anthropic-")})
        if self.api_key:
            h["x-api-key"] = self.api_key
        return h

    def classify(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        return classify_anthropic(status, body, headers)

    def classify_stream_error(self, data: dict[str, Any]) -> UpstreamError:
        return classify_anthropic_event(data)
