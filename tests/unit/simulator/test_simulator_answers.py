"""The simulated model's content rules, and the fault switch, without any socket."""

from __future__ import annotations

import random

import pytest

from ridethrough.simulator.answers import (
    Conversation,
    ToolChoice,
    ToolSpec,
    compose_answer,
    estimate_tokens,
    example_for_schema,
    split_tokens,
)
from ridethrough.simulator.faults import Fault, FaultKind, FaultSwitch


def answer(conv: Conversation, name: str = "sim", seed: int = 0, preamble: bool = True):
    return compose_answer(conv, sim_name=name, seed=seed, preamble_with_tools=preamble)


def test_split_tokens_round_trips_text_with_leading_and_trailing_space():
    for text in ["", "one", " lead and trail ", "multi\nline  text."]:
        assert "".join(split_tokens(text)) == text


def test_same_request_same_answer_and_different_seed_or_name_differs():
    conv = Conversation(model="m", last_user_text="why is the sky blue", seed_material=b"x")
    assert answer(conv).text == answer(conv).text
    assert answer(conv).text.startswith("[sim] Here is a short answer about: why is the sky blue.")
    assert answer(conv, name="other").text.startswith("[other]")
    texts = {answer(conv, seed=s).text for s in range(8)}
    assert len(texts) > 1


def test_long_questions_are_quoted_shortened():
    conv = Conversation(model="m", last_user_text="word " * 200)
    first_sentence = answer(conv).text.split("…")[0]
    assert len(first_sentence) < 250


def test_max_tokens_beats_a_later_stop_sequence():
    conv = Conversation(model="m", last_user_text="alpha beta gamma", max_tokens=3,
                        stop_sequences=["gamma"])
    result = answer(conv)
    assert result.stop_reason == "max_tokens" and result.output_tokens == 3
    assert result.stop_sequence is None


def test_earliest_stop_sequence_wins():
    conv = Conversation(model="m", last_user_text="alpha beta gamma",
                        stop_sequences=["gamma", "beta"])
    result = answer(conv)
    assert result.stop_reason == "stop_sequence" and result.stop_sequence == "beta"
    assert result.text.endswith("alpha ")


def test_tool_choice_rules():
    tools = [ToolSpec("first", {"type": "object"}), ToolSpec("second", {"type": "object"})]
    auto = answer(Conversation(model="m", tools=tools))
    assert auto.tool_call is not None and auto.tool_call.name == "first"
    assert auto.stop_reason == "tool_use" and auto.text.startswith("[sim] I'll use")
    named = answer(Conversation(model="m", tools=tools, tool_choice=ToolChoice("tool", "second")))
    assert named.tool_call is not None and named.tool_call.name == "second"
    none = answer(Conversation(model="m", tools=tools, tool_choice=ToolChoice("none")))
    assert none.tool_call is None and none.stop_reason == "end_turn"
    after_result = answer(Conversation(model="m", tools=tools, tool_results=["42"]))
    assert after_result.tool_call is None and "The tool returned: 42" in after_result.text
    openai_style = answer(Conversation(model="m", tools=tools), preamble=False)
    assert openai_style.text_tokens == []
    assert openai_style.output_tokens == len(openai_style.tool_call.fragments)


def test_tool_arguments_stream_as_fragments_of_the_same_json():
    schema = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
    result = answer(Conversation(model="m", tools=[ToolSpec("search", schema)]))
    assert result.tool_call is not None
    assert "".join(result.tool_call.fragments) == '{"query":"example-query"}'
    assert len(result.tool_call.fragments) > 1


@pytest.mark.parametrize(("schema", "expected"), [
    ({"type": "string"}, "example-value"),
    ({"type": "string", "enum": ["b", "a"]}, "b"),
    ({"type": "string", "format": "date"}, "2025-03-07"),
    ({"type": "string", "minLength": 20}, "example-valuexxxxxxx"),
    ({"type": "integer"}, 1),
    ({"type": "integer", "minimum": 5}, 5),
    ({"type": "integer", "maximum": 0}, 0),
    ({"type": "number", "minimum": 2.2}, 3.0),
    ({"type": "boolean"}, True),
    ({"type": ["null", "integer"]}, 1),
    ({"anyOf": [{"type": "null"}, {"type": "boolean"}]}, True),
    ({"const": "fixed"}, "fixed"),
    ({"type": "array", "items": {"type": "integer"}}, [1]),
    ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
      "required": ["a"]}, {"a": 1}),
    ({"type": "object", "properties": {"inner": {"type": "object", "properties": {
        "x": {"type": "boolean"}}, "required": ["x"]}}, "required": ["inner"]},
     {"inner": {"x": True}}),
])
def test_example_values_follow_the_schema(schema, expected):
    assert example_for_schema(schema) == expected


def test_token_estimate_counts_text_and_prices_images_flat():
    assert estimate_tokens("abcd" * 10) == 10
    huge_image = {"type": "image", "source": {"data": "A" * 1_000_000}}
    assert estimate_tokens([huge_image]) == 100


def test_fault_switch_filters_and_draws_reproducibly():
    clock = [0.0]
    switch = FaultSwitch(clock=lambda: clock[0], seed=11)
    switch.set(Fault(FaultKind.HTTP_ERROR, rate=0.5, models=["a"], formats=["openai"]))
    assert switch.decide("b", "openai") is None
    assert switch.decide("a", "anthropic") is None
    hits = [switch.decide("a", "openai") is not None for _ in range(200)]
    rng = random.Random(11)
    assert hits == [rng.random() < 0.5 for _ in range(200)]


def test_ramp_interpolates_between_rate_and_ramp_to():
    fault = Fault(FaultKind.HTTP_ERROR, rate=0.1, ramp_to=0.9, ramp_seconds=100)
    assert fault.rate_at(0) == pytest.approx(0.1)
    assert fault.rate_at(50) == pytest.approx(0.5)
    assert fault.rate_at(1e6) == pytest.approx(0.9)
    assert Fault(FaultKind.HTTP_ERROR, rate=0.2, ramp_to=0.7).rate_at(0) == 0.7
