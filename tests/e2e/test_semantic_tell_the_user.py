"""A semantic answer tells the user so: headers for developers, a note for end users.

Real gateway, simulated providers (all clouds down), the official anthropic and openai SDKs
over real sockets, JSON and streams in both formats.
"""

from __future__ import annotations

import httpx
import pytest

from ridethrough.harness import GatewayThread
from support.tier_topology import KEY_B, PROVIDER_SECRET, STATIC, clients, clouds, config

NOTE = "Heads up: saved answer to a similar question."
ASKED = "How do I reset my password? My key is sk-proj-PASTEDBYMISTAKE12345"
PARAPHRASE = "How can I reset my password? My key is sk-proj-PASTEDBYMISTAKE12345"


@pytest.fixture()
def outage(tmp_path, monkeypatch):
    monkeypatch.setenv("RT_TIER_TEST_KEY", PROVIDER_SECRET)
    cfg = config(tmp_path, static_answer=STATIC,
                 semantic_cache={"enabled": True, "disclose": True, "disclose_note": NOTE})
    with GatewayThread(cfg) as g:
        ac, _ = clients(g)
        live = ac.messages.create(model="support-bot", max_tokens=64,
                                  messages=[{"role": "user", "content": ASKED}])
        g.flush_cache()
        clouds(g, down=True)
        g.live_text = live.content[0].text
        yield g


def assert_semantic_headers(headers) -> None:
    assert headers["x-ridethrough-cache"] == "semantic"
    match = headers["x-ridethrough-semantic-match"]
    assert match.startswith("similarity=0.9")
    assert 'question="How do I reset my password? My key is [redacted]"' in match
    assert "PASTEDBYMISTAKE" not in match and PROVIDER_SECRET not in match


def test_json_answers_carry_the_match_and_the_note_in_both_formats(outage) -> None:
    ac, oc = clients(outage)
    raw = ac.messages.with_raw_response.create(
        model="support-bot", max_tokens=64, messages=[{"role": "user", "content": PARAPHRASE}])
    assert_semantic_headers(raw.headers)
    assert raw.parse().content[0].text == f"{NOTE}\n\n{outage.live_text}"
    raw = oc.chat.completions.with_raw_response.create(
        model="support-bot", max_tokens=64, messages=[{"role": "user", "content": PARAPHRASE}])
    assert_semantic_headers(raw.headers)
    assert raw.parse().choices[0].message.content == f"{NOTE}\n\n{outage.live_text}"


def test_streams_carry_the_match_and_the_note_in_both_formats(outage) -> None:
    ac, oc = clients(outage)
    with ac.messages.with_streaming_response.create(
            model="support-bot", max_tokens=64, stream=True,
            messages=[{"role": "user", "content": PARAPHRASE}]) as response:
        assert_semantic_headers(response.headers)
        text = "".join(e.delta.text for e in response.parse()
                       if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == f"{NOTE}\n\n{outage.live_text}"
    with oc.chat.completions.with_streaming_response.create(
            model="support-bot", max_tokens=64, stream=True,
            messages=[{"role": "user", "content": PARAPHRASE}]) as response:
        assert_semantic_headers(response.headers)
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == f"{NOTE}\n\n{outage.live_text}"


def test_another_key_never_sees_the_question_or_the_answer(outage) -> None:
    ac, _ = clients(outage, key=KEY_B)
    raw = ac.messages.with_raw_response.create(
        model="support-bot", max_tokens=64, messages=[{"role": "user", "content": PARAPHRASE}])
    assert "x-ridethrough-semantic-match" not in raw.headers
    assert raw.parse().content[0].text == STATIC


def test_a_near_miss_gets_the_static_answer_not_the_cached_one(outage) -> None:
    _, oc = clients(outage)
    raw = oc.chat.completions.with_raw_response.create(
        model="support-bot", max_tokens=64,
        messages=[{"role": "user", "content": ASKED.replace("reset", "change")}])
    assert raw.headers.get("x-ridethrough-cache") is None
    assert raw.parse().choices[0].message.content == STATIC


def test_without_disclose_the_answer_text_is_untouched(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RT_TIER_TEST_KEY", PROVIDER_SECRET)
    with GatewayThread(config(tmp_path, static_answer=STATIC,
                              semantic_cache={"enabled": True})) as g:
        ac, oc = clients(g)
        live = oc.chat.completions.create(model="support-bot", max_tokens=64,
                                          messages=[{"role": "user", "content": ASKED}])
        g.flush_cache()
        clouds(g, down=True)
        raw = ac.messages.with_raw_response.create(
            model="support-bot", max_tokens=64, messages=[{"role": "user", "content": PARAPHRASE}])
        assert_semantic_headers(raw.headers)
        assert raw.parse().content[0].text == live.choices[0].message.content



def test_metrics_show_the_semantic_tier_at_work(outage) -> None:
    ac, _ = clients(outage)
    ac.messages.create(model="support-bot", max_tokens=64,
                       messages=[{"role": "user", "content": PARAPHRASE}])
    text = httpx.get(outage.url + "/metrics", timeout=10).text
    assert 'ridethrough_semantic_embeddings_total{result="embedded"} 1' in text
    served = [line for line in text.splitlines()
              if line.startswith("ridethrough_semantic_lookups_total")]
    assert served and float(served[0].rsplit(" ", 1)[1]) >= 1
