"""Loading golden fixtures and comparing against them.

Fixtures are plain JSON and SSE files under ``fixtures/`` so a reviewer can read the wire
format itself. Expected values may use ``"<any:PREFIX>"`` for ids the code must mint (any
string starting with PREFIX and longer than it); everything else compares exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ridethrough.protocols.sse import SSEParser, encode_data, encode_event

FIXTURES = Path(__file__).parent / "fixtures"
DONE = "[DONE]"


def load(relative: str | Path) -> Any:
    return json.loads((FIXTURES / relative).read_text())


def case_files(directory: str) -> list[Any]:
    """One pytest param per ``*.json`` file in ``fixtures/<directory>``, id = file stem."""
    paths = sorted((FIXTURES / directory).glob("*.json"))
    assert paths, f"no fixtures in {directory}"
    return [pytest.param(json.loads(p.read_text()), id=p.stem) for p in paths]


def case_list(relative: str) -> list[Any]:
    """One pytest param per entry of a fixture file's ``cases`` list, id = the case's ``id``."""
    cases = load(relative)["cases"]
    assert cases, f"no cases in {relative}"
    return [pytest.param(case, id=case["id"]) for case in cases]


def read_sse(path: Path) -> list[tuple[str | None, Any]]:
    """An SSE transcript as ``(event name or None, parsed JSON or "[DONE]")`` pairs."""
    parser = SSEParser()
    events = parser.feed(path.read_bytes()) + parser.flush()
    out: list[tuple[str | None, Any]] = []
    for ev in events:
        if ev.event == "comment":
            continue
        out.append((ev.event, DONE if ev.data == DONE else json.loads(ev.data)))
    return out


def anthropic_sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(encode_event(name, data) for name, data in events)


def openai_sse(chunks: list[Any]) -> bytes:
    return b"".join(encode_data(chunk) for chunk in chunks)


def assert_matches(actual: Any, expected: Any, path: str = "$") -> None:
    """Exact structural equality, except ``"<any:PREFIX>"`` placeholders in ``expected``."""
    if isinstance(expected, str) and expected.startswith("<any:") and expected.endswith(">"):
        prefix = expected[5:-1]
        assert isinstance(actual, str), f"{path}: expected a minted {prefix!r} id, got {actual!r}"
        assert actual.startswith(prefix) and len(actual) > len(prefix), (
            f"{path}: expected a minted {prefix!r} id, got {actual!r}"
        )
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        assert set(actual) == set(expected), (
            f"{path}: keys differ: missing {sorted(set(expected) - set(actual))}, "
            f"unexpected {sorted(set(actual) - set(expected))}"
        )
        for key in expected:
            assert_matches(actual[key], expected[key], f"{path}.{key}")
        return
    if isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), (
            f"{path}: expected {len(expected)} items, got {len(actual)}: {actual!r}"
        )
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_matches(a, e, f"{path}[{i}]")
        return
    assert type(actual) is type(expected) and actual == expected, (
        f"{path}: expected {expected!r}, got {actual!r}"
    )
