"""The inbound request as the executor sees it, and how it becomes one upstream call.

``request_side`` is the one place where an unexpected exception raised while reading a
*request* — validating it, planning its targets, translating it — becomes the caller's 400,
naming the field. It is a client's input that nothing checked, not a provider's fault: no
breaker, health window or incident may ever hear of it. Exceptions while handling an
upstream *answer* are the executor's, and stay that target's fault (``malformed_response``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ridethrough.config import RouteConfig
from ridethrough.errors import AttemptRecord, ErrorClass, InvalidRequest, RidethroughError, UpstreamError
from ridethrough.protocols.features import RequestFeatures
from ridethrough.protocols.shape import misfit
from ridethrough.providers.base import UpstreamCall
from ridethrough.routing.deadline import Deadline
from ridethrough.routing.plan import Target
from ridethrough.routing.timeouts import CallShape

log = logging.getLogger("ridethrough")


@contextlib.contextmanager
def request_side(fmt: str, body: Any) -> Iterator[None]:
    """Run request-side work; any exception that is not already a ridethrough error becomes
    an ``InvalidRequest`` (400) naming the first field whose type ridethrough did not expect."""
    try:
        yield
    except RidethroughError:
        raise
    except Exception as e:
        raise request_fault(fmt, body, e) from None


def request_fault(fmt: str, body: Any, exc: Exception) -> InvalidRequest:
    wrong = None
    with contextlib.suppress(Exception):
        wrong = misfit(fmt, body)
    # Logged with its traceback: the request was bad, but a check should have said so first.
    log.warning("request could not be read (%s: %s); answered 400", type(exc).__name__, wrong or "body",
                exc_info=exc)
    if wrong is not None:
        return InvalidRequest(f"{wrong}", param=wrong.path)
    return InvalidRequest(f"body: could not be read ({type(exc).__name__})", param="body")


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
    continuation: bool = False       # its trailing assistant turn is a prefill to continue


@dataclass(slots=True)
class PreparedCall:
    call: UpstreamCall
    translated: bool
    dropped: tuple[str, ...]
    strip_usage: bool
    injected_stream_options: bool = False  # we added ``stream_options`` the client did not send


def prepare_call(req: InboundRequest, target: Target, *, inject_usage: bool = True) -> PreparedCall:
    """Passthrough when formats match (only ``model`` and usage reporting edited); an explicit
    translation otherwise. Raises UpstreamError(TRANSLATION) if translation fails (also when
    it crashes on a well-formed request), and InvalidRequest if a field it reads has the
    wrong type.

    ``inject_usage=False`` leaves ``stream_options`` alone, for OpenAI-compatible servers that
    reject the field (the answer then streams without a usage chunk)."""
    try:
        return _prepare_call(req, target, inject_usage)
    except RidethroughError:
        raise
    except Exception as e:
        wrong = None
        with contextlib.suppress(Exception):
            wrong = misfit(req.format, req.body)
        if wrong is not None:  # the request itself is malformed where we read it: a 400
            raise request_fault(req.format, req.body, e) from None
        # A well-formed request our translation choked on is our fault, not the caller's:
        # fail over to the next target (loudly), never answer the client 400 for it.
        log.exception("preparing the call to %s failed on a well-formed request", target.key)
        raise UpstreamError(ErrorClass.TRANSLATION, f"could not prepare the call: {type(e).__name__}",
                            target=target.key) from None


def _prepare_call(req: InboundRequest, target: Target, inject_usage: bool) -> PreparedCall:
    body = req.body
    dropped: tuple[str, ...] = ()
    strip_usage = False
    injected = False
    if target.format == req.format:
        out = dict(body)
        out["model"] = target.model
        if req.format == "openai" and req.stream and inject_usage:
            so = dict(out.get("stream_options") or {})  # an object, or absent (validated)
            if not so.get("include_usage"):
                so["include_usage"] = True
                out["stream_options"] = so
                strip_usage = True
                injected = True
        translated = False
    else:
        from ridethrough.protocols import translate

        try:
            prefill = req.continuation and target.caps.prefill
            if req.format == "anthropic":
                t = translate.anthropic_to_openai_request(body, target.model, include_usage=inject_usage,
                                                          prefill=prefill)
                injected = inject_usage and req.stream
            else:
                t = translate.openai_to_anthropic_request(
                    body, target.model, default_max_tokens=req.route.default_max_tokens,
                    system_messages=target.caps.system_messages, prefill=prefill)
        except translate.Untranslatable as e:
            raise UpstreamError(ErrorClass.TRANSLATION, f"untranslatable: {e.reason}",
                                target=target.key) from None
        out, dropped, translated = t.body, tuple(t.dropped), True
    if req.continuation and target.caps.prefill and target.format == "openai":
        # An OpenAI-format server continues a trailing assistant turn only when told to
        # (vLLM's fields; the local model reads them too; llama.cpp's server ignores them
        # and continues one anyway). Anthropic continues it by definition.
        out = {**out, "continue_final_message": True, "add_generation_prompt": False}
    headers: dict[str, str] = {}
    if target.format == "anthropic":
        for k in ("anthropic-beta", "anthropic-version"):
            if k in req.headers and req.format == "anthropic":
                headers[k] = req.headers[k]
    call = UpstreamCall(
        model=target.model, body=orjson.dumps(out), stream=req.stream, deadline=req.deadline,
        timeouts=target.timeouts, headers=headers,
    )
    return PreparedCall(call, translated, dropped, strip_usage, injected)


def shape_of(req: InboundRequest) -> CallShape:
    """What the timeout policy needs to know of a request: streamed or not, how long an
    answer it asked for, how long its prompt is."""
    f = req.features
    return CallShape(req.stream, f.max_output_tokens or None, f.estimated_input_tokens)
