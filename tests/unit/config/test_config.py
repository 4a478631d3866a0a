"""Config: typed, strict, every error names its key path."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ridethrough.cli import main
from ridethrough.config import (
    ConfigError,
    default_config,
    load_config,
    parse_config,
    provider_key_status,
)

GOOD = """
providers:
  anthropic: {kind: anthropic, api_key_env: RT_UNSET_ANTHROPIC_KEY}
  openai:    {kind: openai, api_key_env: RT_UNSET_OPENAI_KEY}
  ollama:    {kind: openai-compatible, base_url: "http://127.0.0.1:11434/v1"}
routes:
  claude-sonnet-4-5:
    targets:
      - {provider: anthropic, model: claude-sonnet-4-5}
      - {provider: openai, model: gpt-4.1}
"""


def test_issue_example_parses(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(GOOD)
    cfg = load_config(p)
    assert [t.provider for t in cfg.routes["claude-sonnet-4-5"].targets] == ["anthropic", "openai"]
    assert cfg.providers["ollama"].base_url == "http://127.0.0.1:11434/v1"


@pytest.mark.parametrize("data,expected", [
    ({"providers": {"a": {"kind": "anthropic", "bogus": 1}}}, "providers.a.bogus: unknown key"),
    ({"routes": {"r": {"targets": [{"provider": "opneai", "model": "x"}]}}},
     "routes.r.targets[0].provider: unknown provider 'opneai'"),
    ({"providers": {"o": {"kind": "openai-compatible"}}}, "providers.o.base_url: required"),
    ({"providers": {"o": {"kind": "nope"}}}, "providers.o.kind"),
    ({"routes": {"r": {"targets": []}}}, "routes.r.targets"),
    ({"server": {"port": "eighty"}}, "server.port"),
    ({"routes": {"r": {"targets": [{"provider": "a", "model": "m"}], "cache": {"stale_tll_s": 5}}},
      "providers": {"a": {"kind": "anthropic"}}}, "routes.r.cache.stale_tll_s: unknown key"),
])
def test_errors_name_their_key_path(data, expected):
    with pytest.raises(ConfigError) as ei:
        parse_config(data)
    assert any(p.startswith(expected) for p in ei.value.problems), ei.value.problems


def test_missing_key_is_reported_not_fatal(monkeypatch):
    monkeypatch.delenv("RT_UNSET_ANTHROPIC_KEY", raising=False)
    import yaml

    cfg = parse_config(yaml.safe_load(GOOD))
    missing = {k.provider for k in provider_key_status(cfg) if not k.present}
    assert missing == {"anthropic", "openai"}


def test_default_config_from_environment():
    cfg = default_config({"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k2"}, local_model=False)
    assert set(cfg.routes) == {"claude-sonnet-4-5", "gpt-4.1"}
    cfg = default_config({}, local_model=True)
    assert set(cfg.routes) == {"local"}
    assert cfg.routes["local"].static_answer


def test_check_command(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(GOOD)
    r = CliRunner().invoke(main, ["check", "--config", str(p)], env={"RT_UNSET_ANTHROPIC_KEY": ""})
    assert r.exit_code == 0
    assert "UNAVAILABLE: RT_UNSET_ANTHROPIC_KEY is not set" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes: {r: {targets: [{provider: x, model: y}]}}\n")
    r = CliRunner().invoke(main, ["check", "--config", str(bad)])
    assert r.exit_code == 2
    assert "routes.r.targets[0].provider" in r.output


def test_serve_exits_nonzero_on_invalid_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: {a: {kind: anthropic, api_key: oops}}\n")
    r = CliRunner().invoke(main, ["serve", "--config", str(bad)])
    assert r.exit_code == 2
    assert "providers.a.api_key: unknown key" in r.output


def test_serve_refuses_public_bind_without_gateway_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(GOOD)
    r = CliRunner().invoke(main, ["serve", "--config", str(p), "--host", "0.0.0.0", "--port", "0"])
    assert r.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in r.output


def test_embedded_default_puts_the_cache_in_front_of_the_local_model():
    cfg = default_config({}, local_model=True)
    assert cfg.routes["local"].cache.mode == "always"
    assert [t.provider for t in cfg.routes["local"].targets] == ["local"]
