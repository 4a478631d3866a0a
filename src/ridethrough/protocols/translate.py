"""Anthropic Messages <-> OpenAI Chat Completions: the one import the rest of ridethrough uses.

Failover across providers only works if a request written for one protocol can be served by a
target speaking the other, and the answer comes back in the caller's protocol, streamed or
not. This module re-exports the three halves (``translate_request``, ``translate_response``,
``translate_stream``); the rules below are the contract, and ``tests/protocol`` holds a golden
fixture for each. Source: the protocol notes (protocols.md, section 4).

Outcomes: **carried** (mapped), **dropped** (named in ``Translated.dropped``; the answer keeps
its meaning), **Untranslatable** (the planner skips the target; ``check_*`` says why).

Requests, Anthropic -> OpenAI (``anthropic_to_openai_request``); ``dropped`` names in quotes

====================================  ==================================  ====================
Anthropic                             OpenAI                              outcome
====================================  ==================================  ====================
system (str | text blocks)            leading system message (\n\n join)  carried
system message inside messages        system message in the same place    carried
text / image base64 / image url       text part / data URI / https url    carried
tool_use {id, name, input}            tool_calls[{id, function, args}]    carried (JSON text)
input under ``_raw_arguments``        the original arguments text         carried
tool_result blocks in a user turn     role:tool messages, then the rest   carried
tools {name, description, schema}     {type: function, parameters}        carried
tool_choice auto/any/tool/none        auto/required/{function}/none       carried
disable_parallel_tool_use             parallel_tool_calls: false          carried
stop_sequences (<= 4)                 stop                                carried
metadata.user_id                      user                                carried
stream                                stream + include_usage              carried
output_config.format json_schema      response_format json_schema         carried
cache_control (anywhere)              -                                   "cache_control"
top_k                                 -                                   "top_k"
tool_result.is_error                  -                                   "tool_result.is_error"
citations on text blocks              -                                   "citations"
thinking {enabled | adaptive}         -                                   "thinking"
tools[].strict and other tool keys    -                                   "tools.<key>"
tool_choice without tools             -                                   "tool_choice"
output_config.effort                  -                                   "output_config.effort"
service_tier, container, unknown      -                                   the field's name
thinking / redacted_thinking blocks   signatures cannot cross providers   Untranslatable
document, search_result, server tools -                                   Untranslatable
image source type file                -                                   Untranslatable
image inside a tool_result            tool messages are text only         Untranslatable
Anthropic-defined tools (bash_...)    -                                   Untranslatable
mcp_servers                           -                                   Untranslatable
tool name longer than 64              -                                   Untranslatable
more than 4 stop_sequences            -                                   Untranslatable
trailing assistant message (prefill)  would be answered, not continued    Untranslatable
a role other than user/assistant/sys  -                                   Untranslatable
a value of a type it cannot read      (``shape.misfit`` names the field)  Untranslatable
====================================  ==================================  ====================

Requests, OpenAI -> Anthropic (``openai_to_anthropic_request``)

====================================  ==================================  ====================
OpenAI                                Anthropic                           outcome
====================================  ==================================  ====================
leading system / developer messages   system (str, or blocks if several)  carried
system message later on               appended to system                  "system.position"
  to a target with system_messages    {role: system} in place, if allowed carried
image_url data URI / http(s) url      image base64 / url source           carried
image_url.detail (not auto)           -                                   "image.detail"
tool_calls (arguments text)           tool_use input, parsed or repaired  carried
arguments that stay invalid JSON      input {"_raw_arguments": text}      carried
role:tool messages                    tool_result blocks, one user turn   carried
odd tool-call ids (``a.b:0``)         ``a_b_0`` on both sides             carried
tools / tool_choice required          tools / any                         carried
parallel_tool_calls false             disable_parallel_tool_use           carried
tools[].function.strict               -                                   "tools.strict"
max_completion_tokens | max_tokens    max_tokens (default if absent)      carried
temperature 0-2                       clamped to 0-1                      "temperature.clamped"
stop (str | list)                     stop_sequences                      carried
"" in stop                            removed                             "stop.empty"
user                                  metadata.user_id                    carried
consecutive same-role messages        merged into one turn                carried
empty messages                        removed                             "messages.empty"
name on a message                     -                                   "messages.name"
reasoning_content in history          -                                   "reasoning_content"
seed, penalties, logit_bias,          -                                   the field's name
reasoning_effort, store, unknown      -                                   the field's name
n > 1                                 -                                   Untranslatable
logprobs / top_logprobs               -                                   Untranslatable
response_format json_object/schema    no JSON mode                        Untranslatable
input_audio / file parts, audio out   -                                   Untranslatable
legacy functions / role function      -                                   Untranslatable
custom tools, allowed_tools choice    -                                   Untranslatable
web_search_options                    -                                   Untranslatable
whitespace-only stop sequence         Anthropic answers 400               Untranslatable
image not jpeg/png/gif/webp           -                                   Untranslatable
only system messages                  Anthropic needs a user turn         Untranslatable
trailing assistant message            would be continued as a prefill     Untranslatable
a value of a type it cannot read      (``shape.misfit`` names the field)  Untranslatable
====================================  ==================================  ====================

Responses and streams (``translate_response``, ``translate_stream``), both directions

====================================  ==================================================
Anthropic                             OpenAI
====================================  ==================================================
end_turn, stop_sequence, pause_turn   stop (-> end_turn)
max_tokens, context_window_exceeded   length (-> max_tokens)
tool_use                              tool_calls, function_call (-> tool_use; also a
                                      ``stop`` that followed tool calls)
refusal                               content_filter, or message.refusal (-> refusal)
usage input + cache_read + creation   prompt_tokens; cached_tokens = cache_read;
                                      cache_write_tokens = creation (O->A subtracts)
thinking / thinking_delta             ``reasoning_content`` (A->O only: O->A drops it,
                                      a thinking block needs a signature)
error event                           ``{"error": ...}`` chunk, and back
msg_... / toolu_...                   chatcmpl-... / call_... (derived or minted)
====================================  ==================================================
"""

from __future__ import annotations

from .translate_request import (
    Translated,
    Untranslatable,
    anthropic_to_openai_request,
    check_anthropic_to_openai,
    check_openai_to_anthropic,
    openai_to_anthropic_request,
)
from .translate_response import (
    RAW_ARGUMENTS_KEY,
    anthropic_error_to_openai,
    anthropic_to_openai_response,
    openai_error_to_anthropic,
    openai_to_anthropic_response,
)
from .translate_stream import AnthropicToOpenAIStream, OpenAIToAnthropicStream

__all__ = [
    "RAW_ARGUMENTS_KEY",
    "AnthropicToOpenAIStream",
    "OpenAIToAnthropicStream",
    "Translated",
    "Untranslatable",
    "anthropic_error_to_openai",
    "anthropic_to_openai_request",
    "anthropic_to_openai_response",
    "check_anthropic_to_openai",
    "check_openai_to_anthropic",
    "openai_error_to_anthropic",
    "openai_to_anthropic_request",
    "openai_to_anthropic_response",
]
