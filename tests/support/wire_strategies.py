"""Hypothesis strategies for request bodies in both wire formats, valid-ish and broken.

Three sources, so the property tests (tests/e2e/test_bad_input_properties.py) and the fuzzer
(bench/fuzz.py) reach every corner the issue-11 crashes came from:

* ``typed_request``: derived from ``ridethrough.protocols.shape`` — the very tables that say
  which JSON types the gateway reads — so every field ridethrough looks at is generated, with
  the roles and block types of each format and some it has never heard of;
* ``mutated_golden``: the golden request fixtures of ``tests/protocol/fixtures`` with one to
  three mutations (a value replaced by any JSON value, a key deleted, a null, an unknown key);
* ``raw_body``: what is not a JSON object at all — truncated JSON, other JSON values, bytes.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

from ridethrough.protocols import shape

FIXTURES = Path(__file__).resolve().parents[1] / "protocol" / "fixtures"
PATHS = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}
ROLES = {"anthropic": ["user", "assistant", "system"], "openai": ["system", "developer", "user",
                                                                   "assistant", "tool", "function"]}
BLOCK_TYPES = {"anthropic": ["text", "image", "tool_use", "tool_result", "thinking", "document"],
               "openai": ["text", "image_url", "refusal", "input_audio", "file"]}

_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) \
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
json_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def golden_requests(fmt: str) -> list[dict[str, Any]]:
    """Every request fixture written in ``fmt``: the translation goldens and the loss cases."""
    folder, direction = ("request_a2o", "a2o") if fmt == "anthropic" else ("request_o2a", "o2a")
    bodies = [json.loads(p.read_text())["input"] for p in sorted((FIXTURES / folder).glob("*.json"))]
    for name in ("dropped", "untranslatable"):
        cases = json.loads((FIXTURES / "losses" / f"{name}.json").read_text())["cases"]
        bodies.extend(c["input"] for c in cases if c["direction"] == direction)
    return bodies


# -- from the shape tables ----------------------------------------------------------------------

def _from_spec(spec: shape.Spec, fmt: str) -> st.SearchStrategy[Any]:
    if isinstance(spec, shape.Scalar):
        options = []
        if str in spec.types:
            options.append(st.text(max_size=12) | st.sampled_from(["auto", "none", "function", "any"]))
        if bool in spec.types:
            options.append(st.booleans())
        if int in spec.types:
            options.append(st.integers(-3, 2**40))
        if float in spec.types:
            options.append(st.floats(-1, 3, allow_nan=False))
        return st.one_of(options)
    if isinstance(spec, shape.Obj):
        fields = {name: _from_spec(sub, fmt) | st.none() for name, sub in spec.fields.items()
                  if name not in spec.required}
        required = {name: _from_spec(spec.fields[name], fmt) for name in spec.required}
        return st.fixed_dictionaries(required, optional=fields)
    if isinstance(spec, shape.ListOf):
        return st.lists(_from_spec(spec.item, fmt), max_size=3)
    if isinstance(spec, shape.OneOf):
        return st.one_of([_from_spec(option, fmt) for option in spec.options])
    if isinstance(spec, shape.Tagged):
        variants = [_from_spec(v, fmt).map(lambda d, k=k: {**d, "type": k}) for k, v in spec.variants.items()]
        other = st.fixed_dictionaries({"type": st.sampled_from(BLOCK_TYPES[fmt])},
                                      optional={"text": st.text(max_size=12), "x": json_values})
        return st.one_of([*variants, other])
    return json_values


_MESSAGE_SPECS = {"anthropic": shape.ANTHROPIC.fields["messages"].item,  # type: ignore[attr-defined]
                  "openai": shape.OPENAI.fields["messages"].item}  # type: ignore[attr-defined]


@st.composite
def typed_request(draw: st.DrawFn, fmt: str, routes: list[str]) -> dict[str, Any]:
    """A body whose every field ridethrough reads has the type it reads there: what comes
    back is the provider's verdict or an untranslatable skip, never a crash."""
    top = dict(shape.ANTHROPIC.fields if fmt == "anthropic" else shape.OPENAI.fields)
    top.pop("messages")
    body = draw(_from_spec(shape.Obj(top), fmt))
    message = _from_spec(_MESSAGE_SPECS[fmt], fmt)
    messages = draw(st.lists(st.tuples(st.sampled_from([*ROLES[fmt], "robot"]), message),
                             min_size=1, max_size=4))
    body["messages"] = [{**m, "role": role} for role, m in messages]
    body["model"] = draw(st.sampled_from(routes))
    for key in ("max_tokens", "max_completion_tokens"):
        if key in body:
            body[key] = draw(st.integers(1, 64))
    if fmt == "anthropic" and draw(st.booleans()):
        body["max_tokens"] = draw(st.integers(1, 64))
    if draw(st.booleans()):
        body["stream"] = draw(st.booleans())
    if fmt == "openai" and draw(st.booleans()):
        body["stream_options"] = {"include_usage": draw(st.booleans())}
    return body


# -- mutations of the golden fixtures -----------------------------------------------------------

def _paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(_paths(v, (*path, i)))
    return out


@st.composite
def mutated_golden(draw: st.DrawFn, fmt: str, routes: list[str]) -> dict[str, Any]:
    body = copy.deepcopy(draw(st.sampled_from(golden_requests(fmt))))
    body["model"] = draw(st.sampled_from(routes))
    if draw(st.booleans()):
        body["stream"] = True
    for _ in range(draw(st.integers(1, 3))):
        inner = _paths(body)[1:]
        if not inner:
            break
        path = draw(st.sampled_from(inner))
        parent: Any = body
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        op = draw(st.sampled_from(["replace", "replace", "delete", "null", "add"]))
        if op == "replace":
            parent[key] = draw(json_values)
        elif op == "null":
            parent[key] = None
        elif op == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
        else:
            parent.insert(key, draw(json_values))
    return body


def encode(body: Any) -> bytes:
    return orjson.dumps(body)


@st.composite
def raw_body(draw: st.DrawFn, fmt: str, routes: list[str]) -> bytes:
    """Not a JSON object: truncated JSON, another JSON value, bytes, an empty body."""
    kind = draw(st.sampled_from(["truncated", "value", "bytes", "empty"]))
    if kind == "truncated":
        data = encode(draw(mutated_golden(fmt, routes)))
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "value":
        return encode(draw(st.lists(json_values, max_size=3) | _scalars))
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    return b""
