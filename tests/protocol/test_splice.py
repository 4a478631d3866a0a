"""protocols/splice.py: what a client received, and a continuation rewritten to follow it.

Each test feeds a first stream (as the client got it) to a view, cuts it, and feeds a second
stream through the splicer; the joined frames then go through the SDK's own accumulator
logic (ridethrough's accumulators, which the SDK acceptance tests hold to the SDKs), so what
is asserted is the one message a client ends up with.
"""

from __future__ import annotations

from typing import Any

import pytest

from ridethrough.protocols.accumulate import AnthropicAccumulator, OpenAIAccumulator
from ridethrough.protocols.splice import (
    AnthropicSplicer,
    AnthropicView,
    NotContinuable,
    OpenAISplicer,
    OpenAIView,
    SpliceMismatch,
)

# -- Anthropic -----------------------------------------------------------------------------


def a_start(input_tokens: int = 10) -> tuple[str, dict[str, Any]]:
    return ("message_start", {"type": "message_start", "message": {
        "id": "msg_first", "type": "message", "role": "assistant", "model": "m", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1}}})


def a_block(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("content_block_start", {"type": "content_block_start", "index": index,
                                    "content_block": block})


def a_text(index: int, text: str) -> tuple[str, dict[str, Any]]:
    return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                    "delta": {"type": "text_delta", "text": text}})


def a_json(index: int, partial: str) -> tuple[str, dict[str, Any]]:
    return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                    "delta": {"type": "input_json_delta", "partial_json": partial}})


def a_stop(index: int) -> tuple[str, dict[str, Any]]:
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


def a_end(stop: str, output_tokens: int) -> list[tuple[str, dict[str, Any]]]:
    return [("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop, "stop_sequence": None},
                               "usage": {"output_tokens": output_tokens}}),
            ("message_stop", {"type": "message_stop"})]


def splice_anthropic(first: list[Any], second: list[Any]) -> dict[str, Any]:
    view = AnthropicView()
    acc = AnthropicAccumulator()
    for name, data in first:
        view.observe(name, data)
        acc.feed(name, data)
    splicer = AnthropicSplicer(view, view.cut())
    for name, data in second:
        for out_name, out in splicer.feed(name, data):
            view.observe(out_name, out)
            acc.feed(out_name, out)
    assert acc.complete
    return acc.result()


def test_anthropic_text_cut_mid_word_continues_in_the_same_block():
    first = [a_start(), a_block(0, {"type": "text", "text": ""}), a_text(0, "Hello"), a_text(0, " wor")]
    second = [a_start(99), a_block(0, {"type": "text", "text": ""}), a_text(0, "ld, friend."),
              a_stop(0), *a_end("end_turn", 3)]
    msg = splice_anthropic(first, second)
    assert msg["id"] == "msg_first"
    assert [b["type"] for b in msg["content"]] == ["text"]
    assert msg["content"][0]["text"] == "Hello world, friend."
    assert msg["usage"] == {"input_tokens": 10, "output_tokens": 2 + 3}
    assert msg["stop_reason"] == "end_turn"


def test_anthropic_whitespace_the_client_has_is_not_repeated():
    first = [a_start(), a_block(0, {"type": "text", "text": ""}), a_text(0, "One two ")]
    view = AnthropicView()
    for ev in first:
        view.observe(*ev)
    cut = view.cut()
    assert cut.prefill == "One two" and cut.pending_ws == " "  # the API refuses trailing spaces
    msg = splice_anthropic(first, [a_start(), a_block(0, {"type": "text", "text": ""}),
                                   a_text(0, " three"), a_stop(0), *a_end("end_turn", 1)])
    assert msg["content"][0]["text"] == "One two three"


def test_anthropic_cut_between_blocks_continues_with_the_next_index():
    first = [a_start(), a_block(0, {"type": "text", "text": ""}), a_text(0, "Let me check."), a_stop(0)]
    second = [a_start(), a_block(0, {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
                                     "input": {}}),
              a_json(0, '{"city": '), a_json(0, '"Porto"}'), a_stop(0), *a_end("tool_use", 4)]
    msg = splice_anthropic(first, second)
    assert [b["type"] for b in msg["content"]] == ["text", "tool_use"]
    assert msg["content"][1]["input"] == {"city": "Porto"}
    assert msg["usage"]["output_tokens"] == 1 + 4


def test_anthropic_text_left_open_is_closed_before_a_new_kind_of_block():
    first = [a_start(), a_block(0, {"type": "text", "text": ""}), a_text(0, "Checking")]
    second = [a_start(), a_block(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
              a_json(0, "{}"), a_stop(0), *a_end("tool_use", 1)]
    msg = splice_anthropic(first, second)
    assert [b["type"] for b in msg["content"]] == ["text", "tool_use"]
    assert msg["content"][0]["text"] == "Checking"


def test_anthropic_open_tool_call_without_arguments_is_restarted_in_place():
    first = [a_start(), a_block(0, {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                    "input": {}})]
    view = AnthropicView()
    for ev in first:
        view.observe(*ev)
    assert view.cut().restart_tool == "get_weather"
    second = [a_start(), a_block(0, {"type": "tool_use", "id": "toolu_other", "name": "get_weather",
                                     "input": {}}),
              a_json(0, '{"city": "Lisbon"}'), a_stop(0), *a_end("tool_use", 2)]
    msg = splice_anthropic(first, second)
    assert len(msg["content"]) == 1
    assert msg["content"][0]["id"] == "toolu_1"  # the id the client has
    assert msg["content"][0]["input"] == {"city": "Lisbon"}


def test_anthropic_restart_with_another_tool_does_not_fit():
    view = AnthropicView()
    for ev in [a_start(), a_block(0, {"type": "tool_use", "id": "t", "name": "a", "input": {}})]:
        view.observe(*ev)
    splicer = AnthropicSplicer(view, view.cut())
    with pytest.raises(SpliceMismatch):
        splicer.feed(*a_block(0, {"type": "tool_use", "id": "u", "name": "b", "input": {}}))
    with pytest.raises(SpliceMismatch):
        AnthropicSplicer(view, view.cut()).feed(*a_block(0, {"type": "text", "text": ""}))


@pytest.mark.parametrize("events,why", [
    ([a_block(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}), a_json(0, '{"ci')],
     "arguments were partly sent"),
    ([a_block(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}), a_json(0, "{}"), a_stop(0)],
     "whole tool call"),
    ([a_block(0, {"type": "thinking", "thinking": ""}),
      ("content_block_delta", {"type": "content_block_delta", "index": 0,
                               "delta": {"type": "thinking_delta", "thinking": "hmm"}})],
     "thinking"),
    ([a_block(0, {"type": "text", "text": ""}), a_text(0, "Done."), a_stop(0), *a_end("end_turn", 2)[:1]],
     "finished"),
])
def test_anthropic_answers_that_cannot_be_continued_faithfully(events, why):
    view = AnthropicView()
    for ev in [a_start(), *events]:
        view.observe(*ev)
    with pytest.raises(NotContinuable, match=why):
        view.cut()


# -- OpenAI --------------------------------------------------------------------------------


def o_chunk(delta: dict[str, Any], finish: str | None = None, cid: str = "chatcmpl-first",
            model: str = "first-model") -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def o_usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"id": "chatcmpl-second", "object": "chat.completion.chunk", "created": 2,
            "model": "second-model", "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}}


def splice_openai(first: list[Any], second: list[Any]) -> tuple[dict[str, Any], list[Any]]:
    view = OpenAIView()
    acc = OpenAIAccumulator()
    sent: list[Any] = []
    for chunk in first:
        view.observe(chunk)
        acc.feed(chunk)
        sent.append(chunk)
    splicer = OpenAISplicer(view, view.cut())
    for chunk in second:
        for out in splicer.feed(chunk):
            view.observe(out)
            sent.append(out)
            if out == "[DONE]":
                acc.done()
            else:
                acc.feed(out)
    assert acc.complete
    return acc.result(), sent


def test_openai_text_continues_as_one_completion_with_one_usage():
    first = [o_chunk({"role": "assistant", "content": ""}), o_chunk({"content": "Hello"}),
             o_chunk({"content": " wor"})]
    second = [o_chunk({"role": "assistant", "content": ""}, cid="chatcmpl-second", model="second-model"),
              o_chunk({"content": "ld."}, cid="chatcmpl-second", model="second-model"),
              o_chunk({}, "stop", cid="chatcmpl-second", model="second-model"),
              o_usage(30, 2), "[DONE]"]
    comp, sent = splice_openai(first, second)
    assert comp["choices"][0]["message"]["content"] == "Hello world."
    assert {c["id"] for c in sent if isinstance(c, dict)} == {"chatcmpl-first"}
    assert {c["model"] for c in sent if isinstance(c, dict)} == {"first-model"}
    # The role appears once: the SDK concatenates every string field of a delta.
    assert sum(1 for c in sent if isinstance(c, dict) and c["choices"]
               and "role" in c["choices"][0]["delta"]) == 1
    # 2 tokens before the cut + 2 after; the continuation's prompt carried the 2 already sent.
    assert comp["usage"] == {"prompt_tokens": 28, "completion_tokens": 4, "total_tokens": 32}


def test_openai_open_tool_call_without_arguments_is_restarted_in_place():
    first = [o_chunk({"role": "assistant", "content": None}),
             o_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                      "function": {"name": "get_weather", "arguments": ""}}]})]
    second = [o_chunk({"role": "assistant", "content": None}, cid="x"),
              o_chunk({"tool_calls": [{"index": 0, "id": "call_2", "type": "function",
                                       "function": {"name": "get_weather", "arguments": '{"city"'}}]}),
              o_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "Oslo"}'}}]}),
              o_chunk({}, "tool_calls"), "[DONE]"]
    comp, _ = splice_openai(first, second)
    calls = comp["choices"][0]["message"]["tool_calls"]
    assert len(calls) == 1
    assert calls[0]["id"] == "call_1" and calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["function"]["arguments"] == '{"city": "Oslo"}'


def test_openai_restart_refuses_text_first_and_another_tool():
    view = OpenAIView()
    view.observe(o_chunk({"tool_calls": [{"index": 0, "id": "c", "type": "function",
                                          "function": {"name": "a", "arguments": ""}}]}))
    with pytest.raises(SpliceMismatch):
        OpenAISplicer(view, view.cut()).feed(o_chunk({"content": "Sure,"}))
    with pytest.raises(SpliceMismatch):
        OpenAISplicer(view, view.cut()).feed(o_chunk({"tool_calls": [
            {"index": 0, "id": "d", "type": "function", "function": {"name": "b", "arguments": ""}}]}))


@pytest.mark.parametrize("chunk,why", [
    (o_chunk({"tool_calls": [{"index": 0, "id": "c", "type": "function",
                              "function": {"name": "a", "arguments": '{"x'}}]}), "partly sent"),
    (o_chunk({"reasoning_content": "thinking"}), "reasoning"),
    (o_chunk({"refusal": "no"}), "refusal"),
    # Finished, then cut before the usage chunk the client asked for: nothing to continue.
    (o_chunk({}, "stop"), "finished"),
])
def test_openai_answers_that_cannot_be_continued_faithfully(chunk, why):
    view = OpenAIView()
    view.observe(chunk)
    with pytest.raises(NotContinuable, match=why):
        view.cut()
