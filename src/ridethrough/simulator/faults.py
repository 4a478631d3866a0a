"""What can go wrong at the simulated provider, and when it goes wrong.

Real outages are rarely "everything returns 503": they are intermittent, they ramp up
over minutes (OpenAI 2024-12-11), they hit one model or one API, and many of them happen
*after* a 200 has been sent (in-band errors, stalls, truncated streams). A ``Fault`` is the
declarative description of one such shape; ``FaultSwitch`` decides, per request, whether
the fault hits it, using an injected clock and a seeded RNG so tests can count outcomes
instead of timing them.
"""

from __future__ import annotations

import dataclasses
import enum
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["FORMATS", "Fault", "FaultKind", "FaultSwitch"]

FORMATS = ("anthropic", "openai")
CUT_POINTS = ("token", "mid_token", "close", "open")


class FaultKind(enum.StrEnum):
    HTTP_ERROR = "http_error"                  # a status with a provider-format error body
    REFUSE = "refuse"                          # listening socket closed: ECONNREFUSED
    NO_ACCEPT = "no_accept"                    # port silent: connect() hangs, then times out
    RESET = "reset"                            # request read, then TCP RST, no response
    HANG_BEFORE_HEADERS = "hang_before_headers"  # accepted, never answered
    HANG_AFTER_HEADERS = "hang_after_headers"  # 200 + headers, then nothing
    STALL_MID_STREAM = "stall_mid_stream"      # some tokens, then nothing
    INBAND_ERROR_BEFORE_FIRST_TOKEN = "inband_error_before_first_token"
    INBAND_ERROR_AFTER_FIRST_TOKEN = "inband_error_after_first_token"
    TRUNCATED = "truncated"                    # some tokens, then a clean close: a cut answer
    NO_TERMINATOR = "no_terminator"            # the whole answer, closed without [DONE]/message_stop
    MALFORMED_FRAME = "malformed_frame"        # one unparseable frame after some tokens, then the rest
    MALFORMED_JSON = "malformed_json"          # 200 with JSON that does not parse
    SLOW_TOKENS = "slow_tokens"                # correct answer, paced much slower


# Faults that act on the listening port, not on requests: nothing to select on, and a
# request that still arrives (on a connection opened before the fault) is reset.
PORT_KINDS = frozenset({FaultKind.REFUSE, FaultKind.NO_ACCEPT})

# Faults that fire before anything is written: they do not need a valid request.
PRE_RESPONSE_KINDS = frozenset(
    {FaultKind.HTTP_ERROR, FaultKind.RESET, FaultKind.HANG_BEFORE_HEADERS}
)


@dataclass
class Fault:
    """One failure shape. ``to_dict``/``from_dict`` round-trip it through the admin API."""

    kind: FaultKind
    status: int = 503
    error_type: str | None = None
    error_code: str | None = None
    retry_after: float | None = None
    rate: float = 1.0
    ramp_to: float | None = None
    ramp_seconds: float = 0.0
    after_tokens: int = 3
    token_delay_s: float | None = None
    models: list[str] | None = None
    formats: list[str] | None = None
    # Where a stream is cut after ``after_tokens`` (truncated, stall, in-band error):
    # "token" before the next frame; "mid_token" half-way through the next token's text;
    # "close" after the block-closing frames that follow; "open" after those and the next
    # block's opening (a tool call begun, none of its arguments sent).
    cut_at: str = "token"

    def __post_init__(self) -> None:
        self.kind = FaultKind(self.kind)
        if not 100 <= int(self.status) <= 599:
            raise ValueError(f"status: {self.status} is not an HTTP status")
        for name in ("rate", "ramp_to"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: {value} is not a probability in [0, 1]")
        if self.cut_at not in CUT_POINTS:
            raise ValueError(f"cut_at: {self.cut_at!r} is not one of {list(CUT_POINTS)}")
        if self.ramp_seconds < 0 or self.after_tokens < 0:
            raise ValueError("ramp_seconds and after_tokens must be >= 0")
        if self.formats is not None:
            unknown = sorted(set(self.formats) - set(FORMATS))
            if unknown:
                raise ValueError(f"formats: unknown format(s) {unknown}; use {list(FORMATS)}")
        if self.kind in PORT_KINDS and (
            self.models or self.formats or self.rate != 1.0 or self.ramp_to is not None
        ):
            # The port fails before any request can be read, so there is nothing to
            # select on: a refused or silent port is all-or-nothing.
            raise ValueError(f"{self.kind}: models/formats/rate/ramp_to cannot apply to a "
                             "port that takes no connections")

    def applies_to(self, model: str | None, fmt: str) -> bool:
        format_hit = self.formats is None or fmt in self.formats
        return format_hit and (self.models is None or model in self.models)

    def rate_at(self, elapsed_s: float) -> float:
        """The probability that a request is hit ``elapsed_s`` after the fault was set."""
        if self.ramp_to is None:
            return self.rate
        if self.ramp_seconds <= 0:
            return self.ramp_to
        progress = min(max(elapsed_s / self.ramp_seconds, 0.0), 1.0)
        return self.rate + (self.ramp_to - self.rate) * progress

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["kind"] = str(self.kind)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fault:
        if not isinstance(d, dict):
            raise TypeError("a fault is a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s) {unknown}; known: {sorted(known)}")
        if "kind" not in d:
            raise ValueError("kind: field required")
        try:
            return cls(**d)
        except TypeError as exc:  # wrong value types surface here
            raise ValueError(str(exc)) from exc


class FaultSwitch:
    """The currently active fault, switchable from any thread while the server runs.

    The RNG is re-seeded each time a fault is set, so "rate 0.3, seed 7, 100 requests"
    always hits the same requests no matter what ran before.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, seed: int = 0) -> None:
        self._clock = clock
        self._seed = seed
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._set_at = 0.0
        self._rng = random.Random(seed)

    def set(self, fault: Fault | None) -> None:
        with self._lock:
            self._fault = fault
            self._set_at = self._clock()
            self._rng = random.Random(self._seed)

    @property
    def current(self) -> Fault | None:
        with self._lock:
            return self._fault

    @property
    def refusing(self) -> bool:
        fault = self.current
        return fault is not None and fault.kind is FaultKind.REFUSE

    @property
    def port_fault(self) -> FaultKind | None:
        """REFUSE or NO_ACCEPT when the port is down (either way), else None."""
        fault = self.current
        return fault.kind if fault is not None and fault.kind in PORT_KINDS else None

    def decide(self, model: str | None, fmt: str) -> Fault | None:
        """The fault that hits this request, or None for a healthy answer."""
        with self._lock:
            fault = self._fault
            if fault is None or fault.kind in PORT_KINDS:
                return None
            if not fault.applies_to(model, fmt):
                return None
            probability = fault.rate_at(self._clock() - self._set_at)
            # Always draw, so the n-th matching request sees the same number every run.
            draw = self._rng.random()
            return fault if draw < probability else None
