"""What the gateway itself validates (little), and the one place where anything else that
goes wrong while reading a request becomes the caller's 400 naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ridethrough.errors import InvalidRequest, NotFound
from ridethrough.protocols import anthropic as A
from ridethrough.protocols import openai as O
from ridethrough.routing.request import request_side

CLAUDE_CODE = {  # the shape of Claude Code's first request (issue 11), valid for the real API
    "model": "claude-opus-4-8", "max_tokens": 32000, "stream": True,
    "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
                 {"role": "system", "content": "The user prefers short answers."}],
    "thinking": {"type": "adaptive"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "high"},
}


@pytest.mark.parametrize("body", [
    CLAUDE_CODE,
    {"model": "m", "max_tokens": 5, "messages": [{"role": "robot", "content": 3}]},
    {"model": "m", "messages": [], "temperature": 7, "tools": "none", "stop_sequences": 1},
    {"model": "m", "max_tokens": None, "stream": None, "messages": [{"role": "user"}]},
])
def test_anthropic_gateway_leaves_the_provider_rules_to_the_provider(body: dict[str, Any]) -> None:
    A.validate_request(body)


@pytest.mark.parametrize("body,param", [
    ([], "body"),
    ({"messages": []}, "model"),
    ({"model": "", "messages": []}, "model"),
    ({"model": "m"}, "messages"),
    ({"model": "m", "messages": {"role": "user"}}, "messages"),
    ({"model": "m", "messages": [{"role": "user"}, "hi"]}, "messages.1"),
    ({"model": "m", "messages": [], "max_tokens": "ten"}, "max_tokens"),
    ({"model": "m", "messages": [], "max_tokens": 0}, "max_tokens"),
    ({"model": "m", "messages": [], "max_tokens": True}, "max_tokens"),
    ({"model": "m", "messages": [], "stream": "yes"}, "stream"),
])
def test_anthropic_gateway_validates_what_it_reads(body: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        A.validate_request(body)
    assert raised.value.param == param and raised.value.message.startswith(param + ":")


@pytest.mark.parametrize("body", [
    {"model": "m", "messages": [{"role": "robot", "content": 3}], "temperature": "hot", "n": 0},
    {"model": "m", "messages": [], "stop": ["a", "b", "c", "d", "e"], "tools": 1},
    {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": None, "stream_options": None},
])
def test_openai_gateway_leaves_the_provider_rules_to_the_provider(body: dict[str, Any]) -> None:
    O.validate_request(body)


@pytest.mark.parametrize("body,param", [
    ("x", "body"),
    ({"model": 3, "messages": []}, "model"),
    ({"model": "m", "messages": None}, "messages"),
    ({"model": "m", "messages": [None]}, "messages[0]"),
    ({"model": "m", "messages": [], "max_completion_tokens": 1.5}, "max_completion_tokens"),
    ({"model": "m", "messages": [], "max_tokens": -1}, "max_tokens"),
    ({"model": "m", "messages": [], "stream": 1}, "stream"),
    ({"model": "m", "messages": [], "stream_options": []}, "stream_options"),
])
def test_openai_gateway_validates_what_it_reads(body: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        O.validate_request(body)
    assert raised.value.param == param


def test_an_unexpected_exception_becomes_a_400_naming_the_field() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    with pytest.raises(InvalidRequest) as raised, request_side("openai", body):
        body["messages"][0]["content"][0]["text"].upper()  # what an unchecked reader would do
    assert raised.value.status == 400
    assert raised.value.param == "messages[0].content[0].text"
    assert raised.value.message == "messages[0].content[0].text: expected a string, got an integer"


def test_without_a_misfit_the_400_names_the_body() -> None:
    with pytest.raises(InvalidRequest) as raised, request_side("anthropic", {"messages": []}):
        raise KeyError("x")
    assert raised.value.param == "body" and "KeyError" in raised.value.message


def test_ridethrough_errors_pass_unchanged() -> None:
    with pytest.raises(NotFound), request_side("anthropic", {}):
        raise NotFound("no such route")


BAD_VALUE = {"model": 3, "messages": "hi", "max_tokens": 0, "max_completion_tokens": "ten",
             "stream": "yes", "stream_options": [True]}


@pytest.mark.parametrize("module", [A, O], ids=["anthropic", "openai"])
def test_every_validated_field_is_checked_and_nothing_else(module: Any) -> None:
    good = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    for field in module.VALIDATED:
        with pytest.raises(InvalidRequest) as raised:
            module.validate_request({**good, field: BAD_VALUE[field]})
        assert raised.value.param == field
    for field in set(BAD_VALUE) - set(module.VALIDATED) - {"model", "messages"}:
        module.validate_request({**good, field: BAD_VALUE[field]})  # not ours to judge


def test_docs_errors_md_lists_exactly_the_validated_fields() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "errors.md").read_text()
    section = doc.split("## Bad input", 1)[1].split("\n\n", 3)[2]
    listed: dict[str, set[str]] = {"anthropic": set(), "openai": set()}
    for row in section.splitlines()[2:]:
        fmt, fields = (cell.strip() for cell in row.strip("|").split("|")[:2])
        for fmt_ in (["anthropic", "openai"] if fmt == "both" else [fmt]):
            listed[fmt_].update(f.strip(" `") for f in fields.split(","))
    assert listed == {"anthropic": set(A.VALIDATED), "openai": set(O.VALIDATED)}


def test_a_translator_crash_on_a_well_formed_request_fails_over_not_400(monkeypatch):
    """Our bug must never become the caller's 400: the target is skipped as a translation
    error, and the next one serves."""
    from ridethrough.errors import ErrorClass, UpstreamError
    from ridethrough.protocols import translate
    from ridethrough.routing import request as request_mod

    def broken(*_a, **_k):
        raise KeyError("oops")

    monkeypatch.setattr(translate, "anthropic_to_openai_request", broken)
    from ridethrough.config import RouteConfig, Timeouts
    from ridethrough.protocols.features import features_of
    from ridethrough.providers.base import ResolvedCapabilities
    from ridethrough.routing.clock import FakeClock
    from ridethrough.routing.deadline import Deadline
    from ridethrough.routing.plan import Target

    class OpenAIProvider:
        name, format, kind = "o", "openai", "scripted"

    body = {"model": "r", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    req = request_mod.InboundRequest(
        format="anthropic", body=body, stream=False, route_name="r",
        route=RouteConfig(targets=[{"provider": "o", "model": "m"}]),
        features=features_of("anthropic", body), deadline=Deadline.start(FakeClock(), 30),
        request_id="req_1")
    target = Target(OpenAIProvider(), "m", Timeouts(), ResolvedCapabilities())  # type: ignore[arg-type]
    with pytest.raises(UpstreamError) as ei:
        request_mod.prepare_call(req, target)
    assert ei.value.error_class is ErrorClass.TRANSLATION
