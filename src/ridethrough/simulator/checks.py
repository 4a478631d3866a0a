"""What the real APIs reject, so the stand-in upstream answers 400 where they would.

The gateway passes a same-format request through without judging its roles, blocks and
fields (docs/errors.md → Bad input); the provider does that, and its 400
comes back to the caller. The simulator must therefore judge like a provider: a request the
real API refuses gets a 400 in the provider's own wire format here, never a crash (a 500
would look like an outage and be failed over, which a real provider's 400 is not). The
messages imitate each API's style; the rules are the common subset both document.
"""

from __future__ import annotations

from typing import Any

from .wire import WireError

__all__ = ["check_anthropic", "check_openai"]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _a(path: str, message: str) -> WireError:
    return WireError(400, f"{path}: {message}")


def _check_schema(schema: Any, path: str, err: Any) -> None:
    """The JSON-schema subset a tool's parameters must get right for either API to accept it."""
    if not isinstance(schema, dict):
        raise err(path, "Input should be a valid dictionary")
    props = schema.get("properties")
    if props is not None and not (isinstance(props, dict)
                                  and all(isinstance(p, dict) for p in props.values())):
        raise err(f"{path}.properties", "JSON schema is invalid")
    required = schema.get("required")
    if required is not None and not (isinstance(required, list)
                                     and all(isinstance(r, str) for r in required)):
        raise err(f"{path}.required", "JSON schema is invalid")


# -- Anthropic Messages -------------------------------------------------------------------------

_A_ROLES = ("user", "assistant")


def check_anthropic(data: dict[str, Any], *, require_max_tokens: bool = True) -> None:
    model = data.get("model")
    if model is None:
        raise _a("model", "Field required")
    if not isinstance(model, str):
        raise _a("model", "Input should be a valid string")
    max_tokens = data.get("max_tokens")
    if require_max_tokens:
        if max_tokens is None:
            raise _a("max_tokens", "Field required")
        if not _is_int(max_tokens):
            raise _a("max_tokens", "Input should be a valid integer")
        if max_tokens < 1:
            raise _a("max_tokens", "Input should be greater than or equal to 1")
    messages = data.get("messages")
    if messages is None:
        raise _a("messages", "Field required")
    if not isinstance(messages, list) or not messages:
        raise _a("messages", "at least one message is required")
    for i, message in enumerate(messages):
        _check_anthropic_message(messages, i, message)
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        if not isinstance(system, list) or not all(
                isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
                for b in system):
            raise _a("system", "Input should be a valid string or a list of text blocks")
    for key, top in (("temperature", 1), ("top_p", 1)):
        value = data.get(key)
        if value is not None and (not _is_num(value) or not 0 <= value <= top):
            raise _a(key, f"Input should be a number between 0 and {top}")
    if data.get("top_k") is not None and not _is_int(data["top_k"]):
        raise _a("top_k", "Input should be a valid integer")
    if "stream" in data and not isinstance(data["stream"], bool):
        raise _a("stream", "Input should be a valid boolean")
    stops = data.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        raise _a("stop_sequences", "Input should be a valid list of strings")
    for key in ("metadata", "thinking", "output_config", "tool_choice"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise _a(key, "Input should be a valid dictionary")
    tools = data.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _a("tools", "Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _a(f"tools.{i}", "Input should be a valid dictionary")
            if not isinstance(tool.get("name"), str):
                raise _a(f"tools.{i}.name", "Field required")
            if tool.get("type") in (None, "custom"):
                _check_schema(tool.get("input_schema"), f"tools.{i}.input_schema", _a)


def _check_anthropic_message(messages: list[Any], i: int, message: Any) -> None:
    if not isinstance(message, dict):
        raise _a(f"messages.{i}", "Input should be a valid dictionary")
    role = message.get("role")
    if role == "system":
        # Mid-conversation system messages (the Claude API's newer models): never first,
        # never next to another, followed by an assistant turn or nothing, text only.
        before = messages[i - 1] if i else None
        after = messages[i + 1] if i + 1 < len(messages) else None
        if before is None or not isinstance(before, dict) or before.get("role") == "system" \
                or (isinstance(after, dict) and after.get("role") not in (None, "assistant")):
            raise _a(f"messages.{i}.role", "a system message must follow a user turn and be "
                                           "last or followed by an assistant turn")
    elif role not in _A_ROLES:
        raise _a(f"messages.{i}.role", "Input should be 'user' or 'assistant'")
    if "content" not in message:
        raise _a(f"messages.{i}.content", "Field required")
    content = message["content"]
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _a(f"messages.{i}.content", "Input should be a valid string or list")
    for j, block in enumerate(content):
        where = f"messages.{i}.content.{j}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _a(where, "Input should be a valid dictionary with a type")
        kind = block["type"]
        if role == "system" and kind != "text":
            raise _a(f"{where}.type", "a system message carries text blocks only")
        if kind == "text" and not isinstance(block.get("text"), str):
            raise _a(f"{where}.text", "Input should be a valid string")
        if kind == "image" and not isinstance(block.get("source"), dict):
            raise _a(f"{where}.source", "Input should be a valid dictionary")
        if kind == "tool_use" and not (isinstance(block.get("id"), str)
                                       and isinstance(block.get("name"), str)
                                       and isinstance(block.get("input"), dict)):
            raise _a(where, "tool_use needs a string id and name and an object input")
        if kind == "tool_result":
            inner = block.get("content")
            if not isinstance(block.get("tool_use_id"), str):
                raise _a(f"{where}.tool_use_id", "Input should be a valid string")
            if inner is not None and not isinstance(inner, str) and not (
                    isinstance(inner, list) and all(isinstance(b, dict) for b in inner)):
                raise _a(f"{where}.content", "Input should be a valid string or list of blocks")


# -- OpenAI Chat Completions --------------------------------------------------------------------

_O_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _o(param: str, message: str) -> WireError:
    return WireError(400, message, param=param)


def _o_type(param: str, expected: str, value: Any) -> WireError:
    got = {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string",
           list: "an array", dict: "an object"}.get(type(value), "null")
    return _o(param, f"Invalid type for '{param}': expected {expected}, but got {got} instead.")


def check_openai(data: dict[str, Any]) -> None:
    model = data.get("model")
    if not isinstance(model, str):
        raise _o("model", "you must provide a model parameter")
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise _o("messages", "Missing required parameter: 'messages'.")
    if not messages:
        raise _o("messages", "[] is too short - 'messages'")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _o(f"messages[{i}].role", f"Missing required parameter: 'messages[{i}].role'.")
        if message["role"] not in _O_ROLES:
            raise _o(f"messages[{i}].role", f"Invalid value: '{message['role']}'. Supported values "
                                            f"are: {', '.join(repr(r) for r in _O_ROLES)}.")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            if not isinstance(content, list) or not all(
                    isinstance(p, dict) and isinstance(p.get("type"), str) for p in content):
                raise _o_type(f"messages[{i}].content", "one of a string or array of objects", content)
        calls = message.get("tool_calls")
        if calls is not None and not (isinstance(calls, list) and all(
                isinstance(c, dict) and isinstance(c.get("function"), dict) for c in calls)):
            raise _o_type(f"messages[{i}].tool_calls", "an array of objects", calls)
    for key in ("max_tokens", "max_completion_tokens", "n"):
        value = data.get(key)
        if value is not None and (not _is_int(value) or value < 1):
            raise _o(key, f"Invalid '{key}': integer below minimum value. "
                          f"Expected a value >= 1, but got {value!r} instead.")
    for key, top in (("temperature", 2), ("top_p", 1)):
        value = data.get(key)
        if value is not None and (not _is_num(value) or not 0 <= value <= top):
            raise _o(key, f"Invalid '{key}': expected a number between 0 and {top}.")
    if data.get("stream") is not None and not isinstance(data["stream"], bool):
        raise _o_type("stream", "a boolean", data["stream"])
    for key in ("stream_options", "response_format", "metadata"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise _o_type(key, "an object", data[key])
    stop = data.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop)):
        raise _o("stop", "Invalid 'stop': expected a string or an array of at most 4 strings.")
    choice = data.get("tool_choice")
    if choice is not None and not isinstance(choice, (str, dict)):
        raise _o_type("tool_choice", "a string or an object", choice)
    if isinstance(choice, str) and choice not in ("none", "auto", "required"):
        raise _o("tool_choice", f"Invalid value: '{choice}'. Supported values are: 'none', 'auto' "
                                "and 'required'.")
    if isinstance(choice, dict) and "function" in choice and not isinstance(choice["function"], dict):
        raise _o_type("tool_choice.function", "an object", choice["function"])
    tools = data.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _o_type("tools", "an array", tools)
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _o_type(f"tools[{i}]", "an object", tool)
            if not isinstance(tool.get("type"), str):
                raise _o(f"tools[{i}].type", f"Missing required parameter: 'tools[{i}].type'.")
            if tool["type"] == "function" or "function" in tool:
                function = tool.get("function")
                if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                    raise _o(f"tools[{i}].function.name",
                             f"Missing required parameter: 'tools[{i}].function.name'.")
                if function.get("parameters") is not None:
                    _check_schema(function["parameters"], f"tools[{i}].function.parameters",
                                  lambda p, m: _o(p, f"Invalid schema for function: {m}"))
