"""Anthropic Messages <-> OpenAI Chat Completions: the one import the rest of ridethrough uses.

Failover across providers only works if a request written for one protocol can be served by a
target speaking the other, and the answer comes back in the caller's protocol, streamed or
not. This module re-exports the three halves (``translate_request``, ``translate_response``,
``translate_stream``); the rules below are the contract, and ``tests/protocol`` holds a golden
fixture for each. Source: the protocol notes (protocols.md, section 4).

Outcomes: **carried** (mapped), **dropped** (named in ``Translated.dropped``; the answer keeps
its meaning), **Untranslatable** (the planner skips the target; ``check_*`` says why).

Requests, Anthropic -> OpenAI (``anthropic_to_openai_request``)

=========================================  =====================================  ==============
Anthropic                                  OpenAI                                 outcome
=========================================  =====================================  ==============
system (str | text blocks)                 leading system message (blocks \\n\\n)   carried
text / image base64 / image url            text part / data URI / https url       carried
tool_use {id, name, input}                 tool_calls[{id, function{arguments}}]  carried (JSON)
tool_result blocks in a user turn          role:tool messages, before the rest    carried
tools {name, description, input_schema}    {type: function, function{parameters}} carried
tool_choice auto/any/tool/none             auto/required/{function}/none          carried
disable_parallel_tool_use                  parallel_tool_calls: false             carried
stop_sequences (<= 4)                      stop                                   carried
metadata.user_id                           user                                   carried
stream                                     stream + stream_options.include_usage  carried
output_config.format json_schema           response_format json_schema            carried
cache_control (anywhere)                   —                                      dropped
top_k                                      —                                      dropped
tool_result.is_error                       —                                      dropped
citations on text blocks                   —                                      dropped
thinking {enabled|adaptive}                —                                      dropped
tools.<extra key> (strict, …)              —                                      dropped
service_tier, container, other fields      —                                      dropped (name)
tool_choice without tools                  —                                      dropped
thinking / redacted_thinking in history    —                                      Untranslatable
document, search_result, server-tool blocks—                                      Untranslatable
image with source type file                —                                      Untranslatable
image (non-text) inside a tool_result      tool messages are text-only            Untranslatable
Anthropic-defined tools (bash_…, web_…)    —                                      Untranslatable
mcp_servers                                —                                      Untranslatable
tool name longer than 64                   —                                      Untranslatable
more than 4 stop_sequences                 —                                      Untranslatable
trailing assistant message (prefill)       would be answered, not continued       Untranslatable
=========================================  =====================================  ==============

Requests, OpenAI -> Anthropic (``openai_to_anthropic_request``)

=========================================  =====================================  ==============
OpenAI                                     Anthropic                              outcome
=========================================  =====================================  ==============
leading system / developer messages        system (str, or text blocks if many)   carried
system message after the conversation      appended to system                     dropped system.position
image_url data URI / http(s) url           image base64 / url source              carried
image_url.detail                           —                                      dropped image.detail
assistant tool_calls (arguments string)    tool_use input (parsed; invalid JSON   carried
                                           kept under ``_raw_arguments``)
role:tool messages                         tool_result blocks, one user turn      carried
tools / tool_choice / parallel_tool_calls  tools / any|tool|auto|none / disable…  carried
tools[].function.strict                    —                                      dropped tools.strict
max_completion_tokens | max_tokens         max_tokens (default if absent)         carried
temperature 0–2                            clamped to 0–1                         dropped temperature.clamped
stop (str | list)                          stop_sequences ("" removed)            carried / stop.empty
user                                       metadata.user_id                       carried
seed, frequency/presence_penalty,          —                                      dropped (name)
logit_bias, reasoning_effort, store, …
reasoning_content in history, name         —                                      dropped
empty messages                             —                                      dropped messages.empty
n > 1                                      —                                      Untranslatable
logprobs / top_logprobs                    —                                      Untranslatable
response_format json_object/json_schema    no JSON mode                           Untranslatable
input_audio / file parts, audio output     —                                      Untranslatable
legacy functions / function_call / role    —                                      Untranslatable
custom / allowed_tools tools or choice     —                                      Untranslatable
web_search_options                         —                                      Untranslatable
whitespace-only stop sequence              Anthropic answers 400                  Untranslatable
image type other than jpeg/png/gif/webp    —                                      Untranslatable
only system messages                       Anthropic needs a user turn            Untranslatable
trailing assistant message                 would be continued as a prefill        Untranslatable
=========================================  =====================================  ==============

Responses and streams (both directions; ``translate_response``, ``translate_stream``)

=========================================  =====================================
Anthropic                                  OpenAI
=========================================  =====================================
end_turn, stop_sequence, pause_turn        stop (-> end_turn)
max_tokens, model_context_window_exceeded  length (-> max_tokens)
tool_use                                   tool_calls, function_call (-> tool_use; and a
                                           ``stop`` that followed tool calls -> tool_use)
refusal                                    content_filter (-> refusal)
usage input + cache_read + cache_creation  prompt_tokens; cached_tokens = cache_read;
                                           cache_write_tokens = cache_creation (O->A subtracts)
thinking blocks / thinking_delta           message/delta ``reasoning_content`` (A->O only;
                                           O->A drops it: a thinking block needs a signature)
error event                                ``{"error": …}`` chunk, and back
msg_… / toolu_…                            chatcmpl-… / call_… (derived or minted)
=========================================  =====================================
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
