"""The three outcomes for what a target cannot carry, seen through the gateway."""

from __future__ import annotations

import json
import logging

import anthropic
import openai
import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread


@pytest.fixture(scope="module")
def gw():
    cfg = parse_config({
        "server": {"access_log": True},
        "providers": {"claude": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0},
                      "gpt": {"kind": "simulated", "format": "openai", "token_delay_s": 0}},
        "routes": {"claude-first": {"targets": [{"provider": "claude", "model": "claude-sonnet-4-5"},
                                                {"provider": "gpt", "model": "gpt-4.1"}]},
                   "gpt-first": {"targets": [{"provider": "gpt", "model": "gpt-4.1"},
                                             {"provider": "claude", "model": "claude-sonnet-4-5"}]},
                   "claude-only": {"targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}]}},
    })
    with GatewayThread(cfg) as g:
        yield g


def test_meaning_changing_loss_skips_the_target(gw):
    oc = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    raw = oc.chat.completions.with_raw_response.create(
        model="claude-first", n=2, messages=[{"role": "user", "content": "two answers"}])
    assert raw.headers["x-ridethrough-target"] == "gpt/gpt-4.1"
    assert "claude/claude-sonnet-4-5=untranslatable" in raw.headers["x-ridethrough-fallback-reason"]
    assert gw.gateway.providers["claude"].server.stats.total == 0


def test_no_target_can_carry_it_is_a_4xx(gw):
    oc = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as ei:
        oc.chat.completions.create(model="claude-only", n=2, messages=[{"role": "user", "content": "x"}])
    assert ei.value.code == "no_target_can_serve"


def test_harmless_loss_is_dropped_and_logged(gw, caplog):
    caplog.set_level(logging.INFO, logger="ridethrough.access")
    ac = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    raw = ac.messages.with_raw_response.create(
        model="gpt-first", max_tokens=30, extra_body={"top_k": 5},
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hello"}], extra_headers={"x-request-id": "loss-1"})
    assert raw.headers["x-ridethrough-target"] == "gpt/gpt-4.1"
    sent = json.loads(gw.gateway.providers["gpt"].server.last_requests[-1].body)
    assert "top_k" not in sent and "cache_control" not in json.dumps(sent)
    line = next(json.loads(r.getMessage()) for r in caplog.records
                if r.name == "ridethrough.access" and "loss-1" in r.getMessage())
    dropped = line["attempts"][0]["dropped"]
    assert "top_k" in dropped and any("cache_control" in d for d in dropped)
