"""Request normalization: one canonical form, and the hashes the cache files answers under.

A cached answer is only worth having if the next equivalent request finds it, whichever
protocol it arrives in. So both inbound formats are reduced to one canonical, Anthropic-shaped
form: OpenAI requests go through the same translator the gateway uses for failover, string
and block content become blocks, ``system`` becomes a list of texts, ``cache_control`` and
signatures disappear, tool-call ids are renumbered by first appearance (ids are minted by
whichever provider answered the previous turn, so two identical conversations never share
them). What cannot change the answer is left out of the key on purpose: ``model`` (the route
is in the key, the target is not), ``stream`` (a streamed answer serves a JSON request and the
reverse), ``metadata``/``user`` ids, and of course any key or header — headers never reach this
module at all.

Everything here is pure and never raises: a body the canonicalizer does not understand is
hashed as it is (minus the excluded fields), which only costs cross-format hits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from ridethrough.config import CacheConfig
from ridethrough.protocols.translate import Untranslatable, openai_to_anthropic_request

__all__ = [
    "SemanticQuery",
    "canonical_request",
    "request_key",
    "scope_of",
    "semantic_query",
    "sha256_json",
]

JSON = dict[str, Any]

KEY_VERSION = 1  # bump when the canonical form changes: old entries simply stop matching

# Never part of a key: they do not change the answer, or they identify a user.
_EXCLUDED = {
    "anthropic": frozenset({"model", "stream", "metadata", "service_tier"}),
    "openai": frozenset(
        {"model", "stream", "stream_options", "user", "metadata", "store", "service_tier",
         "prompt_cache_key", "safety_identifier"}
    ),
}
# Fields the canonical form carries itself; the rest (thinking, seed, …) go under "extra".
_ANTHROPIC_CARRIED = frozenset(
    {"messages", "system", "tools", "tool_choice", "temperature", "top_p", "top_k",
     "max_tokens", "stop_sequences"}
)
_OPENAI_CARRIED = frozenset(
    {"messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop",
     "tools", "tool_choice", "parallel_tool_calls", "n", "logprobs", "response_format"}
)
_DEFAULT_SCHEMA: JSON = {"type": "object", "properties": {}}


def sha256_json(obj: Any) -> str:
    """sha256 of canonical JSON (sorted keys, compact). Non-JSON values hash by ``str``."""
    data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.sha256(data).hexdigest()


def scope_of(cfg: CacheConfig, key_id: str | None) -> str:
    """Whose answers these are: the gateway key's *name* (never the key), or everyone's.

    Tagged so a key literally named ``shared`` cannot collide with the shared scope.
    """
    if cfg.share_across_keys:
        return "shared"
    return "anonymous" if key_id is None else f"key:{key_id}"


def request_key(route: str, scope: str, canonical: JSON) -> str:
    return sha256_json({"v": KEY_VERSION, "route": route, "scope": scope, "request": canonical})


def canonical_request(fmt: str, body: Any, *, default_max_tokens: int | None = None) -> JSON:
    """The canonical form of a request in either format. Never raises.

    ``default_max_tokens`` is the route's default, applied when an OpenAI request names no
    limit — the same value the gateway sends upstream, so such a request can share an entry
    with the Anthropic request that spells it out.
    """
    try:
        if fmt == "openai":
            return _from_openai(body, default_max_tokens)
        return _from_anthropic(body)
    except Exception:
        return _as_is(fmt, body)


def _as_is(fmt: str, body: Any) -> JSON:
    if not isinstance(body, dict):
        return {"as_is": fmt, "body": body}
    excluded = _EXCLUDED.get(fmt, frozenset())
    return {"as_is": fmt, "body": {k: v for k, v in body.items() if k not in excluded}}


def _from_openai(body: JSON, default_max_tokens: int | None) -> JSON:
    try:
        translated = openai_to_anthropic_request(body, "", default_max_tokens=0).body
    except Untranslatable:
        # n > 1, JSON mode, audio …: no Anthropic twin exists, so only OpenAI can hit it.
        return _as_is("openai", body)
    extra = {
        k: v
        for k, v in body.items()
        if k not in _OPENAI_CARRIED and k not in _EXCLUDED["openai"] and v is not None
    }
    if body.get("top_k") is not None:
        translated["top_k"] = body["top_k"]
    if body.get("temperature") is not None:
        # The translator clamps OpenAI's 0–2 scale to 1; 1.5 and 2.0 must stay distinct keys.
        translated["temperature"] = body["temperature"]
    if not translated.get("max_tokens"):
        translated["max_tokens"] = default_max_tokens
    return _from_anthropic(translated, extra=extra)


def _from_anthropic(body: JSON, *, extra: JSON | None = None) -> JSON:
    if extra is None:
        extra = {
            k: v
            for k, v in body.items()
            if k not in _ANTHROPIC_CARRIED and k not in _EXCLUDED["anthropic"] and v is not None
        }
    ids = _IdRenumbering()
    tools = [_tool(t) for t in body.get("tools") or []]
    out: JSON = {
        "system": _system(body.get("system")),
        "messages": _messages(body["messages"], ids),
        "tools": tools,
        "tool_choice": _tool_choice(body.get("tool_choice")) if tools else None,
        "temperature": _float(body.get("temperature")),
        "top_p": _float(body.get("top_p")),
        "top_k": _int(body.get("top_k")),
        "max_tokens": _int(body.get("max_tokens")),
        "stop": [s for s in body.get("stop_sequences") or [] if s] or None,
        "extra": _strip_cache_control(extra),
    }
    return {k: v for k, v in out.items() if v not in (None, [], {})}


class _IdRenumbering:
    """Tool-call ids -> ``t0``, ``t1``… by first appearance; only the links between them matter."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def __call__(self, tool_id: Any) -> str:
        key = str(tool_id)
        if key not in self._ids:
            self._ids[key] = f"t{len(self._ids)}"
        return self._ids[key]


def _system(system: Any) -> list[str]:
    if isinstance(system, str):
        return [system] if system else []
    return [str(b.get("text")) for b in system or [] if isinstance(b, dict) and b.get("text")]


def _messages(messages: list[JSON], ids: _IdRenumbering) -> list[JSON]:
    """Blocks everywhere, empty turns dropped, same-role neighbours merged (as Anthropic does)."""
    out: list[JSON] = []
    for message in messages:
        role = message.get("role")
        blocks = _blocks(message.get("content"), ids)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for message in out:
        blocks = message["content"]
        if message["role"] == "assistant":
            message["content"] = _join_adjacent_text(blocks)
        else:  # tool results lead a user turn in Anthropic's format; the translator agrees
            results = [b for b in blocks if b.get("type") == "tool_result"]
            message["content"] = results + [b for b in blocks if b.get("type") != "tool_result"]
    return out


def _blocks(content: Any, ids: _IdRenumbering) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out = []
    for block in content or []:
        normalized = _block(block, ids)
        if normalized is not None:
            out.append(normalized)
    return out


def _block(block: JSON, ids: _IdRenumbering) -> JSON | None:
    kind = block.get("type")
    if kind == "text":
        text = block.get("text") or ""
        return {"type": "text", "text": text} if text else None
    if kind == "tool_use":
        return {"type": "tool_use", "id": ids(block.get("id")), "name": block.get("name"),
                "input": block.get("input") or {}}
    if kind == "tool_result":
        out: JSON = {"type": "tool_result", "tool_use_id": ids(block.get("tool_use_id")),
                     "content": _tool_result_content(block.get("content"), ids)}
        if block.get("is_error"):
            out["is_error"] = True
        return out
    if kind == "thinking":  # the signature differs per generation; the text is what was said
        return {"type": "thinking", "thinking": block.get("thinking") or ""}
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking"}
    return _strip_cache_control({k: v for k, v in block.items() if k != "citations"})


def _tool_result_content(content: Any, ids: _IdRenumbering) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    blocks = [b for b in (_block(b, ids) for b in content) if b is not None]
    if all(b.get("type") == "text" for b in blocks):
        return "\n".join(b["text"] for b in blocks)  # what the OpenAI side of it carries
    return blocks


def _join_adjacent_text(blocks: list[JSON]) -> list[JSON]:
    out: list[JSON] = []
    for block in blocks:
        if block.get("type") == "text" and out and out[-1].get("type") == "text":
            out[-1] = {"type": "text", "text": out[-1]["text"] + block["text"]}
        else:
            out.append(block)
    return out


def _tool(tool: JSON) -> JSON:
    if tool.get("type") not in (None, "custom"):  # Anthropic-defined tools: kept whole
        return _strip_cache_control(tool)
    out: JSON = {"name": tool.get("name"), "input_schema": tool.get("input_schema") or _DEFAULT_SCHEMA}
    if tool.get("description"):
        out["description"] = tool["description"]
    return out


def _tool_choice(choice: Any) -> JSON | None:
    if not isinstance(choice, dict):
        return None
    out: JSON = {"type": choice.get("type")}
    if choice.get("type") == "tool":
        out["name"] = choice.get("name")
    if choice.get("disable_parallel_tool_use"):
        out["disable_parallel_tool_use"] = True
    return None if out == {"type": "auto"} else out


def _strip_cache_control(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_cache_control(v) for k, v in obj.items() if k != "cache_control"}
    if isinstance(obj, list):
        return [_strip_cache_control(v) for v in obj]
    return obj


def _float(value: Any) -> float | None:
    return None if value is None else float(value)  # 1 and 1.0 are the same temperature


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


# ---------------------------------------------------------------------------------------------
# semantic lookups


@dataclass(frozen=True)
class SemanticQuery:
    """What the semantic cache compares: one question, inside one exactly-matched context.

    ``space`` hashes everything but the last user turn — route, gateway scope, system prompt,
    tools, sampling parameters and the earlier conversation — so an answer given under another
    system prompt, tool set, key or history can never be served, however similar the question.
    """

    space: str
    text: str
    turns: int


def semantic_query(route: str, scope: str, canonical: JSON) -> SemanticQuery | None:
    """The question to embed, or ``None`` when the request is not a plain-text question
    (images, tool results, documents: similarity of their text says nothing about them)."""
    if "as_is" in canonical:
        return None
    messages = canonical.get("messages") or []
    if not messages or messages[-1].get("role") != "user":
        return None
    last = messages[-1]["content"]
    if not last or any(b.get("type") != "text" for b in last):
        return None
    text = "\n".join(b["text"] for b in last).strip()
    if not text:
        return None
    context = {k: v for k, v in canonical.items() if k != "messages"}
    space = sha256_json(
        {
            "v": KEY_VERSION,
            "route": route,
            "scope": scope,
            "system": sha256_json(canonical.get("system") or []),
            "tools": sha256_json([canonical.get("tools"), canonical.get("tool_choice")]),
            "context": sha256_json(context),
            "history": sha256_json(messages[:-1]),
        }
    )
    return SemanticQuery(space=space, text=text, turns=len(messages))
