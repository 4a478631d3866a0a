"""The official SDKs' own stream accumulators accept what ridethrough sends.

Two levels: the accumulators fed our events directly (``accumulate_event``,
``ChatCompletionStreamState``), and the whole client reading our SSE bytes through
``httpx2.MockTransport`` (``messages.stream`` / ``chat.completions.stream``), which also
exercises the SDKs' SSE decoders and in-band error handling. No sockets are opened.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from ridethrough.protocols.synthesize import (
    anthropic_message_to_events,
    openai_completion_to_chunks,
)
from ridethrough.protocols.translate import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    anthropic_to_openai_response,
    openai_to_anthropic_response,
)

from ._golden import DONE, anthropic_sse, load, openai_sse
from .test_synthesize import _names
from .test_translate_stream import _cases, translate_anthropic_upstream, translate_openai_upstream

STRICT_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "strict": True,
            "parameters": {"type": "object", "properties": {}, "additionalProperties": True},
        },
    }
    for name in ("get_weather", "get_time", "write_file")
]


# -- the SDKs, driven in-process ----------------------------------------------------------


def _sse_client_transport(body: bytes) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def anthropic_sdk_accumulate(events: list[tuple[str, dict[str, Any]]]) -> Any:
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for _, data in events:
        if data["type"] == "ping":
            continue
        snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=json_bufs)
    return snapshot


def anthropic_sdk_client(events: list[tuple[str, dict[str, Any]]]) -> Any:
    client = anthropic.Anthropic(
        api_key="test",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=_sse_client_transport(anthropic_sse(events)),
    )
    with client.messages.stream(
        model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        return stream.get_final_message()


# The SDK's parse step refuses a "length" or "content_filter" finish by raising, exactly as it
# does against OpenAI itself; the raise proves the SDK saw that finish reason, and the snapshot
# is what an application then reads.
_UNPARSEABLE_FINISH = (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError)


def openai_sdk_state(chunks: list[Any], *, with_tools: bool) -> Any:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState(
        input_tools=STRICT_TOOLS if with_tools else openai.omit
    )
    for chunk in chunks:
        if chunk != DONE:
            state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    try:
        return state.get_final_completion()
    except _UNPARSEABLE_FINISH:
        return state.current_completion_snapshot


def openai_sdk_client(chunks: list[Any], *, with_tools: bool) -> Any:
    client = openai.OpenAI(
        api_key="test",
        base_url="http://gateway.test/v1",
        max_retries=0,
        http_client=_sse_client_transport(openai_sse(chunks)),
    )
    kwargs: dict[str, Any] = {"tools": STRICT_TOOLS} if with_tools else {}
    with client.chat.completions.stream(
        model="m", messages=[{"role": "user", "content": "hi"}], **kwargs
    ) as stream:
        try:
            return stream.get_final_completion()
        except _UNPARSEABLE_FINISH:
            return stream.current_completion_snapshot


# -- what a user would notice --------------------------------------------------------------


def anthropic_view(message: Any) -> dict[str, Any]:
    texts = [b.text for b in message.content if b.type == "text"]
    return {
        "text": "".join(texts) if texts else None,
        "tool_uses": [
            {"id": b.id, "name": b.name, "input": b.input}
            for b in message.content
            if b.type == "tool_use"
        ],
        "stop_reason": message.stop_reason,
        "usage": {k: v for k, v in message.usage.model_dump().items() if v is not None},
    }


def openai_view(completion: Any, *, parsed: bool) -> dict[str, Any]:
    choice = completion.choices[0]
    calls = []
    for call in choice.message.tool_calls or []:
        arguments = json.loads(call.function.arguments)  # what every OpenAI client does
        if parsed:  # the SDK's own parse of a strict tool's arguments
            assert call.function.parsed_arguments == arguments
        calls.append({"id": call.id, "name": call.function.name, "arguments": arguments})
    usage = None
    if completion.usage is not None:
        usage = completion.usage.model_dump(exclude_none=True)
    return {
        "content": choice.message.content,
        "tool_calls": calls,
        "finish_reason": choice.finish_reason,
        "usage": usage,
    }


def _matches_expected_usage(actual: dict[str, Any] | None, expected: dict[str, Any] | None) -> None:
    if expected is None:
        assert actual is None
        return
    assert actual is not None
    assert {k: actual.get(k) for k in expected} == expected


# -- translated streams: OpenAI upstream -> Anthropic client --------------------------------


@pytest.mark.parametrize("name", _cases("stream_o2a"))
def test_anthropic_sdk_accepts_translated_stream(name: str) -> None:
    events, _ = translate_openai_upstream(name)
    expected = load(f"stream_o2a/{name}.json")["sdk"]
    if "error" in expected:
        with pytest.raises(anthropic.APIStatusError) as raised:
            anthropic_sdk_client(events)
        assert raised.value.status_code == 200  # in-band: the stream had already begun
        assert raised.value.body["error"]["type"] == expected["error"]
        return
    for final in (anthropic_sdk_accumulate(events), anthropic_sdk_client(events)):
        view = anthropic_view(final)
        _matches_expected_usage(view.pop("usage"), expected["usage"])
        want = {k: v for k, v in expected.items() if k != "usage"}
        if name == "whole_calls_without_index":
            assert view["tool_uses"][1]["id"].startswith("toolu_")
            view["tool_uses"][1]["id"] = want["tool_uses"][1]["id"]
        assert view == want


# -- translated streams: Anthropic upstream -> OpenAI client --------------------------------


@pytest.mark.parametrize("name", _cases("stream_a2o"))
def test_openai_sdk_accepts_translated_stream(name: str) -> None:
    chunks, _ = translate_anthropic_upstream(name)
    expected = load(f"stream_a2o/{name}.json")["sdk"]
    if "error" in expected:
        with pytest.raises(openai.APIError, match=expected["error"]):
            openai_sdk_client(chunks, with_tools=False)
        return
    if expected.get("truncated"):
        snapshot = openai_sdk_state(chunks, with_tools=False)
        assert snapshot.choices[0].message.content == expected["content"]
        assert snapshot.choices[0].finish_reason is None  # nothing invented for the cut
        return
    with_tools = bool(expected["tool_calls"])
    for final in (
        openai_sdk_state(chunks, with_tools=with_tools),
        openai_sdk_client(chunks, with_tools=with_tools),
    ):
        view = openai_view(final, parsed=with_tools)
        _matches_expected_usage(view.pop("usage"), expected["usage"])
        assert view == {k: v for k, v in expected.items() if k != "usage"}


# -- synthesized streams round-trip through the SDKs -----------------------------------------


@pytest.mark.parametrize("name", _names("anthropic"))
def test_anthropic_sdk_rebuilds_a_synthesized_message(name: str) -> None:
    message = load(f"synth/anthropic/{name}.json")
    events = anthropic_message_to_events(message)
    for final in (anthropic_sdk_accumulate(events), anthropic_sdk_client(events)):
        dumped = final.model_dump(mode="json")
        for key in ("id", "model", "stop_reason", "stop_sequence"):
            assert dumped[key] == message[key]
        assert {k: dumped["usage"][k] for k in message["usage"]} == message["usage"]
        assert len(dumped["content"]) == len(message["content"])
        for got, want in zip(dumped["content"], message["content"], strict=True):
            assert {k: got[k] for k in want} == want


@pytest.mark.parametrize("name", _names("openai"))
def test_openai_sdk_rebuilds_a_synthesized_completion(name: str) -> None:
    completion = load(f"synth/openai/{name}.json")
    chunks = openai_completion_to_chunks(completion, include_usage=True)
    want = completion["choices"][0]
    with_tools = "tool_calls" in want["message"]
    for final in (
        openai_sdk_state(chunks, with_tools=with_tools),
        openai_sdk_client(chunks, with_tools=with_tools),
    ):
        got = final.choices[0]
        assert (final.id, final.model, final.created) == (
            completion["id"],
            completion["model"],
            completion["created"],
        )
        assert got.finish_reason == want["finish_reason"]
        assert got.message.content == want["message"]["content"]
        assert got.message.refusal == want["message"]["refusal"]
        assert (got.message.model_extra or {}).get("reasoning_content") == want["message"].get(
            "reasoning_content"
        )
        calls = [
            c.model_dump(include={"id", "type", "function"}) for c in got.message.tool_calls or []
        ]
        for call in calls:
            call["function"].pop("parsed_arguments", None)
        assert calls == want["message"].get("tool_calls", [])
        assert final.usage.model_dump(exclude_none=True) == completion["usage"]


# -- across protocols, end to end: cache replay in one format served to the other ------------


@pytest.mark.parametrize("name", _names("anthropic"))
def test_openai_sdk_reads_a_claude_answer_like_the_response_translator(name: str) -> None:
    message = load(f"synth/anthropic/{name}.json")
    stream = AnthropicToOpenAIStream("m", include_usage=True, completion_id="chatcmpl-x", created=7)
    chunks = [c for e, d in anthropic_message_to_events(message) for c in stream.feed(e, d)]
    chunks += stream.finish()
    whole = anthropic_to_openai_response(message, model="m", created=7)
    final = openai_sdk_client(chunks, with_tools=False)
    assert openai_view(final, parsed=False) == openai_view(
        openai.types.chat.ChatCompletion.model_validate(whole), parsed=False
    )


@pytest.mark.parametrize("name", _names("openai"))
def test_anthropic_sdk_reads_an_openai_answer_like_the_response_translator(name: str) -> None:
    completion = load(f"synth/openai/{name}.json")
    stream = OpenAIToAnthropicStream("m", message_id="msg_x")
    events: list[tuple[str, dict[str, Any]]] = []
    for chunk in openai_completion_to_chunks(completion, include_usage=True):
        events += stream.finish() if chunk == DONE else stream.feed(chunk)
    whole = openai_to_anthropic_response(completion, model="m")
    final = anthropic_sdk_client(events)
    assert anthropic_view(final) == anthropic_view(anthropic.types.Message.model_validate(whole))
