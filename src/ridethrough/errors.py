"""The error hierarchy, and the error classes that decide what the executor does next.

    RidethroughError                 (root: carries status, code, target)
    ├── ClientError                  the caller's own request is wrong → 4xx, never failed over
    │   ├── InvalidRequest           400 malformed JSON, missing/mistyped field
    │   ├── AuthenticationFailed     401 gateway key missing or wrong
    │   ├── PermissionDenied         403 key not allowed here
    │   ├── NotFound                 404 unknown route/model or path
    │   ├── RequestTooLarge          413 body over the gateway's limit
    │   └── UnsupportedMediaType     415 not JSON
    ├── UpstreamError                one attempt at one target failed; ``error_class`` says why
    ├── NoTargetCanServe             400/422: every target was skipped for capability reasons
    ├── AllAttemptsFailed            every attempt failed; holds the attempt list
    └── (ridethrough's own parts failing; never a provider's fault)
        ConfigError, BindRefused, StoreUnavailable, LeaderBusy, UpstreamFormatError,
        Untranslatable, NotContinuable, SpliceMismatch, CacheFileError, EmbedderUnavailable,
        WireError — each in its own module; the whole tree, with why each exists, is drawn in
        docs/errors.md ("The error tree"), and tests/unit/test_error_tree.py fails when an
        exception class outside it appears.

An ``UpstreamError`` is produced in exactly one place per adapter (its ``classify`` function),
keyed on the HTTP status and the provider's own error type or code, never on message text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class ErrorClass(enum.StrEnum):
    """Why an attempt failed. Each class has one documented action (see ACTIONS, docs/errors.md)."""

    CONNECT = "connect"                  # refused, reset before headers, DNS
    TIMEOUT = "timeout"                  # no response headers / body within the timeout
    FIRST_TOKEN_TIMEOUT = "first_token_timeout"  # stream opened but no content in time
    IDLE_TIMEOUT = "idle_timeout"        # stream stalled between chunks
    SERVER = "server_error"              # 500/502/503/504
    OVERLOADED = "overloaded"            # 529 / overloaded_error (HTTP or in-band)
    RATE_LIMITED = "rate_limited"        # 429
    QUOTA = "quota_exhausted"            # 429 insufficient_quota, 402 billing_error
    AUTH = "auth"                        # 401/403 from the provider: our key is bad
    MODEL_NOT_FOUND = "model_not_found"  # 404 from the provider for this model
    TOO_LARGE = "too_large"              # 413 / context window exceeded at this target
    CLIENT = "client_error"              # the caller's request is invalid (not failed over)
    TRANSLATION = "translation_error"    # a 4xx that followed our translation
    MALFORMED = "malformed_response"     # upstream sent JSON/SSE we could not parse
    STREAM_ERROR = "stream_error"        # in-band error event inside a 200 stream
    TRUNCATED = "truncated"              # stream ended without its terminal event
    LOCAL_SATURATION = "local_saturation"  # our own pool / concurrency cap is exhausted
    UNAVAILABLE = "unavailable"          # provider not configured (no key) or drained


@dataclass(frozen=True, slots=True)
class Action:
    failover: bool          # try the next target
    retry_same: bool        # one bounded, jittered retry on the same target first
    counts_for_breaker: bool
    hold_down_s: float = 0.0  # mark the target unavailable this long (quota, bad key)
    doc: str = ""


ACTIONS: dict[ErrorClass, Action] = {
    ErrorClass.CONNECT: Action(True, False, True, doc="fail over at once"),
    ErrorClass.TIMEOUT: Action(True, False, True, doc="fail over (the time is already spent)"),
    ErrorClass.FIRST_TOKEN_TIMEOUT: Action(True, False, True, doc="fail over before commit"),
    ErrorClass.IDLE_TIMEOUT: Action(True, False, True, doc="fail over before commit; in-band error after"),
    ErrorClass.SERVER: Action(True, True, True, doc="one jittered retry if the deadline allows, then fail over"),
    ErrorClass.OVERLOADED: Action(True, True, True, doc="one jittered retry if the deadline allows, then fail over"),
    ErrorClass.RATE_LIMITED: Action(True, False, False, doc="fail over at once; wait Retry-After only if no other target"),
    ErrorClass.QUOTA: Action(True, False, True, hold_down_s=600.0, doc="fail over; target held down 10 min"),
    ErrorClass.AUTH: Action(True, False, True, hold_down_s=600.0, doc="fail over; target marked misconfigured"),
    ErrorClass.MODEL_NOT_FOUND: Action(True, False, False, hold_down_s=300.0, doc="fail over; target held down 5 min"),
    ErrorClass.TOO_LARGE: Action(True, False, False, doc="fail over to a target that can take it"),
    ErrorClass.CLIENT: Action(False, False, False, doc="returned to the client, not failed over"),
    ErrorClass.TRANSLATION: Action(True, False, False, doc="fail over; logged loudly as our translation's fault"),
    ErrorClass.MALFORMED: Action(True, False, True, doc="fail over"),
    ErrorClass.STREAM_ERROR: Action(True, False, True, doc="before commit: fail over; after: in-band error"),
    ErrorClass.TRUNCATED: Action(True, False, True, doc="before commit: fail over; after: in-band error"),
    ErrorClass.LOCAL_SATURATION: Action(True, False, False, doc="fail over; never opens a provider's breaker"),
    ErrorClass.UNAVAILABLE: Action(True, False, False, doc="skip"),
}


class RidethroughError(Exception):
    """Root of every error ridethrough raises on purpose."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, target: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.target = target
        self.param = param


class ClientError(RidethroughError):
    status = 400
    code = "invalid_request_error"


class InvalidRequest(ClientError):
    pass


class AuthenticationFailed(ClientError):
    status = 401
    code = "authentication_error"


class PermissionDenied(ClientError):
    status = 403
    code = "permission_error"


class NotFound(ClientError):
    status = 404
    code = "not_found_error"


class RequestTooLarge(ClientError):
    status = 413
    code = "request_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    code = "invalid_request_error"


class UpstreamError(RidethroughError):
    """One failed attempt. ``upstream_status`` is the upstream's HTTP status (0 when there
    was none); ``status``, as on every ridethrough error, is the status to answer the caller
    with — the upstream's own for the caller's error passed back (class ``client``), else 502.
    Never mutated once raised: ``reclassified`` makes the copy a later judgement needs."""

    code = "upstream_error"

    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        target: str | None = None,
        upstream_status: int = 0,
        provider_type: str | None = None,
        retry_after: float | None = None,
        body: bytes | None = None,
        fields: tuple[str, ...] = (),
    ):
        # ``fields``: the request fields the upstream's error names, read from its structure
        # (OpenAI's ``error.param``, a FastAPI/pydantic 422's ``detail[].loc``); ``param`` is
        # the first, as on every ridethrough error.
        super().__init__(message, target=target, param=fields[0] if fields else None)
        self.fields = fields
        self.error_class = error_class
        self.upstream_status = upstream_status
        if error_class is ErrorClass.CLIENT:
            self.status = upstream_status if 400 <= upstream_status < 500 else 400
        else:
            self.status = 502
        self.provider_type = provider_type
        self.retry_after = retry_after
        self.body = body  # kept for CLIENT errors, which are passed back to the caller

    @property
    def action(self) -> Action:
        return ACTIONS[self.error_class]

    def reclassified(self, error_class: ErrorClass | None = None, *, target: str | None = None,
                     message: str | None = None) -> UpstreamError:
        """A copy judged anew (another class, the target it came from, a redacted message):
        the original stays as it was raised, for whoever else holds it."""
        return UpstreamError(
            error_class or self.error_class, self.message if message is None else message,
            target=self.target if target is None else target, upstream_status=self.upstream_status,
            provider_type=self.provider_type, retry_after=self.retry_after, body=self.body,
            fields=self.fields)


@dataclass(slots=True)
class AttemptRecord:
    """One attempt or skip, as shown in the access log, headers and the all-failed error."""

    target: str
    outcome: str                    # "ok", an ErrorClass value, or "skipped:<reason>"
    ms: float = 0.0
    status: int = 0
    upstream_request_id: str | None = None
    dropped: tuple[str, ...] = ()   # translation losses that did not change the answer
    detail: str = ""
    hedge: bool = False             # a backup request, sent while another attempt was running
    continuation: bool = False      # asked to continue a stream another target began

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"target": self.target, "outcome": self.outcome, "ms": round(self.ms, 1)}
        if self.status:
            d["status"] = self.status
        if self.upstream_request_id:
            d["upstream_request_id"] = self.upstream_request_id
        if self.dropped:
            d["dropped"] = list(self.dropped)
        if self.detail:
            d["detail"] = self.detail
        if self.hedge:
            d["hedge"] = True
        if self.continuation:
            d["continuation"] = True
        return d


class NoTargetCanServe(RidethroughError):
    """Every target of the route was skipped because it cannot carry this request."""

    status = 400
    code = "invalid_request_error"

    def __init__(self, message: str, attempts: list[AttemptRecord]):
        super().__init__(message)
        self.attempts = attempts


class AllAttemptsFailed(RidethroughError):
    status = 503
    code = "overloaded_error"

    def __init__(self, message: str, attempts: list[AttemptRecord]):
        super().__init__(message)
        self.attempts = attempts
