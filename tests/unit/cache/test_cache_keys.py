"""Request normalization: which requests share a cache entry, and which never may."""

from __future__ import annotations

import copy

import pytest

from ridethrough.cache.keys import (
    canonical_request,
    request_key,
    scope_of,
    semantic_query,
)
from ridethrough.config import CacheConfig

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def anthropic_tool_conversation() -> dict:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "stream": True,
        "metadata": {"user_id": "user-123"},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "tools": [{"name": "get_weather", "description": "Weather for a city",
                   "input_schema": SCHEMA, "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "auto"},
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
                 "input": {"city": "Paris"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A",
                 "content": [{"type": "text", "text": "18C, sunny"}]},
            ]},
        ],
    }


def openai_tool_conversation() -> dict:
    return {
        "model": "gpt-4.1",
        "max_tokens": 256,
        "user": "someone-else",
        "temperature": 0.2,
        "stop": "END",
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather for a city", "parameters": SCHEMA}}],
        "tool_choice": "auto",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "call_zz9", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": "call_zz9", "content": "18C, sunny"},
        ],
    }


def key(fmt: str, body: dict, route: str = "chat", scope: str = "anonymous", **kw: object) -> str:
    return request_key(route, scope, canonical_request(fmt, body, **kw))  # type: ignore[arg-type]


def test_tool_conversation_has_one_key_in_both_formats() -> None:
    assert key("anthropic", anthropic_tool_conversation()) == key(
        "openai", openai_tool_conversation())


def test_tool_call_ids_do_not_matter_only_their_links() -> None:
    body = anthropic_tool_conversation()
    other = copy.deepcopy(body)
    other["messages"][1]["content"][1]["id"] = "toolu_ZZZ"
    other["messages"][2]["content"][0]["tool_use_id"] = "toolu_ZZZ"
    assert key("anthropic", body) == key("anthropic", other)


@pytest.mark.parametrize("field, value", [
    ("model", "another-model"), ("stream", False), ("metadata", {"user_id": "u-9"}),
    ("service_tier", "auto"),
])
def test_fields_that_cannot_change_the_answer_are_not_in_the_key(field: str, value: object) -> None:
    body = anthropic_tool_conversation()
    assert key("anthropic", body) == key("anthropic", {**body, field: value})


def test_openai_stream_options_user_and_store_are_not_in_the_key() -> None:
    body = openai_tool_conversation()
    other = {**body, "stream": True, "stream_options": {"include_usage": True},
             "user": "u-77", "store": True, "metadata": {"tenant": "x"}}
    assert key("openai", body) == key("openai", other)


@pytest.mark.parametrize("field, value", [
    ("temperature", 0.9), ("top_p", 0.5), ("top_k", 5), ("max_tokens", 100),
    ("stop_sequences", ["STOP"]), ("system", "Be verbose."),
    ("tool_choice", {"type": "any"}), ("thinking", {"type": "enabled", "budget_tokens": 1024}),
])
def test_fields_that_change_the_answer_are_in_the_key(field: str, value: object) -> None:
    body = anthropic_tool_conversation()
    assert key("anthropic", body) != key("anthropic", {**body, field: value})


def test_tools_and_messages_are_in_the_key() -> None:
    body = anthropic_tool_conversation()
    other_tools = copy.deepcopy(body)
    other_tools["tools"][0]["description"] = "Weather forecast for a city"
    other_answer = copy.deepcopy(body)
    other_answer["messages"][2]["content"][0]["content"][0]["text"] = "25C, rain"
    assert len({key("anthropic", b) for b in (body, other_tools, other_answer)}) == 3


def test_route_and_scope_are_in_the_key() -> None:
    body = anthropic_tool_conversation()
    assert key("anthropic", body, route="a") != key("anthropic", body, route="b")
    assert key("anthropic", body, scope="key:team-a") != key("anthropic", body, scope="key:b")


def test_string_and_block_content_and_system_forms_are_equivalent() -> None:
    as_strings = {"model": "m", "max_tokens": 50, "system": "You are terse.",
                  "messages": [{"role": "user", "content": "hi"}]}
    as_blocks = {"model": "m", "max_tokens": 50,
                 "system": [{"type": "text", "text": "You are terse."}],
                 "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert key("anthropic", as_strings) == key("anthropic", as_blocks)


def test_integer_and_float_temperature_are_the_same_key() -> None:
    body = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    assert key("anthropic", {**body, "temperature": 1}) == key(
        "anthropic", {**body, "temperature": 1.0})


def test_openai_temperature_above_one_is_not_clamped_into_another_key() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert key("openai", {**body, "temperature": 1.5}) != key(
        "openai", {**body, "temperature": 2.0})


def test_openai_without_max_tokens_matches_anthropic_given_the_route_default() -> None:
    openai = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
    anthropic = {"model": "claude", "max_tokens": 4096,
                 "messages": [{"role": "user", "content": "hi"}]}
    assert key("openai", openai, default_max_tokens=4096) == key("anthropic", anthropic)
    assert key("openai", openai) != key("anthropic", anthropic)


def test_openai_only_requests_get_a_key_of_their_own() -> None:
    body = {"model": "gpt", "n": 2, "messages": [{"role": "user", "content": "hi"}]}
    assert key("openai", body) != key("openai", {**body, "n": 3})
    assert key("openai", body) == key("openai", {**body, "stream": True, "user": "x"})


def test_openai_extra_sampling_fields_are_in_the_key() -> None:
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
    assert key("openai", body) != key("openai", {**body, "seed": 7})
    assert key("openai", body) != key("openai", {**body, "frequency_penalty": 0.5})


@pytest.mark.parametrize("body", [None, [], "text", {"messages": "nope"},
                                  {"messages": [None]}, {"messages": [{"content": 5}]}])
@pytest.mark.parametrize("fmt", ["anthropic", "openai"])
def test_malformed_bodies_get_a_key_and_never_raise(fmt: str, body: object) -> None:
    assert len(key(fmt, body)) == 64  # type: ignore[arg-type]


def test_scope_is_the_key_name_or_shared() -> None:
    assert scope_of(CacheConfig(), "team-a") == "key:team-a"
    assert scope_of(CacheConfig(), None) == "anonymous"
    assert scope_of(CacheConfig(share_across_keys=True), "team-a") == "shared"
    assert scope_of(CacheConfig(), "shared") != scope_of(CacheConfig(share_across_keys=True), "x")


def test_semantic_query_is_the_last_user_text_in_an_exact_context() -> None:
    body = {"model": "m", "max_tokens": 50, "system": "S",
            "messages": [{"role": "user", "content": "first"},
                         {"role": "assistant", "content": "ok"},
                         {"role": "user", "content": "How do I reset my password?"}]}
    query = semantic_query("chat", "anonymous", canonical_request("anthropic", body))
    assert query is not None
    assert (query.text, query.turns) == ("How do I reset my password?", 3)
    other_history = copy.deepcopy(body)
    other_history["messages"][0]["content"] = "second"
    other = semantic_query("chat", "anonymous", canonical_request("anthropic", other_history))
    assert other is not None and other.space != query.space


def test_tool_results_and_images_are_not_semantic_questions() -> None:
    canonical = canonical_request("anthropic", anthropic_tool_conversation())
    assert semantic_query("chat", "anonymous", canonical) is None
    image = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}]}
    assert semantic_query("chat", "anonymous", canonical_request("anthropic", image)) is None
