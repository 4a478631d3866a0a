"""The JSON types ridethrough itself reads in a request, per format, and where a body differs.

The gateway passes a request through to a same-format target untouched: roles, block types,
fields and betas are the provider's to judge, so a feature shipped tomorrow works today.
Only translation to the other format reads deeper, and it reads with assumptions ("a content
part is an object", "``stop`` is a list of strings"). These tables state those assumptions
once. ``check_*`` in ``translate_request`` consult them first, so a type-confused request is
declared untranslatable for that target (the planner skips it, naming the field) instead of
crashing the translator; and ``routing.request.request_side`` uses them to name the field
when anything else on the request side raises.

A ``None`` value counts as absent everywhere (OpenAI's SDKs send nulls for unset fields, and
the translators treat both alike). The paths use each format's own style: Anthropic's errors
say ``messages.1.content.0``, OpenAI's ``messages[1].content[0]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ANTHROPIC", "OPENAI", "AnyJSON", "ListOf", "Misfit", "Obj", "OneOf", "Scalar", "Spec", "Tagged",
           "misfit"]


@dataclass(frozen=True, slots=True)
class Misfit:
    """The first value whose type is not what ridethrough reads there."""

    path: str
    expected: str
    got: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, got {self.got}"


class Spec:
    what = "a value"

    def find(self, value: Any, path: list[str | int]) -> tuple[list[str | int], Spec, Any] | None:
        raise NotImplementedError


class AnyJSON(Spec):
    def find(self, value: Any, path: list[str | int]) -> None:
        return None


class Scalar(Spec):
    def __init__(self, what: str, *types: type) -> None:
        self.what = what
        self.types = types

    def find(self, value: Any, path: list[str | int]) -> tuple[list[str | int], Spec, Any] | None:
        if isinstance(value, bool) and bool not in self.types:
            return path, self, value  # JSON true is no number
        return None if isinstance(value, self.types) else (path, self, value)


@dataclass
class Obj(Spec):
    fields: Mapping[str, Spec] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    what: str = "an object"

    def find(self, value: Any, path: list[str | int]) -> tuple[list[str | int], Spec, Any] | None:
        if not isinstance(value, dict):
            return path, self, value
        for name in self.required:
            if value.get(name) is None:
                return [*path, name], self.fields[name], None
        for name, spec in self.fields.items():
            item = value.get(name)
            if item is not None:
                found = spec.find(item, [*path, name])
                if found:
                    return found
        return None


@dataclass
class ListOf(Spec):
    item: Spec
    what: str = "a list"

    def find(self, value: Any, path: list[str | int]) -> tuple[list[str | int], Spec, Any] | None:
        if not isinstance(value, list):
            return path, self, value
        for i, item in enumerate(value):
            found = self.item.find(item, [*path, i])
            if found:
                return found
        return None


class OneOf(Spec):
    """The first option whose outer type matches decides (a string, or a list of blocks)."""

    def __init__(self, *options: Spec) -> None:
        self.options = options
        self.what = " or ".join(o.what for o in options)

    def find(self, value: Any, path: list[str | int]) -> tuple[list[str | int], Spec, Any] | None:
        for option in self.options:
            found = option.find(value, path)
            if found is None or found[0] != path:  # matched here; a misfit deeper in counts
                return found
        return path, self, value


@dataclass
class Tagged(Spec):
    """An object whose ``type`` picks the fields read (content blocks and parts)."""

    variants: Mapping[str, Obj]
    what: str = "an object with a string type"

    def find(self, value: Any, path: list[str | int]) -> tuple[list[str | int], Spec, Any] | None:
        if not isinstance(value, dict):
            return path, self, value
        kind = value.get("type")
        if not isinstance(kind, str):
            return [*path, "type"], _STR, kind
        variant = self.variants.get(kind)
        return variant.find(value, path) if variant is not None else None


_STR = Scalar("a string", str)
_NUM = Scalar("a number", int, float)
_INT = Scalar("an integer", int)
_BOOL = Scalar("a boolean", bool)
_OBJECT = Obj()
_ANY = AnyJSON()

# Anthropic Messages, as anthropic_to_openai_request reads it.
_A_TEXT_BLOCK = Obj({"text": _STR})
_A_BLOCK = Tagged({
    "text": _A_TEXT_BLOCK,
    "image": Obj({"source": Obj({"type": _STR, "url": _STR, "media_type": _STR, "data": _STR})},
                  required=("source",)),
    "tool_use": Obj({"id": _STR, "name": _STR}),
    "tool_result": Obj({"tool_use_id": _STR,
                         "content": OneOf(_STR, ListOf(Tagged({"text": _A_TEXT_BLOCK})))}),
})
ANTHROPIC = Obj({
    "system": OneOf(_STR, ListOf(Obj({"text": _STR}))),
    "messages": ListOf(Obj({"content": OneOf(_STR, ListOf(_A_BLOCK))})),
    "tools": ListOf(Obj({"name": _STR, "type": _STR, "description": _STR, "input_schema": _OBJECT})),
    "tool_choice": Obj({"type": _STR, "name": _STR}),
    "stop_sequences": ListOf(_STR),
    "metadata": _OBJECT,
    "thinking": _OBJECT,
    "output_config": Obj({"format": _OBJECT}),
    "temperature": _NUM, "top_p": _NUM, "top_k": _NUM, "max_tokens": _INT,
})

# OpenAI Chat Completions, as openai_to_anthropic_request reads it.
_O_TEXT_PART = Obj({"text": _STR})
_O_PART = Tagged({
    "text": _O_TEXT_PART,
    "refusal": Obj({"refusal": _STR}),
    "image_url": Obj({"image_url": OneOf(_STR, Obj({"url": _STR}))}),
})
_O_TOOL_CALL = Obj({"id": _STR, "function": Obj({"name": _STR, "arguments": _ANY})})
OPENAI = Obj({
    "messages": ListOf(Obj({
        "role": _STR,
        "content": OneOf(_STR, ListOf(_O_PART)),
        "tool_calls": ListOf(_O_TOOL_CALL),
        "tool_call_id": _STR,
        "refusal": _STR,
    })),
    "tools": ListOf(Obj({"type": _STR, "function": Obj(
        {"name": _STR, "description": _STR, "parameters": _OBJECT}, required=("name",))})),
    "tool_choice": OneOf(_STR, Obj({"type": _STR, "function": Obj({"name": _STR})})),
    "parallel_tool_calls": _BOOL,
    "stop": OneOf(_STR, ListOf(_STR)),
    "n": _INT,
    "response_format": Obj({"type": _STR}),
    "modalities": ListOf(_ANY),
    "temperature": _NUM, "top_p": _NUM, "user": _STR,
    "max_tokens": _INT, "max_completion_tokens": _INT,
})

_SPECS = {"anthropic": ANTHROPIC, "openai": OPENAI}


def _render(fmt: str, path: list[str | int]) -> str:
    if not path:
        return "body"
    if fmt == "anthropic":
        return ".".join(str(p) for p in path)
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def misfit(fmt: str, body: Any) -> Misfit | None:
    """The first field of ``body`` (a request in ``fmt``) whose JSON type is not the one
    ridethrough reads there, or None. Never raises."""
    found = _SPECS[fmt].find(body, [])
    if found is None:
        return None
    path, spec, value = found
    return Misfit(_render(fmt, path), spec.what, _type_name(value))
