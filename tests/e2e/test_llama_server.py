"""A real third-party OpenAI-compatible server behind the gateway: llama-cpp-python's own.

``python -m llama_cpp.server`` serving SmolLM2 runs as a separate process on a loopback
port; the gateway routes to it with the ``openai-compatible`` adapter, and both official
SDKs must get real generated answers from it, JSON and streaming. This is the path an
operator takes with Ollama, llama.cpp or vLLM, and unlike our simulator this server has its
own ideas about the wire format (no usage chunk in streams, no ``refusal`` field, …).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread, free_port
from ridethrough.providers.local_model import find_gguf

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or find_gguf() is None
                       or importlib.util.find_spec("llama_cpp.server") is None,
                       reason="llama-cpp-python[server] or SmolLM2 missing"),
]

ROUTE = "llama"
TARGET = "llama-server/smollm2"
QUESTION = "What is the capital of France?"
GREEDY = {"temperature": 0}  # this anthropic SDK has no `temperature` argument any more
START_TIMEOUT_S = 120.0


def server_command(port: int) -> list[str]:
    from ridethrough.providers.local_model import amx_matmul_unsafe

    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(find_gguf()),
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    if amx_matmul_unsafe():
        # ggml's AMX kernel crashes the server on its first multi-token batch on some
        # machines (see local_model.amx_matmul_unsafe); the server's own flag avoids it.
        cmd += ["--n_ubatch", "1"]
    return cmd


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(server_command(port), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n"
                            + log_path.read_text(errors="replace")[-3000:])
            try:
                if httpx.get(base + "/models", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer /v1/models in time:\n"
                            + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.25)
        yield base
        assert proc.poll() is None, "llama_cpp.server died during the tests:\n" + \
            log_path.read_text(errors="replace")[-3000:]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def gw(llama_server, tmp_path_factory):
    cfg = parse_config({
        "server": {"access_log": False, "data_dir": str(tmp_path_factory.mktemp("rt-data"))},
        "providers": {"llama-server": {"kind": "openai-compatible", "base_url": llama_server,
                                       "capabilities": {"context_window": 2048}}},
        "routes": {ROUTE: {"targets": [{"provider": "llama-server", "model": "smollm2"}],
                           "cache": {"mode": "off"}}},
    })
    with GatewayThread(cfg) as g:
        yield g


@pytest.fixture()
def ac(gw):
    return anthropic.Anthropic(base_url=gw.url, api_key="client-key", max_retries=0,
                               timeout=120.0)


@pytest.fixture()
def oc(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="client-key", max_retries=0,
                         timeout=120.0)


@pytest.fixture(scope="module")
def direct(llama_server):
    """The baseline: the server's own answer, asked without the gateway. Its words depend on
    this machine's float kernels; what the gateway returns must be exactly these."""
    r = httpx.post(llama_server + "/chat/completions", timeout=120.0, json={
        "model": "smollm2", "max_tokens": 40, "temperature": 0,
        "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 200
    choice = r.json()["choices"][0]
    assert choice["message"]["content"].strip()
    return choice


ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens"}


def test_openai_sdk_json(oc, direct):
    raw = oc.chat.completions.with_raw_response.create(
        model=ROUTE, max_tokens=40, temperature=0,
        messages=[{"role": "user", "content": QUESTION}])
    assert raw.headers["x-ridethrough-target"] == TARGET
    comp = raw.parse()
    assert comp.choices[0].message.content == direct["message"]["content"]
    assert comp.choices[0].finish_reason == direct["finish_reason"]
    assert comp.usage.completion_tokens >= 1


def test_openai_sdk_stream(oc, direct):
    raw = oc.chat.completions.with_raw_response.create(
        model=ROUTE, max_tokens=40, temperature=0, stream=True,
        messages=[{"role": "user", "content": QUESTION}])
    assert raw.headers["x-ridethrough-target"] == TARGET
    pieces, finish = [], None
    for chunk in raw.parse():
        for ch in chunk.choices:
            if ch.delta.content:
                pieces.append(ch.delta.content)
            finish = ch.finish_reason or finish
    assert len(pieces) > 1
    assert "".join(pieces) == direct["message"]["content"]
    assert finish == direct["finish_reason"]


def test_anthropic_sdk_json(ac, direct):
    raw = ac.messages.with_raw_response.create(
        model=ROUTE, max_tokens=40, extra_body=GREEDY,
        messages=[{"role": "user", "content": QUESTION}])
    assert raw.headers["x-ridethrough-target"] == TARGET
    msg = raw.parse()
    assert msg.content[0].type == "text"
    assert msg.content[0].text == direct["message"]["content"]
    assert msg.stop_reason == ANTHROPIC_STOP[direct["finish_reason"]]
    assert msg.usage.output_tokens >= 1


def test_anthropic_sdk_stream(ac, direct):
    with ac.messages.stream(model=ROUTE, max_tokens=40, extra_body=GREEDY,
                            messages=[{"role": "user", "content": QUESTION}]) as stream:
        assert stream.response.headers["x-ridethrough-target"] == TARGET
        deltas = list(stream.text_stream)
        msg = stream.get_final_message()
    assert len(deltas) > 1
    assert "".join(deltas) == msg.content[0].text == direct["message"]["content"]
    assert msg.stop_reason == ANTHROPIC_STOP[direct["finish_reason"]]
