"""Every error a client sees, rendered in the client's own format.

Anthropic-format callers get ``{"type": "error", "error": {...}}``; OpenAI-format callers get
``{"error": {...}}``. "Everything failed" lists each attempt and carries
``x-should-retry: false`` so the SDK does not multiply the load on a dying provider.
"""

from __future__ import annotations

from starlette.responses import Response

from ridethrough.errors import AllAttemptsFailed, NoTargetCanServe, RidethroughError, UpstreamError
from ridethrough.protocols import anthropic as A
from ridethrough.protocols import openai as O

JSON = "application/json"


def caller_format(headers: dict[str, str], path: str = "") -> str:
    """The format of the path that was called; on other paths, Anthropic if the caller looks
    like an Anthropic client, else OpenAI."""
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1/chat/completions"):
        return "openai"
    return "anthropic" if "anthropic-version" in headers else "openai"


def error_response(fmt: str, status: int, message: str, *, request_id: str,
                   error_type: str | None = None, code: str | None = None,
                   param: str | None = None, headers: dict[str, str] | None = None,
                   **extra: object) -> Response:
    if fmt == "anthropic":
        body = A.error_body(status, message, request_id, error_type, **extra)
    else:
        body = O.error_body(status, message, code=code, param=param, error_type=error_type, **extra)
    h = {"x-request-id": request_id}
    if headers:
        h.update(headers)
    return Response(body, status_code=status, media_type=JSON, headers=h)


def render_error(fmt: str, exc: RidethroughError, request_id: str,
                 headers: dict[str, str] | None = None) -> Response:
    h = dict(headers or {})
    if isinstance(exc, AllAttemptsFailed):
        attempts = [a.as_dict() for a in exc.attempts]
        summary = "; ".join(f"{a.target}: {a.outcome.removeprefix('skipped:')}"
                            + (f" ({a.ms:.0f} ms)" if a.ms else "") for a in exc.attempts)
        message = f"All targets failed. {exc.message}. Attempts: {summary or 'none'}"
        h["x-should-retry"] = "false"
        if fmt == "anthropic":
            return error_response(fmt, 529, message, request_id=request_id,
                                  error_type="overloaded_error", headers=h, attempts=attempts)
        return error_response(fmt, 503, message, request_id=request_id,
                              error_type="service_unavailable", code="all_targets_failed",
                              headers=h, attempts=attempts)
    if isinstance(exc, NoTargetCanServe):
        return error_response(fmt, 400, exc.message, request_id=request_id,
                              error_type="invalid_request_error", code="no_target_can_serve",
                              headers=h, attempts=[a.as_dict() for a in exc.attempts])
    if isinstance(exc, UpstreamError):
        # A client error from a same-format upstream: its own body is already in the
        # caller's format and says precisely what is wrong.
        h["x-should-retry"] = "false"
        if exc.body:
            return Response(exc.body, status_code=exc.status or 400, media_type=JSON,
                            headers={"x-request-id": request_id, **h})
        return error_response(fmt, exc.status or 400, exc.message, request_id=request_id, headers=h)
    code = exc.code if fmt == "openai" else None
    etype = exc.code if fmt == "anthropic" else None
    if fmt == "openai" and exc.status == 404:
        code, etype = "model_not_found", "invalid_request_error"
    return error_response(fmt, exc.status, exc.message, request_id=request_id, error_type=etype,
                          code=code, param=exc.param, headers=h)
