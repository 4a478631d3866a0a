"""Edge cases found in review: each asserts what the client sees."""

from __future__ import annotations

import httpx
import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread
from ridethrough.simulator import Fault, FaultKind


@pytest.fixture()
def gw():
    cfg = parse_config({
        "server": {"access_log": False},
        "providers": {"a": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0},
                      "b": {"kind": "simulated", "format": "openai", "token_delay_s": 0}},
        "routes": {"m": {"targets": [{"provider": "a", "model": "claude-sonnet-4-5"},
                                     {"provider": "b", "model": "gpt-4.1"}],
                         "cache": {"mode": "off"}}},
    })
    with GatewayThread(cfg) as g:
        yield g


BODY = {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
A = {"anthropic-version": "2023-06-01"}


def test_every_target_drained_lists_each_once(gw):
    for t in ("a/claude-sonnet-4-5", "b/gpt-4.1"):
        gw.gateway.board.force(t, "down")
    r = httpx.post(gw.url + "/v1/messages", json=BODY, headers=A)
    assert r.status_code == 529 and r.headers["x-should-retry"] == "false"
    targets = [a["target"] for a in r.json()["error"]["attempts"]]
    assert sorted(targets) == ["a/claude-sonnet-4-5", "b/gpt-4.1"]


def test_too_large_everywhere_is_a_client_error_not_an_outage(gw):
    for name in ("a", "b"):
        gw.gateway.providers[name].server.set_fault(Fault(kind=FaultKind.HTTP_ERROR, status=413))
    r = httpx.post(gw.url + "/v1/messages", json=BODY, headers=A)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "too large for every target" in r.json()["error"]["message"]


def test_malformed_stream_options_is_a_400(gw):
    r = httpx.post(gw.url + "/v1/chat/completions",
                   json={"model": "m", "stream": True, "stream_options": "yes",
                         "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400 and "stream_options" in r.json()["error"]["message"]
