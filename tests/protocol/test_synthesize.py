"""Final object -> stream: cache replays and static answers must stream like the real thing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ridethrough.protocols.synthesize import (
    anthropic_message_to_events,
    openai_completion_to_chunks,
    split_for_stream,
    with_fresh_ids,
)

from ._golden import DONE, FIXTURES, assert_matches, load, read_sse
from .test_accumulate import accumulate_anthropic, accumulate_openai


def _names(fmt: str) -> list[Any]:
    names = sorted(p.stem for p in (FIXTURES / "synth" / fmt).glob("*.json"))
    assert names
    return [pytest.param(n, id=n) for n in names]


@pytest.mark.parametrize("name", _names("anthropic"))
def test_anthropic_message_to_events(name: str) -> None:
    message = load(f"synth/anthropic/{name}.json")
    events = anthropic_message_to_events(message)
    expected = read_sse(FIXTURES / "synth" / "anthropic" / f"{name}.expected.sse")
    assert_matches([list(e) for e in events], [list(e) for e in expected])


@pytest.mark.parametrize("name", _names("anthropic"))
def test_anthropic_events_rebuild_the_same_message(name: str) -> None:
    message = load(f"synth/anthropic/{name}.json")
    acc = accumulate_anthropic(anthropic_message_to_events(message))
    assert acc.complete
    assert acc.result() == message


@pytest.mark.parametrize("name", _names("openai"))
def test_openai_completion_to_chunks(name: str) -> None:
    completion = load(f"synth/openai/{name}.json")
    chunks = openai_completion_to_chunks(completion, include_usage=True)
    expected = [d for _, d in read_sse(FIXTURES / "synth" / "openai" / f"{name}.expected.sse")]
    assert_matches(chunks, expected)


@pytest.mark.parametrize("name", _names("openai"))
def test_openai_chunks_rebuild_the_same_completion(name: str) -> None:
    completion = load(f"synth/openai/{name}.json")
    acc = accumulate_openai(openai_completion_to_chunks(completion, include_usage=True))
    assert acc.complete
    assert acc.result() == completion


def test_openai_chunks_without_usage_end_with_finish_then_done() -> None:
    completion = load("synth/openai/text_long.json")
    chunks = openai_completion_to_chunks(completion, include_usage=False)
    assert chunks[-1] == DONE
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks[:-1])


@pytest.mark.parametrize(
    "text",
    ["", "short", "x" * 500, "word " * 200, 'a\\"b,c: "d"\\n' * 40, "naïve café 日本語 " * 30],
)
def test_split_for_stream_keeps_every_character_in_a_few_pieces(text: str) -> None:
    pieces = split_for_stream(text)
    assert "".join(pieces) == text
    assert len(pieces) <= 10
    assert all(pieces)


def test_fresh_ids_for_an_anthropic_replay() -> None:
    message = load("synth/anthropic/tool_use.json")
    message["content"].append(
        {"type": "web_search_tool_result", "tool_use_id": "toolu_01Syn1", "content": []}
    )
    original = copy.deepcopy(message)
    first, second = with_fresh_ids(message, "anthropic"), with_fresh_ids(message, "anthropic")
    assert message == original, "the cached object must not be mutated"
    for fresh in (first, second):
        assert fresh["id"].startswith("msg_") and fresh["id"] != message["id"]
        new_tool_ids = [b["id"] for b in fresh["content"] if b["type"] == "tool_use"]
        assert all(i.startswith("toolu_") for i in new_tool_ids)
        assert not set(new_tool_ids) & {"toolu_01Syn1", "toolu_01Syn2"}
        assert fresh["content"][-1]["tool_use_id"] == new_tool_ids[0]
        assert [b.get("input") for b in fresh["content"]] == [
            b.get("input") for b in message["content"]
        ]
    assert first["id"] != second["id"]
    assert first["content"][1]["id"] != second["content"][1]["id"]


def test_fresh_ids_for_an_openai_replay() -> None:
    completion = load("synth/openai/tool_calls.json")
    fresh = with_fresh_ids(completion, "openai")
    assert fresh["id"].startswith("chatcmpl-") and fresh["id"] != completion["id"]
    assert fresh["created"] > completion["created"]
    old_ids = [c["id"] for c in completion["choices"][0]["message"]["tool_calls"]]
    new_ids = [c["id"] for c in fresh["choices"][0]["message"]["tool_calls"]]
    assert all(i.startswith("call_") for i in new_ids) and not set(new_ids) & set(old_ids)
    assert completion["choices"][0]["message"]["tool_calls"][0]["id"] == "call_Syn1"


def test_fresh_ids_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="gemini"):
        with_fresh_ids({}, "gemini")
