"""Stream -> final object: what gets cached and what usage gets logged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ridethrough.protocols.accumulate import AnthropicAccumulator, OpenAIAccumulator
from ridethrough.protocols.translate import (
    anthropic_to_openai_response,
    openai_to_anthropic_response,
)

from ._golden import DONE, FIXTURES, assert_matches, load, read_sse
from .test_translate_stream import _cases, translate_openai_upstream


def accumulate_anthropic(events: list[tuple[Any, Any]]) -> AnthropicAccumulator:
    acc = AnthropicAccumulator()
    for event, data in events:
        acc.feed(event, data)
    return acc


def accumulate_openai(frames: list[Any]) -> OpenAIAccumulator:
    acc = OpenAIAccumulator()
    for data in frames:
        if data == DONE:
            acc.done()
        else:
            acc.feed(data)
    return acc


def anthropic_summary(message: dict[str, Any]) -> dict[str, Any]:
    """The parts of a Message a user notices, in the shape of the fixtures' ``sdk`` key."""
    texts = [b["text"] for b in message["content"] if b["type"] == "text"]
    return {
        "text": "".join(texts) if texts else None,
        "tool_uses": [
            {k: b[k] for k in ("id", "name", "input")}
            for b in message["content"]
            if b["type"] == "tool_use"
        ],
        "stop_reason": message["stop_reason"],
        "usage": message["usage"],
    }


@pytest.mark.parametrize("name", _cases("stream_o2a"))
def test_anthropic_accumulator_rebuilds_the_translated_stream(name: str) -> None:
    meta = load(f"stream_o2a/{name}.json")
    acc = accumulate_anthropic(translate_openai_upstream(name)[0])
    if "error" in meta["sdk"]:
        assert acc.error is not None and acc.error["type"] == meta["sdk"]["error"]
        assert not acc.complete
        return
    assert acc.complete and acc.error is None
    assert_matches(anthropic_summary(acc.result()), meta["sdk"])
    assert acc.usage == meta["sdk"]["usage"]
    assert acc.has_content is bool(meta["sdk"]["text"] or meta["sdk"]["tool_uses"])


@pytest.mark.parametrize("name", _cases("stream_a2o"))
def test_openai_accumulator_rebuilds_the_translated_stream(name: str) -> None:
    meta = load(f"stream_a2o/{name}.json")
    frames = [data for _, data in read_sse(FIXTURES / "stream_a2o" / f"{name}.expected.sse")]
    acc = accumulate_openai(frames)
    sdk = meta["sdk"]
    if "error" in sdk:
        assert acc.error is not None and acc.error["message"] == sdk["error"]
        assert not acc.complete
        return
    assert acc.complete is meta["complete"]
    message = acc.result()["choices"][0]["message"]
    assert message["content"] == sdk["content"]
    if sdk.get("truncated"):
        assert acc.result()["choices"][0]["finish_reason"] is None
        return
    assert acc.result()["choices"][0]["finish_reason"] == sdk["finish_reason"]
    assert [
        {
            "id": c["id"],
            "name": c["function"]["name"],
            "arguments": json.loads(c["function"]["arguments"]),
        }
        for c in message.get("tool_calls", [])
    ] == sdk["tool_calls"]
    if sdk["usage"] is None:
        assert acc.usage == {}
    else:
        assert {k: acc.usage[k] for k in sdk["usage"]} == sdk["usage"]


@pytest.mark.parametrize("name", _cases("stream_o2a", answered_only=True))
def test_streamed_and_whole_openai_answers_translate_alike(name: str) -> None:
    """Accumulate the OpenAI upstream, translate the whole answer: same Message as streaming."""
    meta = load(f"stream_o2a/{name}.json")
    upstream = [d for _, d in read_sse(FIXTURES / "stream_o2a" / f"{name}.upstream.sse")]
    whole = openai_to_anthropic_response(accumulate_openai(upstream).result(), model=meta["model"])
    streamed_message = accumulate_anthropic(translate_openai_upstream(name)[0]).result()
    for message in (whole, streamed_message):
        for block in message["content"]:
            if block["type"] == "tool_use" and block["id"].startswith("toolu_"):
                block["id"] = "<minted>"
    assert {**whole, "id": None, "usage": None} == {**streamed_message, "id": None, "usage": None}
    if any(isinstance(d, dict) and d.get("usage") for d in upstream):
        assert whole["usage"] == streamed_message["usage"]


@pytest.mark.parametrize("name", _cases("stream_a2o", answered_only=True))
def test_streamed_and_whole_anthropic_answers_translate_alike(name: str) -> None:
    """Accumulate the Claude upstream, translate the whole answer: same completion as streaming."""
    meta = load(f"stream_a2o/{name}.json")
    acc = accumulate_anthropic(read_sse(FIXTURES / "stream_a2o" / f"{name}.upstream.sse"))
    assert acc.complete
    whole = anthropic_to_openai_response(acc.result(), model=meta["model"], created=meta["created"])
    frames = [d for _, d in read_sse(FIXTURES / "stream_a2o" / f"{name}.expected.sse")]
    streamed = accumulate_openai(frames).result()
    if not meta["include_usage"]:
        whole["usage"] = None
    for completion in (whole, streamed):
        completion["id"] = None
        for call in completion["choices"][0]["message"].get("tool_calls", []):
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    assert whole == streamed


def test_truncated_anthropic_stream_is_not_complete_but_keeps_partial_tool_input() -> None:
    acc = AnthropicAccumulator()
    acc.feed(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 1},
            },
        },
    )
    acc.feed(
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
    )
    acc.feed(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": "Par'},
        },
    )
    assert not acc.complete and acc.has_content
    block = acc.result()["content"][0]
    assert block["input"] == {"_raw_arguments": '{"city": "Par'}
    assert acc.usage == {"input_tokens": 3, "output_tokens": 1}


def test_anthropic_accumulator_ignores_events_before_message_start() -> None:
    acc = AnthropicAccumulator()
    acc.feed("ping", {"type": "ping"})
    acc.feed(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "x"}},
    )
    assert not acc.has_content and not acc.complete and acc.usage == {}


def test_openai_accumulator_merges_several_choices_and_tool_calls_by_index() -> None:
    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 5,
            "model": "m",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
        }

    acc = OpenAIAccumulator()
    acc.feed(chunk(0, {"role": "assistant", "content": ""}))
    acc.feed(chunk(1, {"role": "assistant", "content": "B"}))
    acc.feed(
        chunk(
            0,
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            },
        )
    )
    acc.feed(
        chunk(
            0,
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "g", "arguments": '{"y":'},
                    }
                ]
            },
        )
    )
    acc.feed(chunk(0, {"tool_calls": [{"index": 0, "function": {"arguments": '{"x":1}'}}]}))
    acc.feed(chunk(0, {"tool_calls": [{"index": 1, "function": {"arguments": "2}"}}]}))
    acc.feed(chunk(0, {}, "tool_calls"))
    acc.feed(chunk(1, {"content": "ye"}, "stop"))
    acc.feed(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 5,
            "model": "m",
            "choices": [],
            "usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10},
        }
    )
    assert not acc.complete
    acc.done()
    result = acc.result()
    assert acc.complete and acc.has_content and acc.usage["total_tokens"] == 10
    first, second = result["choices"]
    assert first["message"]["content"] is None and first["finish_reason"] == "tool_calls"
    assert [
        (c["id"], c["function"]["name"], c["function"]["arguments"])
        for c in first["message"]["tool_calls"]
    ] == [("call_a", "f", '{"x":1}'), ("call_b", "g", '{"y":2}')]
    assert second["message"]["content"] == "Bye" and second["finish_reason"] == "stop"
    assert (result["id"], result["created"], result["object"]) == (
        "chatcmpl-1",
        5,
        "chat.completion",
    )


def test_openai_accumulator_records_in_band_error() -> None:
    acc = OpenAIAccumulator()
    acc.feed({"error": {"message": "boom", "type": "server_error"}})
    assert acc.error == {"message": "boom", "type": "server_error"}
    assert not acc.has_content
