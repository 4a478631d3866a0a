"""Provider kinds → adapter classes. Built-in kinds register the same way a plugin would."""

from __future__ import annotations

from collections.abc import Callable

from ridethrough.config import ProviderConfig
from ridethrough.providers.base import Provider

Factory = Callable[[str, ProviderConfig], Provider]


def _anthropic(name: str, cfg: ProviderConfig) -> Provider:
    from ridethrough.providers.anthropic import AnthropicProvider

    return AnthropicProvider(name, cfg)


def _openai(name: str, cfg: ProviderConfig) -> Provider:
    from ridethrough.providers.openai import OpenAIProvider

    return OpenAIProvider(name, cfg)


def _openai_compatible(name: str, cfg: ProviderConfig) -> Provider:
    from ridethrough.providers.openai import OpenAICompatibleProvider

    return OpenAICompatibleProvider(name, cfg)


def _simulated(name: str, cfg: ProviderConfig) -> Provider:
    from ridethrough.providers.simulated import SimulatedAnthropicProvider, SimulatedOpenAIProvider

    if cfg.format == "anthropic":
        return SimulatedAnthropicProvider(name, cfg)
    return SimulatedOpenAIProvider(name, cfg)


def _local(name: str, cfg: ProviderConfig) -> Provider:
    from ridethrough.providers.local import LocalProvider

    return LocalProvider(name, cfg)


KINDS: dict[str, Factory] = {
    "anthropic": _anthropic,
    "openai": _openai,
    "openai-compatible": _openai_compatible,
    "simulated": _simulated,
    "local": _local,
}


def build_provider(name: str, cfg: ProviderConfig) -> Provider:
    return KINDS[cfg.kind](name, cfg)
