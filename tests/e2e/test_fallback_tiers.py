"""Past the clouds: stale cache, semantic cache, capability-aware planning, static answer."""

from __future__ import annotations

import logging
import sqlite3

import anthropic
import httpx
import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread
from ridethrough.keys import hash_key
from ridethrough.routing.clock import FakeClock
from support.tier_topology import KEY_A, KEY_B, PROVIDER_SECRET, STATIC, clients, clouds, config


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RT_TIER_TEST_KEY", PROVIDER_SECRET)
    wall = FakeClock(start=1_700_000_000.0)
    with GatewayThread(config(tmp_path, static_answer=STATIC), wall_clock=wall) as g:
        g.wall = wall
        g.tmp = tmp_path
        yield g


def flush_cache(g):
    g.flush_cache()


Q = [{"role": "user", "content": "How do I reset my password?"}]


def test_all_clouds_down_serves_stale_then_stops_after_stale_ttl(env):
    ac, _ = clients(env)
    live = ac.messages.create(model="support-bot", max_tokens=64, messages=Q)
    flush_cache(env)
    clouds(env, down=True)
    env.wall.advance(120)  # past ttl_s=60: only stale-if-error may serve it
    raw = ac.messages.with_raw_response.create(model="support-bot", max_tokens=64, messages=Q)
    assert raw.headers["x-ridethrough-cache"] == "stale"
    assert int(raw.headers["age"]) >= 120
    stale = raw.parse()
    assert stale.content[0].text == live.content[0].text
    assert stale.id != live.id  # fresh ids on replay
    env.wall.advance(3600)  # past ttl + stale_ttl: no longer served; the static answer is
    raw = ac.messages.with_raw_response.create(model="support-bot", max_tokens=64, messages=Q)
    assert raw.headers.get("x-ridethrough-cache") is None
    assert raw.headers["x-ridethrough-degraded"] == "static"
    assert raw.parse().content[0].text == STATIC


def test_streamed_answers_cached_and_replayed_through_both_stream_helpers(env):
    ac, oc = clients(env)
    tool = {"name": "lookup_order", "description": "Find an order",
            "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}},
                             "required": ["order_id"]}}
    msgs = [{"role": "user", "content": "Where is my order?"}]
    with ac.messages.stream(model="support-bot", max_tokens=64, messages=msgs, tools=[tool]) as s:
        live = s.get_final_message()
    live_call = next(b for b in live.content if b.type == "tool_use")
    flush_cache(env)
    clouds(env, down=True)
    with ac.messages.stream(model="support-bot", max_tokens=64, messages=msgs, tools=[tool]) as s:
        replay = s.get_final_message()
        assert s.response.headers["x-ridethrough-cache"] == "hit"
    call = next(b for b in replay.content if b.type == "tool_use")
    assert call.name == live_call.name and call.input == live_call.input
    assert call.id != live_call.id and replay.stop_reason == "tool_use"
    # the same answer, cached from an Anthropic request, serves the OpenAI SDK's stream helper
    otool = {"type": "function", "function": {"name": "lookup_order", "description": "Find an order",
                                              "parameters": tool["input_schema"]}}
    with oc.chat.completions.stream(model="support-bot", max_tokens=64, messages=msgs, tools=[otool]) as s:
        final = s.get_final_completion()
    tc = final.choices[0].message.tool_calls[0]
    assert tc.function.name == "lookup_order" and final.choices[0].finish_reason == "tool_calls"
    assert tc.id != live_call.id


def test_cross_format_replay_openai_to_anthropic(env):
    ac, oc = clients(env)
    live = oc.chat.completions.create(model="support-bot", max_tokens=64, messages=Q)
    flush_cache(env)
    clouds(env, down=True)
    got = ac.messages.create(model="support-bot", max_tokens=64, messages=Q)
    assert got.content[0].text == live.choices[0].message.content


def test_no_store_is_honoured(env):
    ac, _ = clients(env)
    msgs = [{"role": "user", "content": "A private question"}]
    ac.messages.create(model="support-bot", max_tokens=64, messages=msgs,
                       extra_headers={"cache-control": "no-store"})
    flush_cache(env)
    clouds(env, down=True)
    raw = ac.messages.with_raw_response.create(model="support-bot", max_tokens=64, messages=msgs)
    assert raw.headers["x-ridethrough-degraded"] == "static"  # nothing was stored


def test_one_key_never_gets_another_keys_answer(env):
    ac_a, _ = clients(env, KEY_A)
    ac_b, _ = clients(env, KEY_B)
    msgs = [{"role": "user", "content": "What did I order last week?"}]
    ac_a.messages.create(model="support-bot", max_tokens=64, messages=msgs)
    flush_cache(env)
    clouds(env, down=True)
    raw_a = ac_a.messages.with_raw_response.create(model="support-bot", max_tokens=64, messages=msgs)
    assert raw_a.headers["x-ridethrough-cache"] == "hit"  # within ttl: a fresh hit for its own key
    raw_b = ac_b.messages.with_raw_response.create(model="support-bot", max_tokens=64, messages=msgs)
    assert raw_b.headers.get("x-ridethrough-cache") is None
    assert raw_b.headers["x-ridethrough-degraded"] == "static"


def test_cache_file_holds_no_secrets(env):
    ac, oc = clients(env)
    ac.messages.create(model="support-bot", max_tokens=64, messages=Q,
                       metadata={"user_id": "user-123"})
    oc.chat.completions.create(model="support-bot", messages=Q)
    flush_cache(env)
    db = env.tmp / "cache.sqlite3"
    assert db.exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from entries").fetchone()[0] >= 1
    blob = b"".join(p.read_bytes() for p in env.tmp.glob("cache.sqlite3*"))
    for secret in (KEY_A, KEY_B, PROVIDER_SECRET, hash_key(KEY_A)):
        assert secret.encode() not in blob


def test_cache_file_deleted_or_corrupted_while_serving(env, caplog):
    caplog.set_level(logging.WARNING)
    ac, _ = clients(env)
    ac.messages.create(model="support-bot", max_tokens=64, messages=Q)
    flush_cache(env)
    for p in env.tmp.glob("cache.sqlite3*"):
        p.write_bytes(b"this is not a database" * 100)
    for i in range(3):
        m = ac.messages.create(model="support-bot", max_tokens=64,
                               messages=[{"role": "user", "content": f"question {i}"}])
        assert m.content[0].text
    flush_cache(env)
    for p in env.tmp.glob("cache.sqlite3*"):
        p.unlink()
    m = ac.messages.create(model="support-bot", max_tokens=64, messages=Q)
    assert m.content[0].text
    flush_cache(env)
    assert any(r.name.startswith("ridethrough.cache") for r in caplog.records)


def test_capability_aware_planning_records_skips(tmp_path):
    cfg = parse_config({
        "server": {"access_log": False, "data_dir": str(tmp_path)},
        "providers": {
            "small": {"kind": "simulated", "format": "openai", "token_delay_s": 0,
                      "capabilities": {"tools": False, "images": False, "context_window": 400}},
            "big": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0},
        },
        "routes": {"r": {"targets": [{"provider": "small", "model": "tiny"},
                                     {"provider": "big", "model": "claude-sonnet-4-5"}]},
                   "only-small": {"targets": [{"provider": "small", "model": "tiny"}]}},
    })
    with GatewayThread(cfg) as g:
        ac = anthropic.Anthropic(base_url=g.url, api_key="x", max_retries=0)
        image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
        raw = ac.messages.with_raw_response.create(model="r", max_tokens=20, messages=[
            {"role": "user", "content": [{"type": "image", "source": image},
                                         {"type": "text", "text": "what is this"}]}])
        assert raw.headers["x-ridethrough-target"] == "big/claude-sonnet-4-5"
        assert "small/tiny=capability:images" in raw.headers["x-ridethrough-fallback-reason"]
        raw = ac.messages.with_raw_response.create(model="r", max_tokens=20, tools=[
            {"name": "t", "input_schema": {"type": "object"}}], messages=[{"role": "user", "content": "hi"}])
        assert "small/tiny=capability:tools" in raw.headers["x-ridethrough-fallback-reason"]
        raw = ac.messages.with_raw_response.create(model="r", max_tokens=20,
                                                   messages=[{"role": "user", "content": "word " * 600}])
        assert "small/tiny=capability:context_window" in raw.headers["x-ridethrough-fallback-reason"]
        assert g.gateway.providers["small"].server.stats.total == 0  # never sent there
        # when no target can serve it, the client gets a 4xx saying why
        r = httpx.post(g.url + "/v1/chat/completions", json={
            "model": "only-small",
            "tools": [{"type": "function", "function": {"name": "t", "parameters": {}}}],
            "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "no_target_can_serve"
        assert "capability:tools" in r.json()["error"]["message"]


def test_semantic_tier_serves_paraphrase_but_not_negation(tmp_path, monkeypatch):
    monkeypatch.setenv("RT_TIER_TEST_KEY", PROVIDER_SECRET)
    cfg = config(tmp_path, static_answer=STATIC, semantic_cache={"enabled": True, "threshold": 0.9})
    with GatewayThread(cfg) as g:
        ac, oc = clients(g)
        live = ac.messages.create(model="support-bot", max_tokens=64,
                                  messages=[{"role": "user", "content": "How do I reset my password?"}])
        flush_cache(g)
        clouds(g, down=True)
        raw = oc.chat.completions.with_raw_response.create(
            model="support-bot", max_tokens=64,
            messages=[{"role": "user", "content": "How can I reset my password?"}])
        assert raw.headers["x-ridethrough-cache"] == "semantic"
        assert float(raw.headers["x-ridethrough-cache-similarity"]) >= 0.9
        assert raw.parse().choices[0].message.content == live.content[0].text
        raw = ac.messages.with_raw_response.create(
            model="support-bot", max_tokens=64,
            messages=[{"role": "user", "content": "How do I not reset my password?"}])
        assert raw.headers.get("x-ridethrough-cache") is None
        assert raw.headers["x-ridethrough-degraded"] == "static"
