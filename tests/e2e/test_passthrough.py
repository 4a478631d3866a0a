"""A request valid for the provider reaches it untouched; what the gateway cannot read is the
client's 400, in the client's format, and never a target's fault (issue 11).

Claude Code's first request — a ``{"role": "system"}`` message inside ``messages``, adaptive
thinking, ``context_management``, ``output_config``, a beta header — is the standing example:
the gateway used to refuse it with its own copy of an older rule.
"""

from __future__ import annotations

import copy
import json

import httpx
import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread

A_HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json",
             "anthropic-beta": "claude-code-20250219,mid-conversation-system-2026-04-07"}
O_HEADERS = {"content-type": "application/json"}
CLAUDE_CODE = {
    "model": "claude-first", "max_tokens": 32000,
    "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
                 {"role": "system", "content": "The user prefers short answers."}],
    "thinking": {"type": "adaptive"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "high"},
    "metadata": {"user_id": "user_abc"},
}
MID_SYSTEM_O = {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"},
                             {"role": "system", "content": "Answer in French."}]}


@pytest.fixture(scope="module")
def gw():
    sim = {"kind": "simulated", "token_delay_s": 0}
    opus = {"provider": "claude", "model": "claude-opus-4-8", "capabilities": {"system_messages": True}}
    cfg = parse_config({
        "server": {"access_log": False},
        "providers": {"claude": {**sim, "format": "anthropic"}, "gpt": {**sim, "format": "openai"}},
        "routes": {"claude-first": {"targets": [{"provider": "claude", "model": "claude-opus-4-8"},
                                                {"provider": "gpt", "model": "gpt-4.1"}]},
                   "gpt-only": {"targets": [{"provider": "gpt", "model": "gpt-4.1"}]},
                   "opus": {"targets": [opus]},
                   "sonnet": {"targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}]}},
    })
    with GatewayThread(cfg) as g:
        yield g
        assert g.blamed() == []


def last_sent(gw, provider):
    rec = gw.gateway.providers[provider].server.last_requests[-1]
    return json.loads(rec.body), rec.headers


@pytest.mark.parametrize("stream", [False, True])
def test_claude_code_request_reaches_claude_untouched(gw, stream):
    body = dict(CLAUDE_CODE, stream=stream)
    r = httpx.post(gw.url + "/v1/messages", headers=A_HEADERS, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["x-ridethrough-target"] == "claude/claude-opus-4-8"
    sent, headers = last_sent(gw, "claude")
    assert sent == dict(body, model="claude-opus-4-8")
    assert headers["anthropic-beta"] == A_HEADERS["anthropic-beta"]


def test_claude_code_request_to_an_openai_target_keeps_the_system_message_in_place(gw):
    r = httpx.post(gw.url + "/v1/messages", headers=A_HEADERS, json=dict(CLAUDE_CODE, model="gpt-only"))
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "message"
    sent, headers = last_sent(gw, "gpt")
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", "You are Claude Code."), ("user", "Say hello"),
        ("system", "The user prefers short answers.")]
    assert "anthropic-beta" not in headers


def test_openai_system_message_keeps_its_place_only_where_the_target_takes_it(gw):
    url = gw.url + "/v1/chat/completions"
    r = httpx.post(url, headers=O_HEADERS, json=dict(MID_SYSTEM_O, model="opus"))
    assert r.status_code == 200, r.text
    sent, _ = last_sent(gw, "claude")
    assert sent["system"] == "Be terse."
    assert sent["messages"] == [{"role": "user", "content": "Hi"},
                                {"role": "system", "content": "Answer in French."}]
    r = httpx.post(url, headers=O_HEADERS, json=dict(MID_SYSTEM_O, model="sonnet"))
    assert r.status_code == 200, r.text
    sent, _ = last_sent(gw, "claude")
    assert [b["text"] for b in sent["system"]] == ["Be terse.", "Answer in French."]
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]


def test_what_the_provider_refuses_comes_back_as_its_own_400(gw):
    body = dict(CLAUDE_CODE, messages=[{"role": "robot", "content": "beep"}])
    r = httpx.post(gw.url + "/v1/messages", headers=A_HEADERS, json=body)
    assert r.status_code == 400
    assert r.json()["error"] == {"type": "invalid_request_error",
                                 "message": "messages.0.role: Input should be 'user' or 'assistant'"}
    assert r.headers["x-should-retry"] == "false"
    stats = gw.gateway.providers["gpt"].server.stats
    before = stats.total
    r = httpx.post(gw.url + "/v1/messages", headers=A_HEADERS, json=dict(CLAUDE_CODE, temperature=3))
    assert r.status_code == 400 and "temperature" in r.json()["error"]["message"]
    assert stats.total == before  # a client's mistake is not failed over


def test_a_crash_while_translating_a_well_formed_request_is_ours_not_the_callers(monkeypatch):
    """Our translator's bug on a valid request is no 400 for the caller: the target is skipped
    as a translation error (which never moves its breaker or health), and the next target —
    here a passthrough one — serves."""
    from ridethrough.protocols import translate

    def broken(*args, **kwargs):
        raise AttributeError("'int' object has no attribute 'get'")

    monkeypatch.setattr(translate, "openai_to_anthropic_request", broken)
    sim = {"kind": "simulated", "token_delay_s": 0}
    cfg = parse_config({
        "server": {"access_log": False},
        "providers": {"claude": {**sim, "format": "anthropic"}, "gpt": {**sim, "format": "openai"}},
        "routes": {"claude-first": {"targets": [{"provider": "claude", "model": "claude-sonnet-4-5"},
                                                {"provider": "gpt", "model": "gpt-4.1"}]}},
    })
    with GatewayThread(cfg) as g:
        for stream in (False, True):
            body = {"model": "claude-first", "stream": stream,
                    "messages": [{"role": "user", "content": "x"}]}
            r = httpx.post(g.url + "/v1/chat/completions", headers=O_HEADERS, json=body)
            assert r.status_code == 200, r.text
            assert r.headers["x-ridethrough-target"] == "gpt/gpt-4.1"
            assert "claude/claude-sonnet-4-5=translation_error" in \
                r.headers["x-ridethrough-fallback-reason"]
        assert g.blamed() == []


@pytest.mark.parametrize("path,fmt", [("/v1/messages", "anthropic"), ("/v1/chat/completions", "openai")])
def test_the_last_resort_answers_in_the_paths_format_with_the_real_request_id(gw, monkeypatch, path, fmt):
    async def bug(req):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(gw.gateway, "serve", bug)
    body = copy.deepcopy(CLAUDE_CODE) if fmt == "anthropic" else dict(MID_SYSTEM_O, model="sonnet")
    body["model"] = "sonnet"
    # An Anthropic header on the OpenAI path: the path decides the format.
    r = httpx.post(gw.url + path, headers=A_HEADERS, json=body)
    assert r.status_code == 500
    rid = r.headers["x-request-id"]
    assert rid.startswith("req_")
    if fmt == "anthropic":
        assert r.json()["type"] == "error" and r.json()["request_id"] == rid
    else:
        assert set(r.json()) == {"error"} and r.json()["error"]["type"] == "server_error"
    r = httpx.post(gw.url + path, headers={**A_HEADERS, "x-request-id": "mine-1"}, json=body)
    assert r.headers["x-request-id"] == "mine-1"
