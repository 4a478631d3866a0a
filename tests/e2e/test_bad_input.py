"""Bad input gets a clear 4xx in the caller's own format, and the server keeps serving."""

from __future__ import annotations

import json
import logging

import anthropic
import httpx
import openai
import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread
from ridethrough.keys import hash_key

GATEWAY_KEY = "rt-test-gateway-key"


@pytest.fixture(scope="module")
def gw():
    cfg = parse_config({
        "server": {"access_log": True, "max_body_bytes": 20000,
                   "gateway_keys": [{"name": "app", "sha256": hash_key(GATEWAY_KEY)}]},
        "providers": {"claude": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0},
                      "gpt": {"kind": "simulated", "format": "openai", "token_delay_s": 0}},
        "routes": {"claude-sonnet-4-5": {"targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}]},
                   "gpt-4o": {"targets": [{"provider": "gpt", "model": "gpt-4o"}]}},
    })
    with GatewayThread(cfg) as g:
        yield g


A_HEADERS = {"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
O_HEADERS = {"authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"}
GOOD_A = {"model": "claude-sonnet-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
GOOD_O = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}


def still_serving(gw):
    a = httpx.post(gw.url + "/v1/messages", headers=A_HEADERS, json=GOOD_A)
    o = httpx.post(gw.url + "/v1/chat/completions", headers=O_HEADERS, json=GOOD_O)
    assert a.status_code == 200 and o.status_code == 200
    for b in gw.gateway.board.snapshot():  # bad input is never a target's failure
        assert b["consecutive_failures"] == 0 and b["window_error_rate"] == 0, b


def anthropic_error(r, status, etype):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == etype
    assert "Traceback" not in r.text
    return body["error"]["message"]


def openai_error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert "Traceback" not in r.text
    return body["error"]["message"]


CASES = [
    # (name, content, content-type, status, expected words in the message)
    ("malformed json", b'{"model": "claude-sonnet-4-5", ', "application/json", 400, "not valid JSON"),
    ("not an object", b"[1, 2]", "application/json", 400, "JSON object"),
    ("wrong content type", b"model=x", "application/x-www-form-urlencoded", 415, "content-type"),
    ("empty body", b"", "application/json", 400, "empty"),
]


@pytest.mark.parametrize("name,content,ctype,status,words", CASES, ids=[c[0] for c in CASES])
def test_unparseable_bodies(gw, name, content, ctype, status, words):
    r = httpx.post(gw.url + "/v1/messages", headers={**A_HEADERS, "content-type": ctype}, content=content)
    assert words in anthropic_error(r, status, "invalid_request_error")
    r = httpx.post(gw.url + "/v1/chat/completions", headers={**O_HEADERS, "content-type": ctype},
                   content=content)
    assert words in openai_error(r, status)
    still_serving(gw)


@pytest.mark.parametrize("mutate,field", [
    (lambda b: b.pop("max_tokens"), "max_tokens"),
    (lambda b: b.update(max_tokens="ten"), "max_tokens"),
    (lambda b: b.pop("messages"), "messages"),
    (lambda b: b.update(messages=[{"role": "robot", "content": "x"}]), "role"),
    (lambda b: b.update(temperature=3), "temperature"),
    (lambda b: b.update(stream="yes"), "stream"),
])
def test_anthropic_missing_or_mistyped_fields(gw, mutate, field):
    body = json.loads(json.dumps(GOOD_A))
    mutate(body)
    r = httpx.post(gw.url + "/v1/messages", headers=A_HEADERS, json=body)
    assert field in anthropic_error(r, 400, "invalid_request_error")
    still_serving(gw)


OPENAI_MISTAKES = [
    (lambda b: b.pop("messages"), "messages"),
    (lambda b: b.update(messages=[]), "messages"),
    (lambda b: b.update(temperature="hot"), "temperature"),
    (lambda b: b.update(max_tokens=0), "max_tokens"),
]


@pytest.mark.parametrize("mutate,field", [
    *OPENAI_MISTAKES,
    (lambda b: b.update(stop=["a", "b", "c", "d", "e"]), "stop"),  # OpenAI's own limit
])
def test_openai_missing_or_mistyped_fields(gw, mutate, field):
    """To an OpenAI target: checked by the gateway or by the provider, 400 either way."""
    body = json.loads(json.dumps(GOOD_O))
    body["model"] = "gpt-4o"
    mutate(body)
    r = httpx.post(gw.url + "/v1/chat/completions", headers=O_HEADERS, json=body)
    assert field in openai_error(r, 400)
    still_serving(gw)


@pytest.mark.parametrize("mutate,field", OPENAI_MISTAKES)
def test_openai_mistakes_to_a_claude_only_route(gw, mutate, field):
    """Translation cannot carry them: no target can serve, a 400 naming the field."""
    body = json.loads(json.dumps(GOOD_O))
    mutate(body)
    r = httpx.post(gw.url + "/v1/chat/completions", headers=O_HEADERS, json=body)
    assert field in openai_error(r, 400)
    still_serving(gw)


def test_unknown_model_sdk_errors(gw):
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as ei:
        a.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert "no-such-model" in str(ei.value) and "claude-sonnet-4-5" in str(ei.value)
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as ei:
        o.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert ei.value.code == "model_not_found"
    still_serving(gw)


def test_body_over_limit(gw):
    big = dict(GOOD_A, messages=[{"role": "user", "content": "x" * 50000}])
    r = httpx.post(gw.url + "/v1/messages", headers=A_HEADERS, json=big)
    assert "limit" in anthropic_error(r, 413, "request_too_large")
    r = httpx.post(gw.url + "/v1/chat/completions", headers=O_HEADERS,
                   json=dict(GOOD_O, messages=big["messages"]))
    assert "limit" in openai_error(r, 413)
    still_serving(gw)


def test_gateway_key_required_and_never_forwarded(gw):
    r = httpx.post(gw.url + "/v1/messages", headers={**A_HEADERS, "x-api-key": "wrong"}, json=GOOD_A)
    anthropic_error(r, 401, "authentication_error")
    r = httpx.post(gw.url + "/v1/chat/completions",
                   headers={**O_HEADERS, "authorization": "Bearer wrong"}, json=GOOD_O)
    openai_error(r, 401)
    sim = gw.gateway.providers["claude"].server
    sim.last_requests.clear()
    still_serving(gw)
    for rec in sim.last_requests:
        assert GATEWAY_KEY not in json.dumps(rec.headers)


def test_client_disconnect_mid_stream_cancels_upstream(gw):
    sim = gw.gateway.providers["claude"].server
    sim.token_delay_s = 0.05
    try:
        with httpx.stream("POST", gw.url + "/v1/messages", headers=A_HEADERS,
                          json=dict(GOOD_A, max_tokens=500, stream=True)) as r:
            it = r.iter_raw()
            next(it)
        # the gateway closes its upstream stream; nothing is left in flight
        import time
        for _ in range(200):
            if gw.gateway.inflight_streams == 0:
                break
            time.sleep(0.05)
        assert gw.gateway.inflight_streams == 0
    finally:
        sim.token_delay_s = 0
    still_serving(gw)


def test_access_log_line_is_json_without_secrets(gw, caplog):
    caplog.set_level(logging.INFO, logger="ridethrough.access")
    r = httpx.post(gw.url + "/v1/messages", headers={**A_HEADERS, "x-request-id": "my-req-42"}, json=GOOD_A)
    assert r.headers["x-request-id"] == "my-req-42"
    lines = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "ridethrough.access"]
    line = next(line for line in lines if line["request_id"] == "my-req-42")
    assert line["route"] == "claude-sonnet-4-5" and line["status"] == 200
    assert line["attempts"][0]["target"] == "claude/claude-sonnet-4-5"
    assert line["attempts"][0]["outcome"] == "ok" and line["attempts"][0]["upstream_request_id"]
    assert line["tokens"]["output_tokens"] > 0
    assert GATEWAY_KEY not in json.dumps(lines)


def test_healthz_and_readyz(gw):
    assert httpx.get(gw.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(gw.url + "/readyz").status_code == 200
