"""The in-process local model behind the gateway, driven by both official SDKs.

A gateway whose only route targets the ``local`` provider (SmolLM2 through llama.cpp, in
the gateway's own process) must answer the real ``anthropic`` and ``openai`` SDKs over a
real socket, JSON and streaming: the OpenAI client by passthrough, the Anthropic client
through the gateway's translation of the local model's OpenAI-format output.
"""

from __future__ import annotations

import importlib.util
import time

import anthropic
import openai
import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread
from ridethrough.providers.local_model import find_gguf
from support.stops import stop_inside

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or find_gguf() is None,
                       reason="llama-cpp-python or SmolLM2 missing"),
]

ROUTE = "smol"
TARGET = "local/smollm2-135m-instruct"
QUESTION = "What is the capital of France?"
# This anthropic SDK no longer has a `temperature` argument; the API still takes the field.
GREEDY = {"temperature": 0}


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    cfg = parse_config({
        "server": {"access_log": False, "data_dir": str(tmp_path_factory.mktemp("rt-data"))},
        "providers": {"local": {"kind": "local", "n_ctx": 2048, "max_queue": 4}},
        "routes": {ROUTE: {"targets": [{"provider": "local", "model": "smollm2-135m-instruct"}],
                           "cache": {"mode": "off"}}},
    })
    with GatewayThread(cfg) as g:
        provider = g.gateway.providers["local"]
        assert provider.unavailable_reason is None, provider.unavailable_reason
        yield g


@pytest.fixture()
def ac(gw):
    return anthropic.Anthropic(base_url=gw.url, api_key="client-key", max_retries=0,
                               timeout=120.0)


@pytest.fixture()
def oc(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="client-key", max_retries=0,
                         timeout=120.0)


# What the gateway returns must be exactly what llama.cpp itself answers on this machine:
# the same text and the same token counts (a model's words depend on the CPU's float kernels,
# so they are never compared with a fixed string).
ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens"}


def test_anthropic_sdk_json(ac, llama_reference):
    ref = llama_reference.answer([{"role": "user", "content": QUESTION}], max_tokens=40)
    raw = ac.messages.with_raw_response.create(
        model=ROUTE, max_tokens=40, extra_body=GREEDY,
        messages=[{"role": "user", "content": QUESTION}])
    assert raw.headers["x-ridethrough-target"] == TARGET
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.model == ROUTE or msg.model.startswith("smollm2")
    assert msg.content[0].type == "text"
    assert ref.text.strip() and msg.content[0].text == ref.text
    assert msg.stop_reason == ANTHROPIC_STOP[ref.finish_reason]
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == \
        (ref.prompt_tokens, ref.completion_tokens)


def test_anthropic_sdk_stream(ac, llama_reference):
    ref = llama_reference.answer([{"role": "user", "content": QUESTION}], max_tokens=40)
    with ac.messages.stream(model=ROUTE, max_tokens=40, extra_body=GREEDY,
                            messages=[{"role": "user", "content": QUESTION}]) as stream:
        assert stream.response.headers["x-ridethrough-target"] == TARGET
        deltas = [t for t in stream.text_stream]
        msg = stream.get_final_message()
    assert len(deltas) > 1  # streamed piece by piece
    assert "".join(deltas) == msg.content[0].text == ref.text
    assert msg.stop_reason == ANTHROPIC_STOP[ref.finish_reason]
    assert msg.usage.output_tokens == ref.completion_tokens


def test_anthropic_sdk_max_tokens_and_stop_sequences(ac, llama_reference):
    msg = ac.messages.create(
        model=ROUTE, max_tokens=3, extra_body=GREEDY,
        messages=[{"role": "user", "content": "Write a long story about a dragon."}])
    assert msg.stop_reason == "max_tokens"
    assert msg.usage.output_tokens == 3
    assert msg.content[0].text.strip()
    full = llama_reference.answer([{"role": "user", "content": QUESTION}], max_tokens=40).text
    stop, before = stop_inside(full)
    msg = ac.messages.create(model=ROUTE, max_tokens=40, extra_body=GREEDY, stop_sequences=[stop],
                             messages=[{"role": "user", "content": QUESTION}])
    assert msg.content[0].text == before
    # OpenAI's finish_reason "stop" does not say whether a stop sequence or the end of the turn
    # ended the local model's answer, so the translation cannot tell "stop_sequence" apart.
    assert msg.stop_reason in ("stop_sequence", "end_turn")


def test_openai_sdk_json(oc, llama_reference):
    ref = llama_reference.answer([{"role": "user", "content": QUESTION}], max_tokens=40)
    raw = oc.chat.completions.with_raw_response.create(
        model=ROUTE, max_tokens=40, temperature=0,
        messages=[{"role": "user", "content": QUESTION}])
    assert raw.headers["x-ridethrough-target"] == TARGET
    comp = raw.parse()
    assert comp.object == "chat.completion"
    assert comp.choices[0].message.content == ref.text
    assert comp.choices[0].finish_reason == ref.finish_reason
    assert (comp.usage.prompt_tokens, comp.usage.completion_tokens) == \
        (ref.prompt_tokens, ref.completion_tokens)
    assert comp.usage.total_tokens == comp.usage.prompt_tokens + comp.usage.completion_tokens


def test_openai_sdk_stream(oc, llama_reference):
    ref = llama_reference.answer([{"role": "user", "content": QUESTION}], max_tokens=40)
    raw = oc.chat.completions.with_raw_response.create(
        model=ROUTE, max_tokens=40, temperature=0, stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": QUESTION}])
    assert raw.headers["x-ridethrough-target"] == TARGET
    pieces, finish, usage = [], None, None
    for chunk in raw.parse():
        for ch in chunk.choices:
            if ch.delta.content:
                pieces.append(ch.delta.content)
            finish = ch.finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert len(pieces) > 1
    assert "".join(pieces) == ref.text
    assert finish == ref.finish_reason
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == \
        (ref.prompt_tokens, ref.completion_tokens)


def test_same_seed_same_sampled_text(oc):
    story = [{"role": "user", "content": "Write a short poem about the sea."}]
    a, b = (oc.chat.completions.create(model=ROUTE, max_tokens=16, messages=story,
                                       temperature=1.0, seed=4242).choices[0].message.content
            for _ in range(2))
    assert a and a == b


def test_openai_sdk_stream_without_usage_gets_none(oc):
    stream = oc.chat.completions.create(
        model=ROUTE, max_tokens=10, temperature=0, stream=True,
        messages=[{"role": "user", "content": QUESTION}])
    chunks = list(stream)
    assert chunks and all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


def test_client_going_away_mid_stream_stops_the_local_generation(gw, oc):
    provider = gw.gateway.providers["local"]
    last_before = provider.recent[-1] if provider.recent else None
    stream = oc.chat.completions.create(
        model=ROUTE, max_tokens=1500, temperature=0, stream=True,
        messages=[{"role": "user", "content": "Write a very long story about a dragon who "
                                              "learns to bake bread, in many chapters."}])
    got = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            got += 1
            if got == 3:
                break
    stream.close()  # the client hangs up
    deadline = time.monotonic() + 60
    while (provider.queued or not provider.recent or provider.recent[-1] is last_before) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    assert provider.queued == 0
    gen = provider.recent[-1]
    assert gen.finish_reason == "cancelled"   # stopped, not run to its 1500 tokens
    assert gen.completion_tokens < 500
