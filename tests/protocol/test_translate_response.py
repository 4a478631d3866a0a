"""Golden response, error and stop-reason translations, both directions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ridethrough.protocols.translate import (
    anthropic_error_to_openai,
    anthropic_to_openai_response,
    openai_error_to_anthropic,
    openai_to_anthropic_response,
)
from ridethrough.protocols.translate_response import (
    RAW_ARGUMENTS_KEY,
    decode_tool_arguments,
    encode_tool_input,
)

from ._golden import assert_matches, case_files, case_list, load


@pytest.mark.parametrize("case", case_files("response_a2o"))
def test_anthropic_response_to_openai(case: dict[str, Any]) -> None:
    assert_matches(anthropic_to_openai_response(case["input"], **case["kwargs"]), case["expected"])


@pytest.mark.parametrize("case", case_files("response_o2a"))
def test_openai_response_to_anthropic(case: dict[str, Any]) -> None:
    assert_matches(openai_to_anthropic_response(case["input"], **case["kwargs"]), case["expected"])


@pytest.mark.parametrize("case", case_list("errors_a2o.json"))
def test_anthropic_error_to_openai(case: dict[str, Any]) -> None:
    assert_matches(anthropic_error_to_openai(case["input"], case["status"]), case["expected"])


@pytest.mark.parametrize("case", case_list("errors_o2a.json"))
def test_openai_error_to_anthropic(case: dict[str, Any]) -> None:
    assert_matches(openai_error_to_anthropic(case["input"], case["status"]), case["expected"])


STOPS = load("stop_reasons.json")


@pytest.mark.parametrize(("anthropic", "openai"), sorted(STOPS["a2o"].items()))
def test_stop_reason_anthropic_to_openai(anthropic: str, openai: str) -> None:
    message = {
        "id": "msg_1",
        "model": "m",
        "content": [{"type": "text", "text": "x"}],
        "stop_reason": anthropic,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    assert anthropic_to_openai_response(message)["choices"][0]["finish_reason"] == openai


@pytest.mark.parametrize(("openai", "anthropic"), sorted(STOPS["o2a"].items()))
def test_stop_reason_openai_to_anthropic(openai: str, anthropic: str) -> None:
    completion = {
        "id": "chatcmpl-1",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": openai}
        ],
    }
    assert openai_to_anthropic_response(completion)["stop_reason"] == anthropic


@pytest.mark.parametrize(
    "arguments",
    ['{"city": "Paris"', "not json at all", "[1, 2]", "42", '{"a": 1} trailing } junk ]'],
)
def test_undecodable_arguments_round_trip_exactly(arguments: str) -> None:
    """Whatever a small model emitted comes back byte-for-byte when the client echoes it."""
    decoded = decode_tool_arguments(arguments)
    assert isinstance(decoded, dict)
    if RAW_ARGUMENTS_KEY in decoded:
        assert encode_tool_input(decoded) == arguments
    else:
        assert decoded == {"a": 1}
    json.dumps(decoded)  # always serializable for the Anthropic client
