"""The simulator's healthy behaviour, seen through the official SDKs over a real socket."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from ridethrough.protocols.sse import SSEParser
from ridethrough.simulator import Fault, FaultKind, SimulatorServer

USER = [{"role": "user", "content": "How do I brew oolong tea?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer", "minimum": 1},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "detailed": {"type": "boolean"},
            "note": {"type": "string"},
        },
        "required": ["city", "days", "unit", "detailed"],
    },
}
TIME_TOOL = {"name": "get_time", "input_schema": {
    "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}


def openai_tool(tool: dict) -> dict:
    return {"type": "function", "function": {
        "name": tool["name"], "description": tool.get("description", ""),
        "parameters": tool["input_schema"]}}


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer("sim-a", token_delay_s=0.0)
    server.start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture
def claude(sim: SimulatorServer) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="sk-ant-test", max_retries=0)
    yield client
    client.close()


@pytest.fixture
def gpt(sim: SimulatorServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key="sk-test", max_retries=0)
    yield client
    client.close()


def raw_events(sim: SimulatorServer, path: str, body: dict, **headers: str) -> list:
    parser = SSEParser()
    with httpx.stream("POST", sim.base_url + path, json=body, headers=headers) as resp:
        assert resp.status_code == 200
        events = [ev for chunk in resp.iter_bytes() for ev in parser.feed(chunk)]
    return events + parser.flush()


# -- Anthropic Messages -----------------------------------------------------------------


def test_anthropic_json_answer_mentions_the_question_and_counts_tokens(claude, sim):
    raw = claude.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=200, messages=USER)
    msg = raw.parse()
    assert msg.id.startswith("msg_")
    assert msg.model == "claude-haiku-4-5"
    assert msg.stop_reason == "end_turn"
    text = msg.content[0].text
    assert text.startswith("[sim-a] Here is a short answer about: How do I brew oolong tea?")
    assert msg.usage.output_tokens == len(text.split())
    assert msg.usage.input_tokens >= len("How do I brew oolong tea?") // 4
    assert raw.headers["request-id"].startswith("req_")
    assert int(raw.headers["anthropic-ratelimit-requests-remaining"]) > 0
    assert "anthropic-ratelimit-tokens-reset" in raw.headers


def test_anthropic_answer_is_deterministic_and_stream_matches_json(claude):
    first = claude.messages.create(model="m", max_tokens=200, messages=USER)
    second = claude.messages.create(model="m", max_tokens=200, messages=USER)
    with claude.messages.stream(model="m", max_tokens=200, messages=USER) as stream:
        streamed = stream.get_final_message()
    assert first.content[0].text == second.content[0].text == streamed.content[0].text
    assert streamed.usage.output_tokens == first.usage.output_tokens
    assert streamed.stop_reason == "end_turn"


def test_anthropic_stream_has_exactly_the_documented_event_sequence(sim):
    events = raw_events(sim, "/v1/messages", {
        "model": "m", "max_tokens": 50, "messages": USER, "stream": True})
    names = [ev.event for ev in events]
    assert all(ev.event == ev.json()["type"] for ev in events)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [ev.json() for ev in events if ev.event == "content_block_delta"]
    assert deltas and all(d["delta"]["type"] == "text_delta" and d["index"] == 0 for d in deltas)
    start = events[0].json()["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    final = events[-2].json()
    assert final["usage"]["output_tokens"] == len(deltas)


def test_anthropic_beta_query_is_served(sim):
    resp = httpx.post(sim.base_url + "/v1/messages?beta=true",
                      json={"model": "m", "max_tokens": 10, "messages": USER})
    assert resp.status_code == 200 and resp.json()["type"] == "message"
    assert sim.last_requests[-1].query == "beta=true"


def test_anthropic_max_tokens_and_stop_sequences(claude):
    capped = claude.messages.create(model="m", max_tokens=4, messages=USER)
    assert capped.stop_reason == "max_tokens"
    assert capped.usage.output_tokens == 4
    stopped = claude.messages.create(model="m", max_tokens=200, messages=USER,
                                     stop_sequences=["oolong"])
    assert stopped.stop_reason == "stop_sequence"
    assert stopped.stop_sequence == "oolong"
    assert stopped.content[0].text.endswith("brew ")


def test_anthropic_acknowledges_images(claude):
    pixel = base64.b64encode(b"\x89PNG fake").decode()
    msg = claude.messages.create(model="m", max_tokens=200, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": pixel}},
        {"type": "text", "text": "What is this?"},
    ]}])
    assert "I see 1 image." in msg.content[0].text
    assert "What is this?" in msg.content[0].text


def test_anthropic_tool_call_json_and_stream(claude):
    msg = claude.messages.create(model="m", max_tokens=200, messages=USER,
                                 tools=[WEATHER_TOOL, TIME_TOOL])
    assert msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["text", "tool_use"]
    call = msg.content[1]
    assert call.name == "get_weather" and call.id.startswith("toolu_")
    assert call.input == {"city": "example-city", "days": 1, "unit": "celsius", "detailed": True}
    with claude.messages.stream(model="m", max_tokens=200, messages=USER,
                                tools=[WEATHER_TOOL, TIME_TOOL],
                                tool_choice={"type": "tool", "name": "get_time"}) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[-1].name == "get_time"
    assert final.content[-1].input == {"zone": "example-zone"}


def test_anthropic_tool_result_is_answered_in_text(claude):
    msg = claude.messages.create(model="m", max_tokens=200, tools=[WEATHER_TOOL], messages=[
        *USER,
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21 degrees and sunny"}]},
    ])
    assert msg.stop_reason == "end_turn"
    assert "The tool returned: 21 degrees and sunny" in msg.content[0].text


def test_anthropic_tool_choice_none_gives_text(claude):
    msg = claude.messages.create(model="m", max_tokens=200, messages=USER,
                                 tools=[WEATHER_TOOL], tool_choice={"type": "none"})
    assert [b.type for b in msg.content] == ["text"]


def test_anthropic_count_tokens(claude):
    counted = claude.messages.count_tokens(model="m", messages=USER)
    created = claude.messages.create(model="m", max_tokens=10, messages=USER)
    assert counted.input_tokens == created.usage.input_tokens > 0


def test_anthropic_validation_errors(claude, sim):
    resp = httpx.post(sim.base_url + "/v1/messages", json={"model": "m", "messages": USER})
    assert resp.status_code == 400
    assert resp.json()["error"] == {"type": "invalid_request_error",
                                    "message": "max_tokens: Field required"}
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(model="m", max_tokens=10, messages=[])
    assert info.value.body["error"]["type"] == "invalid_request_error"
    assert sim.stats.by_outcome["invalid_request"] == 2


def test_anthropic_mid_conversation_system_message_is_accepted_where_the_api_allows_it(claude, sim):
    system_turn = {"role": "system", "content": "Answer in French."}
    msg = claude.messages.create(model="claude-opus-4-8", max_tokens=20, messages=[*USER, system_turn])
    assert msg.stop_reason is not None
    resp = httpx.post(sim.base_url + "/v1/messages", json={
        "model": "m", "max_tokens": 5, "messages": [system_turn, *USER]})
    assert resp.status_code == 400 and resp.json()["error"]["message"].startswith("messages.0.role")


TOOL_BAD_SCHEMA = {"name": "f", "input_schema": {"type": "object", "properties": -1, "required": ["x"]}}


@pytest.mark.parametrize("path,body", [
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [1]}]}),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": USER, "tools": [TOOL_BAD_SCHEMA]}),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": USER, "tools": 1.5}),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": USER, "temperature": "hot"}),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": USER, "tool_choice": [1]}),
    ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": [True]}]}),
    ("/v1/chat/completions", {"model": "m", "messages": USER, "tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"properties": {"x": []}, "required": [{"a": 1}]}}}]}),
    ("/v1/chat/completions", {"model": "m", "messages": USER, "tool_choice": {"function": "f"}}),
    ("/v1/chat/completions", {"model": "m", "messages": USER, "tools": [{"function": {"name": True}}]}),
    ("/v1/chat/completions", {"model": "m", "messages": USER, "stop": 1.5}),
    ("/v1/chat/completions", {"model": "m", "messages": [{"role": "assistant", "tool_calls": [1]}]}),
])
def test_type_confused_requests_get_the_providers_400_not_a_500(sim, path, body):
    """A real provider says 400 to these; a stand-in that answered 500 would look like an outage."""
    resp = httpx.post(sim.base_url + path, json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    if path == "/v1/messages":
        assert resp.json()["type"] == "error"


# -- OpenAI Chat Completions ------------------------------------------------------------


def test_openai_json_answer(gpt):
    raw = gpt.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert "How do I brew oolong tea?" in choice.message.content
    assert completion.usage.completion_tokens == len(choice.message.content.split())
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens)
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["x-ratelimit-remaining-requests"]) > 0


def test_openai_stream_final_completion_matches_json(gpt):
    plain = gpt.chat.completions.create(model="m", messages=USER)
    with gpt.chat.completions.stream(model="m", messages=USER,
                                     stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == plain.choices[0].message.content
    assert final.choices[0].finish_reason == "stop"
    assert final.usage.completion_tokens == plain.usage.completion_tokens


def test_openai_stream_frames_and_usage_chunk_only_when_asked(sim):
    body = {"model": "m", "messages": USER, "stream": True}
    without = raw_events(sim, "/v1/chat/completions", body)
    assert without[-1].data == "[DONE]"
    chunks = [ev.json() for ev in without[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"] for c in chunks) and all("usage" not in c for c in chunks)

    with_usage = raw_events(sim, "/v1/chat/completions",
                            {**body, "stream_options": {"include_usage": True}})
    usage_chunk = with_usage[-2].json()
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == len(chunks) - 2


def test_openai_length_and_stop(gpt):
    capped = gpt.chat.completions.create(model="m", messages=USER, max_completion_tokens=3)
    assert capped.choices[0].finish_reason == "length"
    assert capped.usage.completion_tokens == 3
    legacy = gpt.chat.completions.create(model="m", messages=USER, max_tokens=2)
    assert legacy.choices[0].finish_reason == "length"
    stopped = gpt.chat.completions.create(model="m", messages=USER, stop=["oolong"])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content.endswith("brew ")


def test_openai_tool_call_json_and_stream(gpt):
    tools = [openai_tool(WEATHER_TOOL), openai_tool(TIME_TOOL)]
    completion = gpt.chat.completions.create(model="m", messages=USER, tools=tools)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["unit"] == "celsius"

    with gpt.chat.completions.stream(
        model="m", messages=USER, tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    ) as stream:
        final = stream.get_final_completion()
    (streamed,) = final.choices[0].message.tool_calls
    assert final.choices[0].finish_reason == "tool_calls"
    assert streamed.function.name == "get_time"
    assert json.loads(streamed.function.arguments) == {"zone": "example-zone"}


def test_openai_tool_result_and_images(gpt):
    completion = gpt.chat.completions.create(model="m", tools=[openai_tool(WEATHER_TOOL)], messages=[
        {"role": "user", "content": [
            {"type": "text", "text": "Weather?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "rain all week"},
    ])
    text = completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert "The tool returned: rain all week" in text
    assert "I see 2 images." in text


def test_openai_validation_error(gpt, sim):
    resp = httpx.post(sim.base_url + "/v1/chat/completions", json={"model": "m"})
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        gpt.chat.completions.create(model="m", messages=[])


# -- other endpoints --------------------------------------------------------------------


def test_models_list_in_each_providers_shape(claude, gpt):
    anthropic_ids = [m.id for m in claude.models.list()]
    openai_ids = [m.id for m in gpt.models.list()]
    assert anthropic_ids == openai_ids
    assert "gpt-4o-mini" in openai_ids


def test_models_list_shape_follows_the_anthropic_version_header(sim):
    claude_shape = httpx.get(sim.base_url + "/v1/models",
                             headers={"anthropic-version": "2023-06-01"}).json()
    assert claude_shape["has_more"] is False and claude_shape["data"][0]["type"] == "model"
    openai_shape = httpx.get(sim.base_url + "/v1/models").json()
    assert openai_shape["object"] == "list" and openai_shape["data"][0]["object"] == "model"


def test_embeddings_are_deterministic_in_both_encodings(gpt, sim):
    via_sdk = gpt.embeddings.create(model="text-embedding-3-small", input=["tea", "coffee"])
    assert [len(d.embedding) for d in via_sdk.data] == [8, 8]
    floats = httpx.post(sim.base_url + "/v1/embeddings", json={
        "model": "text-embedding-3-small", "input": "tea", "encoding_format": "float"}).json()
    assert floats["data"][0]["embedding"] == via_sdk.data[0].embedding
    assert via_sdk.data[0].embedding != via_sdk.data[1].embedding
    sized = gpt.embeddings.create(model="text-embedding-3-small", input="tea", dimensions=16)
    assert len(sized.data[0].embedding) == 16


# -- keys, models, recording, stats -----------------------------------------------------


def test_api_key_is_enforced_in_each_format():
    server = SimulatorServer("keyed", token_delay_s=0.0, api_key="sekret")
    server.start_in_thread()
    try:
        bad_claude = anthropic.Anthropic(base_url=server.base_url, api_key="nope", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as a_info:
            bad_claude.messages.create(model="m", max_tokens=5, messages=USER)
        assert a_info.value.body["error"]["type"] == "authentication_error"
        bad_gpt = openai.OpenAI(base_url=server.base_url + "/v1", api_key="nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as o_info:
            bad_gpt.chat.completions.create(model="m", messages=USER)
        assert o_info.value.code == "invalid_api_key"

        good_claude = anthropic.Anthropic(base_url=server.base_url, api_key="sekret", max_retries=0)
        assert good_claude.messages.create(model="m", max_tokens=5, messages=USER).content
        bearer = anthropic.Anthropic(base_url=server.base_url, auth_token="sekret", max_retries=0)
        assert bearer.messages.create(model="m", max_tokens=5, messages=USER).content
        x_api_key = httpx.post(server.base_url + "/v1/messages", headers={"x-api-key": "sekret"},
                               json={"model": "m", "max_tokens": 5, "messages": USER})
        assert x_api_key.status_code == 200
        good_gpt = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sekret", max_retries=0)
        assert good_gpt.chat.completions.create(model="m", messages=USER).choices
        assert server.stats.by_outcome == {"authentication_error": 2, "ok": 4}
    finally:
        server.stop_thread()


def test_unknown_models_get_404_in_each_format():
    server = SimulatorServer("few", token_delay_s=0.0, models=["claude-haiku-4-5", "gpt-4o"])
    server.start_in_thread()
    try:
        claude = anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0)
        gpt = openai.OpenAI(base_url=server.base_url + "/v1", api_key="k", max_retries=0)
        assert claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=USER)
        with pytest.raises(anthropic.NotFoundError) as a_info:
            claude.messages.create(model="claude-nope", max_tokens=5, messages=USER)
        assert a_info.value.body["error"]["type"] == "not_found_error"
        with pytest.raises(openai.NotFoundError) as o_info:
            gpt.chat.completions.create(model="gpt-nope", messages=USER)
        assert o_info.value.code == "model_not_found"
        assert [m.id for m in gpt.models.list()] == ["claude-haiku-4-5", "gpt-4o"]
    finally:
        server.stop_thread()


def test_last_requests_record_what_reached_the_provider(claude, sim):
    claude.messages.create(model="m", max_tokens=5, messages=USER,
                           extra_headers={"anthropic-beta": "tools-2024-05-16"})
    recorded = sim.last_requests[-1]
    assert recorded.path == "/v1/messages"
    # anthropic-python 2.x sends its api_key as a Bearer token; older SDKs use x-api-key.
    assert "sk-ant-test" in (recorded.headers.get("x-api-key"), recorded.headers.get(
        "authorization", "").removeprefix("Bearer "))
    assert recorded.headers["anthropic-beta"] == "tools-2024-05-16"
    assert recorded.json()["messages"] == USER


def test_stats_count_requests_by_path_model_and_outcome(claude, gpt, sim):
    claude.messages.create(model="claude-a", max_tokens=5, messages=USER)
    gpt.chat.completions.create(model="gpt-b", messages=USER)
    sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=500))
    with pytest.raises(openai.InternalServerError):
        gpt.chat.completions.create(model="gpt-b", messages=USER)
    httpx.get(sim.base_url + "/_sim/stats")  # admin traffic is not counted
    assert sim.stats.total == 3
    assert sim.stats.by_path == {"/v1/messages": 1, "/v1/chat/completions": 2}
    assert sim.stats.by_model == {"claude-a": 1, "gpt-b": 2}
    assert sim.stats.by_outcome == {"ok": 2, "http_error": 1}
    sim.stats.reset()
    assert sim.stats.total == 0 and sim.stats.by_outcome == {}


def test_runs_in_the_callers_event_loop_and_leaves_no_tasks():
    async def scenario() -> tuple[str, set]:
        server = SimulatorServer("async", token_delay_s=0.001)
        await server.start()
        client = anthropic.AsyncAnthropic(base_url=server.base_url, api_key="k", max_retries=0)
        async with client.messages.stream(model="m", max_tokens=20, messages=USER) as stream:
            text = await stream.get_final_text()
        await client.close()
        await server.stop()
        leftovers = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        return text, leftovers

    text, leftovers = asyncio.run(scenario())
    assert text.startswith("[async] Here is a short answer")
    assert leftovers == set()


def test_run_simulator_serves_until_sigterm():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    code = ("from ridethrough.simulator import run_simulator; "
            f"run_simulator('127.0.0.1', {port}, 'cli', 0.0)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner and "admin" in banner
        resp = httpx.post(f"http://127.0.0.1:{port}/v1/messages",
                          json={"model": "m", "max_tokens": 5, "messages": USER})
        assert resp.json()["content"][0]["text"].startswith("[cli]")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
