"""The ``health:`` section of the config: thresholds, probes, status pages, webhooks.

Everything here has a default that works with no config at all: passive health, incidents
and the status page are on; probes, upstream status pages and webhooks are opt-in because
they cost money (probes), reach the internet (status pages) or need a receiver (webhooks).
Unknown keys are errors, like the rest of the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from ridethrough.config.base import Strict

if TYPE_CHECKING:
    from ridethrough.config.models import Config


class Thresholds(Strict):
    """When a component stops being ``operational``. Rates are failures / judged requests."""

    window_s: float = Field(120.0, gt=0)          # sliding window the status is judged on
    min_requests: int = Field(5, ge=1)            # below this, error rate says nothing
    error_rate_degraded: float = Field(0.05, gt=0, le=1)
    error_rate_partial: float = Field(0.25, gt=0, le=1)
    error_rate_major: float = Field(0.75, gt=0, le=1)
    latency_p95_degraded_ms: float = Field(60_000.0, gt=0)   # whole non-streamed answers
    ttft_p95_degraded_ms: float = Field(10_000.0, gt=0)      # time to first token, streams
    fallback_rate_degraded: float = Field(0.10, gt=0, le=1)  # route answers not from a live model
    recovery_successes: int = Field(5, ge=1)      # this many oks in a row forgive the window


class ProbeConfig(Strict):
    """An active probe of one target: a tiny real request, also used as the half-open trial."""

    interval_s: float = Field(60.0, ge=1)
    timeout_s: float = Field(20.0, gt=0)
    prompt: str = "ping"
    max_tokens: int = Field(1, ge=1)   # reasoning models may need more to answer at all


class IncidentConfig(Strict):
    open_after_s: float = Field(60.0, ge=0)       # non-operational this long → incident
    quiet_period_s: float = Field(600.0, ge=0)    # operational this long → resolved


class StatusPagesConfig(Strict):
    """Providers' own Statuspage-v2 pages, read as confirmation only (they lag real outages)."""

    enabled: bool = False
    interval_s: float = Field(120.0, ge=5)
    timeout_s: float = Field(10.0, gt=0)
    # provider name (as in providers:) → base URL, e.g. anthropic: https://status.claude.com
    pages: dict[str, str] = Field(default_factory=dict)
    # provider name → the upstream component names that matter (matched by name, not id)
    components: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("pages")
    @classmethod
    def _urls(cls, v: dict[str, str]) -> dict[str, str]:
        for name, url in v.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{name}: must start with http:// or https://, got {url!r}")
        return {k: u.rstrip("/") for k, u in v.items()}


WebhookEvent = Literal["incident", "component"]


def _every_webhook_event() -> list[WebhookEvent]:
    return ["incident", "component"]


class WebhookConfig(Strict):
    url: str
    format: Literal["statuspage", "slack"] = "statuspage"
    secret_env: str | None = None   # env var holding the HMAC secret (preferred)
    secret: str | None = None       # inline secret, for tests and throwaway setups
    events: list[WebhookEvent] = Field(default_factory=_every_webhook_event)
    max_attempts: int = Field(5, ge=1, le=20)
    backoff_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {v!r}")
        return v


class RetentionConfig(Strict):
    """How long each resolution of health buckets is kept (Uptime Kuma's split)."""

    minute_hours: float = Field(48.0, gt=0)
    hour_days: float = Field(30.0, gt=0)
    day_days: float = Field(90.0, gt=0)
    incident_days: float = Field(365.0, gt=0)


class HealthConfig(Strict):
    enabled: bool = True
    page_name: str = "ridethrough"
    page_url: str | None = None      # public base URL, for shortlinks and feeds
    tick_s: float = Field(1.0, gt=0)           # drain records and judge status this often
    flush_interval_s: float = Field(10.0, gt=0)  # write buckets to the store this often
    queue_max: int = Field(100_000, ge=100)    # records waiting for the ticker; beyond, dropped
    thresholds: Thresholds = Thresholds()
    incidents: IncidentConfig = IncidentConfig()
    probes: dict[str, ProbeConfig] = Field(default_factory=dict)  # "provider/model" → probe
    status_pages: StatusPagesConfig = StatusPagesConfig()
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    retention: RetentionConfig = RetentionConfig()


def health_config_of(cfg: Config) -> HealthConfig:
    """The health section, or the defaults while the top-level Config has none."""
    found = getattr(cfg, "health", None)
    return found if isinstance(found, HealthConfig) else HealthConfig()
