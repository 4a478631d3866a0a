"""The official SDKs work against ridethrough by changing base_url only (issue: gateway core).

Every test drives the real `anthropic` and `openai` SDKs over a real socket to a gateway
whose providers are built-in simulators speaking the real wire formats.
"""

from __future__ import annotations

import base64
import json

import anthropic
import httpx
import openai
import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread

PNG_1PX = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()

WEATHER_TOOL_A = {"name": "get_weather", "description": "Weather for a city",
                  "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                   "required": ["city"]}}
WEATHER_TOOL_O = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                  "parameters": WEATHER_TOOL_A["input_schema"]}}


@pytest.fixture(scope="module")
def gw(monkeypatch_module):
    monkeypatch_module.setenv("RT_TEST_ANTHROPIC_KEY", "sk-ant-provider-secret")
    monkeypatch_module.setenv("RT_TEST_OPENAI_KEY", "sk-openai-provider-secret")
    cfg = parse_config({
        "server": {"access_log": False},
        "providers": {
            "claude": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0.0005,
                       "api_key_env": "RT_TEST_ANTHROPIC_KEY"},
            "gpt": {"kind": "simulated", "format": "openai", "token_delay_s": 0.0005,
                    "api_key_env": "RT_TEST_OPENAI_KEY"},
        },
        "routes": {
            # same format for each client on one route, cross-format on the other
            "claude-sonnet-4-5": {"targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}]},
            "gpt-4.1": {"targets": [{"provider": "gpt", "model": "gpt-4.1"}]},
        },
    })
    with GatewayThread(cfg) as g:
        yield g


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture()
def ac(gw):
    return anthropic.Anthropic(base_url=gw.url, api_key="client-key-not-for-upstream", max_retries=0)


@pytest.fixture()
def oc(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="client-key-not-for-upstream", max_retries=0)


def sim(gw, name):
    return gw.gateway.providers[name].server


ROUTES = [("claude-sonnet-4-5", "claude/claude-sonnet-4-5"), ("gpt-4.1", "gpt/gpt-4.1")]


@pytest.mark.parametrize("route,target", ROUTES)
def test_anthropic_sdk_json(ac, route, target):
    raw = ac.messages.with_raw_response.create(
        model=route, max_tokens=200, system="You are terse.",
        messages=[{"role": "user", "content": "Tell me about tides"}])
    msg = raw.parse()
    assert raw.headers["x-ridethrough-target"] == target
    assert raw.headers["x-ridethrough-attempts"] == "1"
    assert raw.headers["x-request-id"]
    assert msg.type == "message" and msg.role == "assistant"
    assert "tides" in msg.content[0].text
    assert msg.model == target.split("/", 1)[1]  # names the model that answered
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


@pytest.mark.parametrize("route,target", ROUTES)
def test_anthropic_sdk_stream_helper(ac, route, target):
    with ac.messages.stream(model=route, max_tokens=200,
                            messages=[{"role": "user", "content": "Explain rainbows"}]) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(texts) > 3  # really streamed, in pieces
    assert "".join(texts) == final.content[0].text
    assert "rainbows" in final.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("route,target", ROUTES)
def test_openai_sdk_json(oc, route, target):
    raw = oc.chat.completions.with_raw_response.create(
        model=route, messages=[{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "Tell me about volcanoes"}])
    c = raw.parse()
    assert raw.headers["x-ridethrough-target"] == target
    assert c.object == "chat.completion"
    assert "volcanoes" in c.choices[0].message.content
    assert c.choices[0].finish_reason == "stop"
    assert c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0
    assert c.model == target.split("/", 1)[1]


@pytest.mark.parametrize("route,target", ROUTES)
def test_openai_sdk_stream_helper(oc, route, target):
    with oc.chat.completions.stream(model=route, messages=[{"role": "user", "content": "Describe glaciers"}],
                                    stream_options={"include_usage": True}) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert len(deltas) > 3
    assert "".join(deltas) == final.choices[0].message.content
    assert "glaciers" in final.choices[0].message.content
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None and final.usage.completion_tokens > 0


@pytest.mark.parametrize("route,target", ROUTES)
def test_openai_raw_stream_without_usage_gets_no_usage_chunk(oc, route, target):
    chunks = list(oc.chat.completions.create(model=route, stream=True,
                                             messages=[{"role": "user", "content": "hi"}]))
    assert chunks and all(ch.choices for ch in chunks)  # no choices-less usage chunk
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("route,target", ROUTES)
def test_anthropic_tools_round_trip(ac, route, target):
    first = ac.messages.create(model=route, max_tokens=300, tools=[WEATHER_TOOL_A],
                               messages=[{"role": "user", "content": "Weather in Paris?"}])
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and isinstance(call.input, dict) and "city" in call.input
    second = ac.messages.create(model=route, max_tokens=300, tools=[WEATHER_TOOL_A], messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": "18 degrees and sunny"}]},
    ])
    assert second.stop_reason == "end_turn"
    assert "18 degrees and sunny" in second.content[0].text


@pytest.mark.parametrize("route,target", ROUTES)
def test_anthropic_streaming_tool_call(ac, route, target):
    with ac.messages.stream(model=route, max_tokens=300, tools=[WEATHER_TOOL_A],
                            messages=[{"role": "user", "content": "Weather in Oslo?"}]) as s:
        final = s.get_final_message()
    call = next(b for b in final.content if b.type == "tool_use")
    assert final.stop_reason == "tool_use"
    assert call.name == "get_weather" and "city" in call.input


@pytest.mark.parametrize("route,target", ROUTES)
def test_openai_tools_round_trip(oc, route, target):
    first = oc.chat.completions.create(model=route, tools=[WEATHER_TOOL_O],
                                       messages=[{"role": "user", "content": "Weather in Rome?"}])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    tc = choice.message.tool_calls[0]
    assert tc.function.name == "get_weather" and "city" in json.loads(tc.function.arguments)
    second = oc.chat.completions.create(model=route, tools=[WEATHER_TOOL_O], messages=[
        {"role": "user", "content": "Weather in Rome?"},
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": tc.id, "content": "25 degrees, light wind"},
    ])
    assert second.choices[0].finish_reason == "stop"
    assert "25 degrees, light wind" in second.choices[0].message.content


@pytest.mark.parametrize("route,target", ROUTES)
def test_openai_streaming_tool_call(oc, route, target):
    with oc.chat.completions.stream(model=route, tools=[WEATHER_TOOL_O],
                                    messages=[{"role": "user", "content": "Weather in Lima?"}]) as s:
        final = s.get_final_completion()
    tc = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls"
    assert tc.function.name == "get_weather" and "city" in json.loads(tc.function.arguments)


@pytest.mark.parametrize("route,target", ROUTES)
def test_images_reach_the_provider(ac, oc, gw, route, target):
    m = ac.messages.create(model=route, max_tokens=100, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1PX}},
        {"type": "text", "text": "What is in this picture?"}]}])
    assert "1 image" in m.content[0].text
    c = oc.chat.completions.create(model=route, messages=[{"role": "user", "content": [
        {"type": "text", "text": "Describe it"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1PX}"}}]}])
    assert "1 image" in c.choices[0].message.content


def test_system_prompt_and_sampling_reach_upstream_translated(oc, gw):
    s = sim(gw, "claude")
    s.last_requests.clear()
    oc.chat.completions.create(model="claude-sonnet-4-5", temperature=1.6, stop=["END"], max_tokens=77,
                               messages=[{"role": "system", "content": "You are a pirate."},
                                         {"role": "user", "content": "Ahoy"}])
    sent = json.loads(s.last_requests[-1].body)
    assert sent["system"] in ("You are a pirate.", [{"type": "text", "text": "You are a pirate."}])
    assert sent["stop_sequences"] == ["END"] and sent["max_tokens"] == 77
    assert sent["temperature"] <= 1.0  # OpenAI's 0–2 range clamped to Anthropic's 0–1


def test_models_list_both_sdks(ac, oc):
    a_ids = [m.id for m in ac.models.list()]
    o_ids = [m.id for m in oc.models.list()]
    assert set(a_ids) == set(o_ids) == {"claude-sonnet-4-5", "gpt-4.1"}


def test_passthrough_keeps_unknown_fields_and_beta_header_and_injects_provider_key(gw):
    s = sim(gw, "claude")
    s.last_requests.clear()
    r = httpx.post(gw.url + "/v1/messages?beta=true", headers={
        "x-api-key": "client-key-not-for-upstream", "anthropic-version": "2023-06-01",
        "anthropic-beta": "fancy-feature-2025-01-01", "content-type": "application/json"},
        json={"model": "claude-sonnet-4-5", "max_tokens": 50, "future_field": {"x": 1},
              "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    got = s.last_requests[-1]
    body = json.loads(got.body)
    assert body["future_field"] == {"x": 1}
    assert got.headers["anthropic-beta"] == "fancy-feature-2025-01-01"
    assert got.headers["x-api-key"] == "sk-ant-provider-secret"
    assert "client-key-not-for-upstream" not in json.dumps(got.headers)
    # provider's request id is passed; its rate-limit headers are not
    assert r.headers["request-id"].startswith("req_")
    assert not [h for h in r.headers if "ratelimit" in h]
    assert "sk-ant-provider-secret" not in r.text and "sk-ant-provider-secret" not in str(r.headers)


def test_openai_client_key_replaced_by_provider_key(oc, gw):
    s = sim(gw, "gpt")
    s.last_requests.clear()
    oc.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    headers = s.last_requests[-1].headers
    assert headers["authorization"] == "Bearer sk-openai-provider-secret"


def test_count_tokens_forwarded_and_estimated(ac, gw):
    r = ac.messages.count_tokens(model="claude-sonnet-4-5",
                                 messages=[{"role": "user", "content": "hello world"}])
    assert r.input_tokens > 0
    raw = httpx.post(gw.url + "/v1/messages/count_tokens", headers={"anthropic-version": "2023-06-01"},
                     json={"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]})
    assert raw.headers["x-ridethrough-token-count"] == "upstream"
    est = httpx.post(gw.url + "/v1/messages/count_tokens", headers={"anthropic-version": "2023-06-01"},
                     json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "x" * 300}]})
    assert est.status_code == 200
    assert est.headers["x-ridethrough-token-count"] == "estimate"
    assert est.json()["estimated"] is True and est.json()["input_tokens"] >= 75


def test_other_v1_paths_forwarded_or_clear_404(oc, gw):
    emb = oc.embeddings.create(model="text-embedding-3-small", input="hello")
    assert len(emb.data[0].embedding) > 0
    r = httpx.get(gw.url + "/v1/files/abc", headers={"anthropic-version": "2023-06-01"})
    # forwarded, without failover, to the first Anthropic-format provider, whose answer passes
    assert r.headers["x-ridethrough-target"] == "claude"
    assert r.status_code == 404
    r = httpx.get(gw.url + "/not-an-endpoint")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
