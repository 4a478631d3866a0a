"""The simulated model: a deterministic, plausible answer for a normalized request.

Both wire formats parse their request into one ``Conversation`` and render one
``Answer``, so an Anthropic and an OpenAI request for the same conversation get the same
words. The answer quotes the last user text, so a test (or a human watching the demo)
can tell which request an answer belongs to, and it is seeded by the request itself, so
the same request always gets the same answer, streamed or not.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

__all__ = [
    "Answer",
    "Conversation",
    "ToolCall",
    "ToolChoice",
    "ToolSpec",
    "compose_answer",
    "estimate_tokens",
    "example_for_schema",
    "split_tokens",
]

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """Provider-neutral: ``auto`` | ``any`` (OpenAI "required") | ``tool`` | ``none``."""

    mode: str = "auto"
    name: str | None = None


@dataclass(slots=True)
class Conversation:
    """What the simulated model needs to know about a request, in either format."""

    model: str
    last_user_text: str = ""
    tool_results: list[str] = field(default_factory=list)  # set when the last turn is results
    image_count: int = 0
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    max_tokens: int | None = None
    stop_sequences: list[str] = field(default_factory=list)
    input_tokens: int = 0
    stream: bool = False
    include_usage: bool = False  # OpenAI stream_options.include_usage
    prefill: str = ""            # a trailing assistant turn (Anthropic): the answer continues it
    seed_material: bytes = b""   # canonical request content: same request, same answer


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    fragments: list[str]  # the arguments' JSON, in the pieces a stream sends


@dataclass(slots=True)
class Answer:
    text_tokens: list[str]
    tool_call: ToolCall | None
    stop_reason: StopReason
    stop_sequence: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.text_tokens)

    @property
    def output_tokens(self) -> int:
        return len(self.text_tokens) + (len(self.tool_call.fragments) if self.tool_call else 0)


_SENTENCES = [
    "The short version is that it depends on the constraints you care about most.",
    "A good first step is to write down what success looks like and measure it.",
    "Most of the time the simplest approach is also the easiest one to maintain.",
    "It helps to test the idea on a small example before rolling it out widely.",
    "Keep an eye on the edge cases, because that is where surprises usually hide.",
    "If the results look off, check the inputs before changing the method.",
    "There are trade-offs here between speed, cost and reliability.",
    "Documenting the decision now will save time when someone revisits it later.",
    "A second opinion from someone familiar with the details is often worth it.",
    "In practice a few careful iterations beat one large redesign.",
]


def compose_answer(
    conv: Conversation, *, sim_name: str, seed: int, preamble_with_tools: bool
) -> Answer:
    """Text or a tool call for ``conv``. ``preamble_with_tools`` adds Claude's habit of a
    sentence before a tool_use block (OpenAI tool calls come with ``content: null``)."""
    rng = random.Random(_seed_for(conv, sim_name, seed))
    tool = _tool_to_call(conv)
    if tool is not None:
        preamble = f"[{sim_name}] I'll use the {tool.name} tool." if preamble_with_tools else ""
        if conv.prefill or conv.tool_choice.mode in ("any", "tool"):
            # A prefill stands for the sentence before the call; a forced tool choice makes
            # Claude call it at once, with no text first (the API prefills the call itself).
            preamble = ""
        tokens = split_tokens(preamble)
        if conv.max_tokens is not None and len(tokens) >= conv.max_tokens:
            return Answer(tokens[: conv.max_tokens], None, "max_tokens")
        arguments = example_for_schema(tool.schema, tool.name)
        call = ToolCall(tool.name, arguments, _json_fragments(arguments))
        return Answer(tokens, call, "tool_use")

    text = _answer_text(conv, sim_name, rng)
    if conv.prefill:
        text = _continuation(text, conv.prefill, sim_name, rng)
    stop_reason: StopReason = "end_turn"
    stop_sequence: str | None = None
    cut = _earliest_stop(text, conv.stop_sequences)
    if cut is not None:
        text, stop_sequence = text[: cut[0]], cut[1]
        stop_reason = "stop_sequence"
    tokens = split_tokens(text)
    if conv.max_tokens is not None and len(tokens) > conv.max_tokens:
        tokens, stop_reason, stop_sequence = tokens[: conv.max_tokens], "max_tokens", None
    return Answer(tokens, None, stop_reason, stop_sequence)


def split_tokens(text: str) -> list[str]:
    """Word-sized tokens, each carrying its leading whitespace: ``"".join`` restores text."""
    return re.findall(r"\s*\S+|\s+$", text)


def estimate_tokens(*parts: Any) -> int:
    """ceil(characters / 4) over every string in ``parts``; an image counts as 400 chars,
    so a base64 payload does not blow the estimate up."""
    chars = 0
    stack: list[Any] = list(parts)
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, dict):
            if item.get("type") in ("image", "image_url"):
                chars += 400
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return math.ceil(chars / 4)


def example_for_schema(schema: Any, name: str = "value", depth: int = 0) -> Any:
    """A type-appropriate value for a JSON schema; objects get their required properties."""
    if not isinstance(schema, dict) or depth > 6:
        return f"example-{name}"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return example_for_schema((non_null or options)[0], name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        return {
            key: example_for_schema(props.get(key, {}), key, depth + 1)
            for key in required
        }
    if kind == "array":
        count = max(int(schema.get("minItems", 1) or 1), 1)
        return [example_for_schema(schema.get("items", {}), name, depth + 1)] * count
    if kind == "integer":
        return int(_within_bounds(schema, 1))
    if kind == "number":
        return float(_within_bounds(schema, 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _example_string(schema, name)


def _within_bounds(schema: dict[str, Any], preferred: float) -> float:
    value = preferred
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    if isinstance(minimum, (int, float)) and value < minimum:
        value = math.ceil(minimum)
    if isinstance(maximum, (int, float)) and value > maximum:
        value = math.floor(maximum)
    return value


def _example_string(schema: dict[str, Any], name: str) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        return "2025-03-07"
    if fmt == "date-time":
        return "2025-03-07T12:00:00Z"
    if fmt == "email":
        return "someone@example.com"
    if fmt in ("uri", "url"):
        return "https://example.com/"
    value = f"example-{name}"
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and len(value) < min_length:
        value = value.ljust(min_length, "x")
    return value


def _seed_for(conv: Conversation, sim_name: str, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}\0{sim_name}\0".encode() + conv.seed_material).digest()
    return int.from_bytes(digest[:8], "big")


def _tool_to_call(conv: Conversation) -> ToolSpec | None:
    if not conv.tools or conv.tool_results or conv.tool_choice.mode == "none":
        return None
    if conv.tool_choice.mode == "tool" and conv.tool_choice.name:
        for tool in conv.tools:
            if tool.name == conv.tool_choice.name:
                return tool
    return conv.tools[0]


def _answer_text(conv: Conversation, sim_name: str, rng: random.Random) -> str:
    parts: list[str] = []
    if conv.tool_results:
        parts.append(f"[{sim_name}] The tool returned: {_quote(' '.join(conv.tool_results))}.")
    else:
        parts.append(f"[{sim_name}] Here is a short answer about: {_quote(conv.last_user_text)}.")
    if conv.image_count:
        noun = "image" if conv.image_count == 1 else "images"
        parts.append(f"I see {conv.image_count} {noun}.")
    parts.extend(rng.sample(_SENTENCES, rng.randint(2, 4)))
    return " ".join(parts)


def _continuation(answer: str, prefill: str, sim_name: str, rng: random.Random) -> str:
    """What follows a prefill: the rest of this model's own answer if the prefill is its
    beginning, else a few more sentences of its own (marked, so a test can tell them apart)."""
    if answer.startswith(prefill):
        return answer[len(prefill):]
    return f" [{sim_name} continues] " + " ".join(rng.sample(_SENTENCES, 2))


def _quote(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    if not text:
        return "(nothing)"
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _earliest_stop(text: str, stops: list[str]) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for stop in stops:
        if not stop:
            continue
        at = text.find(stop)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, stop)
    return best


def _json_fragments(arguments: dict[str, Any]) -> list[str]:
    """The arguments' JSON in small irregular pieces, like real input_json_delta events."""
    encoded = orjson.dumps(arguments).decode()
    return [encoded[i : i + 8] for i in range(0, len(encoded), 8)] or ["{}"]
