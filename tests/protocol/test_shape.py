"""Where a request's types differ from what ridethrough reads: the field path, in the
caller's own style, and never an exception whatever the body."""

from __future__ import annotations

from typing import Any

import pytest

from ridethrough.protocols.shape import misfit

from ._golden import case_files

USER = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("fmt,body,where", [
    ("anthropic", {"messages": [{"role": "user", "content": [1]}]},
     "messages.0.content.0: expected an object with a string type, got an integer"),
    ("anthropic", {"messages": [{"role": "user", "content": [{"type": {"x": 1}}]}]},
     "messages.0.content.0.type: expected a string, got an object"),
    ("anthropic", {"messages": USER, "system": [{"type": "text", "text": 3}]},
     "system.0.text: expected a string, got an integer"),
    ("anthropic", {"messages": USER, "tools": [{"name": "f", "input_schema": []}]},
     "tools.0.input_schema: expected an object, got a list"),
    ("anthropic", {"messages": [{"role": "user", "content": [{"type": "image"}]}]},
     "messages.0.content.0.source: expected an object, got nothing"),
    ("anthropic", {"messages": USER, "temperature": True},
     "temperature: expected a number, got a boolean"),
    ("openai", {"messages": [{"role": "user", "content": ["x"]}]},
     "messages[0].content[0]: expected an object with a string type, got a string"),
    ("openai", {"messages": [{"role": 7, "content": "x"}]},
     "messages[0].role: expected a string, got an integer"),
    ("openai", {"messages": USER, "tools": [{"type": "function", "function": {}}]},
     "tools[0].function.name: expected a string, got nothing"),
    ("openai", {"messages": USER, "stop": ["a", 1]}, "stop[1]: expected a string, got an integer"),
    ("openai", {"messages": USER, "stop": 5}, "stop: expected a string or a list, got an integer"),
    ("openai", {"messages": USER, "tool_choice": 1.5},
     "tool_choice: expected a string or an object, got a number"),
    ("openai", [], "body: expected an object, got a list"),
])
def test_misfit_names_the_first_wrong_field(fmt: str, body: Any, where: str) -> None:
    assert str(misfit(fmt, body)) == where


@pytest.mark.parametrize("fmt,body", [
    ("anthropic", {"messages": USER, "system": None, "tools": None, "temperature": None}),
    ("anthropic", {"messages": [{"role": "robot", "content": [{"type": "new_block_2027", "x": [1]}]}],
                   "brand_new_field": {"a": [1, 2]}}),
    ("openai", {"messages": [{"role": "user", "content": None}], "n": None, "stop": None}),
    ("openai", {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": 3}]}]}),
])
def test_what_ridethrough_does_not_read_is_not_judged(fmt: str, body: Any) -> None:
    """Nulls are absent; unknown roles, blocks and fields are the provider's to judge."""
    assert misfit(fmt, body) is None


@pytest.mark.parametrize("case", case_files("request_a2o"))
def test_golden_anthropic_requests_fit(case: dict[str, Any]) -> None:
    assert misfit("anthropic", case["input"]) is None


@pytest.mark.parametrize("case", case_files("request_o2a"))
def test_golden_openai_requests_fit(case: dict[str, Any]) -> None:
    assert misfit("openai", case["input"]) is None
