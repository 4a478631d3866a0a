"""Golden stream translations: an upstream SSE transcript in, the client's transcript out."""

from __future__ import annotations

from typing import Any

import pytest

from ridethrough.protocols.translate import AnthropicToOpenAIStream, OpenAIToAnthropicStream

from ._golden import DONE, FIXTURES, assert_matches, load, read_sse


def _cases(direction: str, *, answered_only: bool = False) -> list[Any]:
    """Stream fixture names; ``answered_only`` leaves out errors, truncations, empty upstreams."""
    names = sorted(
        p.name.removesuffix(".upstream.sse") for p in (FIXTURES / direction).glob("*.upstream.sse")
    )
    assert names
    if answered_only:
        names = [n for n in names if _answered(direction, n)]
    return [pytest.param(name, id=name) for name in names]


def _answered(direction: str, name: str) -> bool:
    sdk = load(f"{direction}/{name}.json")["sdk"]
    upstream = (FIXTURES / direction / f"{name}.upstream.sse").read_text()
    return "error" not in sdk and not sdk.get("truncated") and upstream != "data: [DONE]\n\n"


def translate_openai_upstream(name: str) -> tuple[list[tuple[str, Any]], OpenAIToAnthropicStream]:
    meta = load(f"stream_o2a/{name}.json")
    stream = OpenAIToAnthropicStream(meta["model"], message_id=meta["message_id"])
    out: list[tuple[str, Any]] = []
    for _, data in read_sse(FIXTURES / "stream_o2a" / f"{name}.upstream.sse"):
        out += stream.finish() if data == DONE else stream.feed(data)
    return out, stream


def translate_anthropic_upstream(name: str) -> tuple[list[Any], AnthropicToOpenAIStream]:
    meta = load(f"stream_a2o/{name}.json")
    stream = AnthropicToOpenAIStream(
        meta["model"],
        include_usage=meta["include_usage"],
        completion_id=meta["completion_id"],
        created=meta["created"],
    )
    out: list[Any] = []
    for event, data in read_sse(FIXTURES / "stream_a2o" / f"{name}.upstream.sse"):
        assert event is not None
        out += stream.feed(event, data)
    out += stream.finish()
    return out, stream


@pytest.mark.parametrize("name", _cases("stream_o2a"))
def test_openai_stream_to_anthropic(name: str) -> None:
    out, stream = translate_openai_upstream(name)
    expected = read_sse(FIXTURES / "stream_o2a" / f"{name}.expected.sse")
    assert_matches([list(pair) for pair in out], [list(pair) for pair in expected])
    assert stream.complete
    assert stream.feed({"choices": [{"index": 0, "delta": {"content": "late"}}]}) == []
    assert stream.finish() == []


@pytest.mark.parametrize("name", _cases("stream_o2a"))
def test_anthropic_stream_grammar(name: str) -> None:
    """message_start first; blocks sequential from 0, never interleaved; event == data.type."""
    out, _ = translate_openai_upstream(name)
    assert out[0][0] == "message_start"
    open_index, next_index = None, 0
    for event, data in out:
        assert data["type"] == event
        if event == "content_block_start":
            assert open_index is None and data["index"] == next_index
            open_index = data["index"]
        elif event == "content_block_delta":
            assert data["index"] == open_index
        elif event == "content_block_stop":
            assert data["index"] == open_index
            open_index, next_index = None, next_index + 1
        elif event in ("message_delta", "message_stop"):
            assert open_index is None
    if out[-1][0] != "error":
        assert [e for e, _ in out[-2:]] == ["message_delta", "message_stop"]
        assert isinstance(out[-2][1]["usage"]["output_tokens"], int)


@pytest.mark.parametrize("name", _cases("stream_a2o"))
def test_anthropic_stream_to_openai(name: str) -> None:
    meta = load(f"stream_a2o/{name}.json")
    out, stream = translate_anthropic_upstream(name)
    expected = [data for _, data in read_sse(FIXTURES / "stream_a2o" / f"{name}.expected.sse")]
    assert_matches(out, expected)
    assert stream.complete is meta["complete"]


@pytest.mark.parametrize("name", _cases("stream_a2o"))
def test_openai_stream_grammar(name: str) -> None:
    """role once, then deltas; tool id/name only on a call's first chunk; usage chunk last."""
    out, _ = translate_anthropic_upstream(name)
    chunks = [c for c in out if isinstance(c, dict) and "error" not in c]
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:] if c["choices"])
    seen_ids: set[int] = set()
    for chunk in chunks:
        for call in (
            chunk["choices"][0]["delta"].get("tool_calls") if chunk["choices"] else []
        ) or []:
            if "id" in call:
                assert call["index"] not in seen_ids and call["index"] == len(seen_ids)
                seen_ids.add(call["index"])
            else:
                assert call["index"] in seen_ids and "name" not in call["function"]
    if out and out[-1] == DONE:
        finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
        assert len(finish) == 1
        if load(f"stream_a2o/{name}.json")["include_usage"]:
            assert chunks[-1]["choices"] == [] and "usage" in chunks[-1]


def test_finish_before_anything_still_yields_a_message() -> None:
    stream = OpenAIToAnthropicStream("m", message_id="msg_x")
    assert [e for e, _ in stream.finish()] == ["message_start", "message_delta", "message_stop"]


def test_tool_arguments_for_a_closed_call_are_not_reopened() -> None:
    """Anthropic blocks are sequential: a late fragment for call 0 must not corrupt call 1."""
    stream = OpenAIToAnthropicStream("m", message_id="msg_x")

    def tool(index: int, **fn: str) -> dict[str, Any]:
        call: dict[str, Any] = {"index": index, "function": fn}
        if "name" in fn:
            call["id"] = f"call_{index}"
        return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}

    out = stream.feed(tool(0, name="a", arguments='{"x":1}'))
    out += stream.feed(tool(1, name="b", arguments='{"y":'))
    out += stream.feed(tool(0, arguments="junk"))
    out += stream.feed(tool(1, arguments="2}"))
    out += stream.finish()
    partials = [d["delta"]["partial_json"] for e, d in out if e == "content_block_delta"]
    assert partials == ['{"x":1}', '{"y":2}']


def test_anthropic_stream_ignores_events_after_done() -> None:
    stream = AnthropicToOpenAIStream("m", include_usage=False, completion_id="c", created=1)
    stream.feed(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 1},
        },
    )
    assert stream.feed("message_stop", {"type": "message_stop"}) == [DONE]
    assert stream.feed("ping", {"type": "ping"}) == []
    assert stream.finish() == []
