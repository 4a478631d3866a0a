"""A long wait before the commit point: headers and protocol keep-alives go out first."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread
from ridethrough.simulator import Fault, FaultKind


@pytest.fixture(scope="module")
def gw():
    cfg = parse_config({
        "server": {"access_log": False},
        "providers": {
            "primary": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0,
                        "timeouts": {"first_byte": 1.5, "first_token": 1.5, "idle": 1.5, "total": 3}},
            "secondary": {"kind": "simulated", "format": "openai", "token_delay_s": 0,
                          "timeouts": {"first_byte": 1.5, "first_token": 1.5, "idle": 1.5, "total": 3}},
        },
        "routes": {"m": {"targets": [{"provider": "primary", "model": "claude-sonnet-4-5"},
                                     {"provider": "secondary", "model": "gpt-4.1"}]}},
        "resilience": {"commit_keepalive_s": 0.3},
    })
    with GatewayThread(cfg) as g:
        g.gateway.providers["primary"].server.set_fault(Fault(kind=FaultKind.HANG_AFTER_HEADERS))
        yield g


def test_anthropic_pings_then_answer_from_secondary(gw):
    body = {"model": "m", "max_tokens": 30, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", gw.url + "/v1/messages", json=body,
                      headers={"anthropic-version": "2023-06-01"}, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["x-ridethrough-target"] == "pending"
        text = "".join(r.iter_text())
    first_real = text.index("event: message_start")
    assert text[:first_real].count("event: ping") >= 2  # kept alive while the primary hung
    assert ": served-by secondary/gpt-4.1" in text
    assert text.rstrip().endswith('data: {"type":"message_stop"}')


def test_sdks_accept_the_kept_alive_streams(gw):
    ac = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    with ac.messages.stream(model="m", max_tokens=300, messages=[{"role": "user", "content": "tides"}]) as s:
        final = s.get_final_message()
    assert "tides" in final.content[0].text and final.stop_reason == "end_turn"
    oc = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    with oc.chat.completions.stream(model="m", messages=[{"role": "user", "content": "waves"}]) as s:
        done = s.get_final_completion()
    assert "waves" in done.choices[0].message.content


def test_everything_failed_after_keepalive_is_an_in_band_error(gw):
    gw.gateway.providers["secondary"].server.set_fault(Fault(kind=FaultKind.HANG_AFTER_HEADERS))
    try:
        ac = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as ei:
            with ac.messages.stream(model="m", max_tokens=30,
                                    messages=[{"role": "user", "content": "x"}]) as s:
                s.get_final_message()
        assert "All targets failed" in str(ei.value)
    finally:
        gw.gateway.providers["secondary"].server.clear_faults()
