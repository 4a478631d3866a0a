"""Golden request translations, both directions, and every loss outcome."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ridethrough.protocols.translate import (
    Untranslatable,
    anthropic_to_openai_request,
    check_anthropic_to_openai,
    check_openai_to_anthropic,
    openai_to_anthropic_request,
)

from ._golden import assert_matches, case_files, case_list


@pytest.mark.parametrize("case", case_files("request_a2o"))
def test_anthropic_request_to_openai(case: dict[str, Any]) -> None:
    before = json.dumps(case["input"], sort_keys=True)
    translated = anthropic_to_openai_request(case["input"], case["model"], **case["kwargs"])
    assert_matches(translated.body, case["expected"])
    assert translated.dropped == case["dropped"]
    assert check_anthropic_to_openai(case["input"]) is None
    assert json.dumps(case["input"], sort_keys=True) == before, "translation mutated its input"


@pytest.mark.parametrize("case", case_files("request_o2a"))
def test_openai_request_to_anthropic(case: dict[str, Any]) -> None:
    before = json.dumps(case["input"], sort_keys=True)
    translated = openai_to_anthropic_request(case["input"], case["model"], **case["kwargs"])
    assert_matches(translated.body, case["expected"])
    assert translated.dropped == case["dropped"]
    assert check_openai_to_anthropic(case["input"]) is None
    assert json.dumps(case["input"], sort_keys=True) == before, "translation mutated its input"


def _translate(case: dict[str, Any]) -> Any:
    if case["direction"] == "a2o":
        return anthropic_to_openai_request(case["input"], "gpt-4o-mini")
    return openai_to_anthropic_request(case["input"], "claude-sonnet-4-5")


def _at(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


@pytest.mark.parametrize("case", case_list("losses/dropped.json"))
def test_droppable_loss_is_recorded_and_gone(case: dict[str, Any]) -> None:
    translated = _translate(case)
    assert translated.dropped == case["dropped"]
    serialized = json.dumps(translated.body)
    for text in case.get("absent", []):
        assert text not in serialized, f"{text!r} should not reach the target"
    for path, value in case.get("expect", {}).items():
        assert_matches(_at(translated.body, path), value, path)


@pytest.mark.parametrize("case", case_list("losses/untranslatable.json"))
def test_meaning_changing_loss_is_untranslatable(case: dict[str, Any]) -> None:
    check = check_anthropic_to_openai if case["direction"] == "a2o" else check_openai_to_anthropic
    reason = check(case["input"])
    assert reason is not None and case["reason"] in reason, reason
    with pytest.raises(Untranslatable) as raised:
        _translate(case)
    assert raised.value.reason == reason


@pytest.mark.parametrize("case", case_files("request_a2o"))
def test_anthropic_request_survives_a_round_trip(case: dict[str, Any]) -> None:
    """A->O->A keeps the conversation: what a user wrote reaches Claude unchanged (a target
    that takes mid-conversation system messages gets them back in place)."""
    there = anthropic_to_openai_request(case["input"], "gpt", **case["kwargs"]).body
    if "response_format" in there:
        assert check_openai_to_anthropic(there) is not None  # JSON mode is one-way by design
        return
    back = openai_to_anthropic_request(there, "claude", system_messages=True).body
    original = case["input"]
    assert len(back["messages"]) == len(original["messages"])
    for got, sent in zip(back["messages"], original["messages"], strict=True):
        assert got["role"] == sent["role"]
        if isinstance(sent["content"], str):
            assert got["content"] == sent["content"]
        else:
            kinds = sorted(b["type"] for b in sent["content"])
            got_blocks = (
                got["content"]
                if isinstance(got["content"], list)
                else [{"type": "text", "text": got["content"]}]
            )
            assert sorted(b["type"] for b in got_blocks) == kinds
    for tool_in, tool_out in zip(original.get("tools", []), back.get("tools", []), strict=True):
        assert tool_out["input_schema"] == tool_in["input_schema"]
