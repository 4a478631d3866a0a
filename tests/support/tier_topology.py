"""The topology of the fallback-tier tests: a route over two simulated clouds with the cache
in front of the static answer, two gateway keys, and a switch to take both clouds down.

Shared by tests/e2e/test_fallback_tiers.py and tests/e2e/test_semantic_tell_the_user.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai

from ridethrough.config import Config, parse_config
from ridethrough.keys import hash_key
from ridethrough.simulator import Fault, FaultKind

KEY_A, KEY_B = "rt-key-alpha-secret", "rt-key-beta-secret"
PROVIDER_SECRET = "sk-ant-provider-secret-xyz"
STATIC = "Our assistant is briefly unavailable; please try again soon."


def config(tmp: Path, **route_extra: Any) -> Config:
    """Route "support-bot": Claude, then GPT, then the cache; ``route_extra`` adds to it."""
    route = {"targets": [{"provider": "claude", "model": "claude-sonnet-4-5"},
                         {"provider": "gpt", "model": "gpt-4.1"}],
             "cache": {"mode": "fallback-only", "ttl_s": 60, "stale_ttl_s": 3600},
             **route_extra}
    return parse_config({
        "server": {"access_log": False, "data_dir": str(tmp),
                   "gateway_keys": [{"name": "alpha", "sha256": hash_key(KEY_A)},
                                    {"name": "beta", "sha256": hash_key(KEY_B)}]},
        "providers": {
            "claude": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0,
                       "api_key_env": "RT_TIER_TEST_KEY"},
            "gpt": {"kind": "simulated", "format": "openai", "token_delay_s": 0},
        },
        "routes": {"support-bot": route},
        "resilience": {"breaker": {"consecutive_failures": 100, "min_requests": 1000}},
    })


def clients(g: Any, key: str = KEY_A) -> tuple[anthropic.Anthropic, openai.OpenAI]:
    return (anthropic.Anthropic(base_url=g.url, api_key=key, max_retries=0),
            openai.OpenAI(base_url=g.url + "/v1", api_key=key, max_retries=0))


def clouds(g: Any, down: bool) -> None:
    """Both simulated clouds answer 503 (``down``), or are healthy again."""
    for name in ("claude", "gpt"):
        g.gateway.providers[name].server.set_fault(
            Fault(kind=FaultKind.HTTP_ERROR, status=503) if down else None)
