"""The inbound request as the executor sees it, and how it becomes one upstream call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ridethrough.config import RouteConfig
from ridethrough.errors import AttemptRecord, ErrorClass, UpstreamError
from ridethrough.protocols.features import RequestFeatures
from ridethrough.providers.base import UpstreamCall
from ridethrough.routing.deadline import Deadline
from ridethrough.routing.plan import Target


@dataclass(slots=True)
class InboundRequest:
    format: str                      # "anthropic" | "openai": the client's own format
    body: dict[str, Any]
    stream: bool
    route_name: str
    route: RouteConfig
    features: RequestFeatures
    deadline: Deadline
    request_id: str
    key_id: str | None = None        # which gateway key (name) sent it
    headers: dict[str, str] = field(default_factory=dict)  # forwarded: anthropic-beta, -version
    client_include_usage: bool = False
    no_store: bool = False
    attempts: list[AttemptRecord] = field(default_factory=list)
    started_at: float = 0.0


@dataclass(slots=True)
class PreparedCall:
    call: UpstreamCall
    translated: bool
    dropped: tuple[str, ...]
    strip_usage: bool
    injected_stream_options: bool = False  # we added ``stream_options`` the client did not send


def prepare_call(req: InboundRequest, target: Target, *, inject_usage: bool = True) -> PreparedCall:
    """Passthrough when formats match (only ``model`` and usage reporting edited); an explicit
    translation otherwise. Raises UpstreamError(TRANSLATION) if translation fails.

    ``inject_usage=False`` leaves ``stream_options`` alone, for OpenAI-compatible servers that
    reject the field (the answer then streams without a usage chunk)."""
    body = req.body
    dropped: tuple[str, ...] = ()
    strip_usage = False
    injected = False
    if target.format == req.format:
        out = dict(body)
        out["model"] = target.model
        if req.format == "openai" and req.stream and inject_usage:
            so = dict(out.get("stream_options") or {})
            if not so.get("include_usage"):
                so["include_usage"] = True
                out["stream_options"] = so
                strip_usage = True
                injected = True
        translated = False
    else:
        from ridethrough.protocols import translate

        try:
            if req.format == "anthropic":
                t = translate.anthropic_to_openai_request(body, target.model, include_usage=inject_usage)
                injected = inject_usage and req.stream
            else:
                t = translate.openai_to_anthropic_request(
                    body, target.model, default_max_tokens=req.route.default_max_tokens)
        except translate.Untranslatable as e:
            raise UpstreamError(ErrorClass.TRANSLATION, f"untranslatable: {e.reason}",
                                target=target.key) from None
        out, dropped, translated = t.body, tuple(t.dropped), True
    headers = {}
    if target.format == "anthropic":
        for k in ("anthropic-beta", "anthropic-version"):
            if k in req.headers and req.format == "anthropic":
                headers[k] = req.headers[k]
    call = UpstreamCall(
        model=target.model, body=orjson.dumps(out), stream=req.stream, deadline=req.deadline,
        timeouts=target.timeouts, headers=headers,
    )
    return PreparedCall(call, translated, dropped, strip_usage, injected)
