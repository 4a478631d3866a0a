"""Typed configuration: the floor every other layer reads, and imports nothing above it.

One pydantic model (``models.Config``) validated at start-up, its ``health:`` section
(``health``), the cross-checks that need the whole config (``checks``), and the strict
base and ``data_dir()`` (``base``). Every name is re-exported here, so code imports
``from ridethrough.config import X`` whichever module X lives in.
"""

from ridethrough.config.base import Strict, data_dir
from ridethrough.config.checks import cross_check, cross_check_health
from ridethrough.config.health import (
    HealthConfig,
    IncidentConfig,
    ProbeConfig,
    RetentionConfig,
    StatusPagesConfig,
    Thresholds,
    WebhookConfig,
    health_config_of,
)
from ridethrough.config.models import (
    DEFAULT_BASE_URLS,
    AdaptiveTimeoutConfig,
    BreakerConfig,
    CacheConfig,
    Capabilities,
    Config,
    ConfigError,
    Format,
    GatewayKey,
    HedgeConfig,
    KeyStatus,
    ProviderConfig,
    ProviderKind,
    ResilienceConfig,
    RetryConfig,
    RouteConfig,
    SemanticCacheConfig,
    ServerConfig,
    TargetConfig,
    TimeoutOverrides,
    Timeouts,
    default_config,
    load_config,
    parse_config,
    provider_key_status,
)

__all__ = [
    "DEFAULT_BASE_URLS", "AdaptiveTimeoutConfig", "BreakerConfig", "CacheConfig", "Capabilities",
    "Config", "ConfigError", "Format", "GatewayKey", "HealthConfig", "HedgeConfig",
    "IncidentConfig", "KeyStatus", "ProbeConfig", "ProviderConfig", "ProviderKind",
    "ResilienceConfig", "RetentionConfig", "RetryConfig", "RouteConfig", "SemanticCacheConfig",
    "ServerConfig", "StatusPagesConfig", "Strict", "TargetConfig", "Thresholds",
    "TimeoutOverrides", "Timeouts", "WebhookConfig", "cross_check", "cross_check_health",
    "data_dir", "default_config", "health_config_of", "load_config", "parse_config",
    "provider_key_status",
]
