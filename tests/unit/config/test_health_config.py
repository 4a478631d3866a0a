"""The health section of the config, and the component catalog every view shares."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ridethrough.config import HealthConfig, cross_check_health
from ridethrough.health import default_store_path
from ridethrough.health.catalog import Catalog
from support.health_records import simulated_config


def test_defaults_work_with_no_config_and_opt_ins_are_off() -> None:
    h = HealthConfig()
    assert h.enabled and not h.probes and not h.webhooks and not h.status_pages.enabled
    assert h.retention.day_days == 90 and h.incidents.open_after_s == 60


def test_unknown_keys_and_bad_urls_are_errors() -> None:
    with pytest.raises(ValidationError, match="extra"):
        HealthConfig.model_validate({"thresholds": {"eror_rate_major": 0.5}})
    with pytest.raises(ValidationError, match="http"):
        HealthConfig.model_validate({"webhooks": [{"url": "hooks.example/x"}]})
    with pytest.raises(ValidationError, match="http"):
        HealthConfig.model_validate({"status_pages": {"pages": {"anthropic": "status.claude.com"}}})
    h = HealthConfig.model_validate({"status_pages": {"pages": {"anthropic": "https://status.claude.com/"}}})
    assert h.status_pages.pages["anthropic"] == "https://status.claude.com"


def test_cross_check_names_unknown_probe_targets_and_providers() -> None:
    cfg = simulated_config()
    h = HealthConfig.model_validate({
        "probes": {"anthropic/claude-sonnet-4-5": {}, "anthropic/claude-opus": {}},
        "status_pages": {"pages": {"anthropic": "https://status.claude.com",
                                   "opneai": "https://status.openai.com"}}})
    problems = cross_check_health(cfg, h)
    assert len(problems) == 2
    assert problems[0].startswith("health.probes.anthropic/claude-opus: unknown target")
    assert problems[1] == "health.status_pages.pages.opneai: unknown provider"


def test_catalog_names_routes_targets_and_providers_stably() -> None:
    cat = Catalog.from_routes({"claude": ["anthropic/claude-sonnet-4-5", "openai/gpt-4o"],
                               "fast": ["openai/gpt-4o-mini"]},
                              {"claude": "local/smollm2"})
    ids = [c.id for c in sorted(cat.components.values(), key=lambda c: c.position)]
    assert ids == ["routes", "route-claude", "route-fast", "provider-anthropic",
                   "target-anthropic-claude-sonnet-4-5", "provider-openai", "target-openai-gpt-4o",
                   "target-openai-gpt-4o-mini", "provider-local", "target-local-smollm2"]
    assert cat.components["route:claude"].description == \
        "anthropic/claude-sonnet-4-5 → openai/gpt-4o → local/smollm2"
    for ref in ("claude", "route-claude", "route:claude"):
        found = cat.find(ref)
        assert found is not None and found.key == "route:claude"
    target = cat.find("openai/gpt-4o")
    assert target is not None and target.key == "target:openai/gpt-4o"
    provider = cat.find("openai")
    assert provider is not None and provider.kind == "provider"
    assert cat.find("nope") is None
    assert cat.subject_targets("route:claude") == {"anthropic/claude-sonnet-4-5", "openai/gpt-4o",
                                                   "local/smollm2"}
    assert cat.first_target == {"claude": "anthropic/claude-sonnet-4-5", "fast": "openai/gpt-4o-mini"}


def test_default_store_path_lives_in_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_store_path("/srv/rt") == "/srv/rt/health.sqlite3"
    monkeypatch.setenv("XDG_STATE_HOME", "/state")
    assert default_store_path(None) == "/state/ridethrough/health.sqlite3"
