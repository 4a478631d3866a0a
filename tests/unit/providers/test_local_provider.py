"""The local provider: real SmolLM2 generations through ``LocalProvider`` itself.

Most tests load the real model (marked ``local_model``, once per module) and drive the
provider the way the executor does: ``complete`` / ``open_stream`` + ``read`` / ``aclose``.
Timing is never asserted; where "while it is still generating" matters, the tests look at
the generation job itself. The pure helpers (wire format, stop-sequence hold-back, UTF-8
boundaries) and the unavailable paths need no model.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import orjson
import pytest

from ridethrough.config import Capabilities, ProviderConfig, Timeouts
from ridethrough.errors import ErrorClass, UpstreamError
from ridethrough.protocols.sse import SSEParser, encode_data
from ridethrough.providers.base import UpstreamCall
from ridethrough.providers.local import LocalProvider, LocalStream
from ridethrough.providers.local_engine import (
    SamplingParams,
    held_back,
    normalize_messages,
    utf8_boundary,
)
from ridethrough.providers.local_model import find_gguf
from ridethrough.providers.local_wire import ChunkWriter, parse_request
from ridethrough.routing.clock import monotonic
from ridethrough.routing.deadline import Deadline
from support.stops import stop_inside

HAVE_MODEL = importlib.util.find_spec("llama_cpp") is not None and find_gguf() is not None
needs_model = [pytest.mark.local_model,
               pytest.mark.skipif(not HAVE_MODEL, reason="llama-cpp-python or SmolLM2 missing")]

CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
LONG = [{"role": "user", "content": "Write a very long story about a dragon who learns to "
                                    "bake bread. Use many chapters and many details."}]
MODEL = "smollm2-135m-instruct"


def call(body: dict[str, Any], *, stream: bool = False, deadline_s: float = 120.0,
         total: float = 600.0) -> UpstreamCall:
    body = {"model": MODEL, **body}
    if stream:
        body["stream"] = True
    return UpstreamCall(model=MODEL, body=orjson.dumps(body), stream=stream,
                        deadline=Deadline.start(monotonic, deadline_s),
                        timeouts=Timeouts(total=total))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def provider():
    if not HAVE_MODEL:
        pytest.skip("llama-cpp-python or SmolLM2 missing")
    p = LocalProvider("local", ProviderConfig(kind="local", n_ctx=2048, max_queue=1))
    run(p.start())
    assert p.unavailable_reason is None, p.unavailable_reason
    yield p
    run(p.close())


async def read_all(stream: LocalStream, timeout: float = 60.0) -> list[Any]:
    events = []
    while True:
        batch = await stream.read(timeout)
        if batch is None:
            return events
        events.extend(batch)


async def read_until_content(stream: LocalStream, pieces: int, timeout: float = 60.0) -> str:
    text = ""
    seen = 0
    while seen < pieces:
        batch = await stream.read(timeout)
        assert batch is not None, "stream ended early"
        for ev in batch:
            if ev.is_done:
                continue
            for ch in ev.json()["choices"]:
                if ch["delta"].get("content"):
                    text += ch["delta"]["content"]
                    seen += 1
    return text


async def wait_idle(p: LocalProvider, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while p.queued:
            await asyncio.sleep(0.01)


def stream_text(events: list[Any]) -> str:
    return "".join(ch["delta"].get("content") or "" for ev in events if not ev.is_done
                   for ch in ev.json()["choices"])


# -- JSON answers -----------------------------------------------------------------------------


class TestComplete:
    pytestmark = needs_model

    def test_answers_a_proper_chat_completion(self, provider, llama_reference):
        ref = llama_reference.answer(CAPITAL, max_tokens=40)
        resp = run(provider.complete(call({"messages": CAPITAL, "max_tokens": 40,
                                           "temperature": 0})))
        assert resp.status == 200
        assert resp.request_id and resp.request_id.startswith("local-")
        body = orjson.loads(resp.body)
        assert body["object"] == "chat.completion"
        assert body["id"].startswith("chatcmpl-")
        assert body["model"] == MODEL
        choice = body["choices"][0]
        assert choice["message"]["role"] == "assistant"
        # Exactly what llama.cpp's own pipeline answers on this machine (never fixed words).
        assert ref.text.strip() and choice["message"]["content"] == ref.text
        assert choice["finish_reason"] == ref.finish_reason
        usage = body["usage"]
        # The prompt as the chat template renders it, counted by llama.cpp's tokenizer.
        assert usage["prompt_tokens"] == len(provider.engine.prompt_tokens(CAPITAL)) \
            == ref.prompt_tokens
        assert usage["completion_tokens"] == ref.completion_tokens
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert provider.queued == 0

    def test_max_tokens_cuts_the_answer(self, provider):
        body = orjson.loads(run(provider.complete(call(
            {"messages": LONG, "max_tokens": 5, "temperature": 0}))).body)
        assert body["choices"][0]["finish_reason"] == "length"
        assert body["usage"]["completion_tokens"] == 5
        assert body["choices"][0]["message"]["content"].strip()

    def test_max_completion_tokens_wins_over_max_tokens(self, provider):
        body = orjson.loads(run(provider.complete(call(
            {"messages": LONG, "max_tokens": 50, "max_completion_tokens": 3,
             "temperature": 0}))).body)
        assert body["usage"]["completion_tokens"] == 3
        assert body["choices"][0]["finish_reason"] == "length"

    def test_stop_sequence_ends_the_answer_before_it(self, provider, llama_reference):
        full = orjson.loads(run(provider.complete(call(
            {"messages": CAPITAL, "max_tokens": 40, "temperature": 0}))).body)
        text = full["choices"][0]["message"]["content"]
        stop, before = stop_inside(text)
        body = orjson.loads(run(provider.complete(call(
            {"messages": CAPITAL, "max_tokens": 40, "temperature": 0, "stop": [stop]}))).body)
        assert body["choices"][0]["message"]["content"] == before
        assert llama_reference.answer(CAPITAL, max_tokens=40, stop=[stop]).text == before
        assert body["choices"][0]["finish_reason"] == "stop"

    def test_same_seed_same_sampled_answer(self, provider):
        req = {"messages": LONG, "max_tokens": 20, "temperature": 1.0, "seed": 1234}
        a = orjson.loads(run(provider.complete(call(req))).body)
        b = orjson.loads(run(provider.complete(call(req))).body)
        assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]

    def test_deadline_stops_a_long_generation(self, provider):
        with pytest.raises(UpstreamError) as ei:
            run(provider.complete(call({"messages": LONG, "max_tokens": 1500, "temperature": 0},
                                       deadline_s=0.3)))
        assert ei.value.error_class is ErrorClass.TIMEOUT
        assert ei.value.target == "local"
        run(wait_idle(provider))  # the worker gave the model back instead of generating on

    def test_prompt_over_the_context_window_is_too_large(self, provider):
        huge = [{"role": "user", "content": "dragon bread " * 2000}]
        with pytest.raises(UpstreamError) as ei:
            run(provider.complete(call({"messages": huge, "max_tokens": 5})))
        assert ei.value.error_class is ErrorClass.TOO_LARGE
        assert provider.queued == 0

    def test_invalid_request_is_a_client_error_with_an_openai_body(self, provider):
        with pytest.raises(UpstreamError) as ei:
            run(provider.complete(call({"messages": CAPITAL, "n": 2})))
        assert ei.value.error_class is ErrorClass.CLIENT
        assert ei.value.upstream_status == 400
        assert orjson.loads(ei.value.body)["error"]["param"] == "n"


# -- streams ----------------------------------------------------------------------------------


class TestStream:
    pytestmark = needs_model

    def test_chunks_are_proper_and_byte_exact(self, provider, llama_reference):
        ref = llama_reference.answer(CAPITAL, max_tokens=40)

        async def go():
            s = await provider.open_stream(call(
                {"messages": CAPITAL, "max_tokens": 40, "temperature": 0,
                 "stream_options": {"include_usage": True}}, stream=True))
            assert s.request_id and s.request_id.startswith("local-")
            return await read_all(s)

        events = run(go())
        assert events[-1].is_done
        chunks = [ev.json() for ev in events[:-1]]
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert len({c["id"] for c in chunks}) == 1
        assert all(c["model"] == MODEL for c in chunks)
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
        assert len(contents) > 1 and all(contents)  # token by token, not one lump
        assert "".join(contents) == ref.text
        assert chunks[-2]["choices"][0]["finish_reason"] == ref.finish_reason
        assert chunks[-1]["choices"] == []
        usage = chunks[-1]["usage"]
        assert usage["prompt_tokens"] == len(provider.engine.prompt_tokens(CAPITAL))
        assert usage["completion_tokens"] == ref.completion_tokens >= len(contents) - 1
        # Raw bytes are what passthrough forwards: they must re-parse to the same frames.
        raw = b"".join(ev.raw for ev in events)
        assert raw.endswith(encode_data("[DONE]"))
        reparsed = SSEParser().feed(raw)
        assert [e.data for e in reparsed] == [e.data for e in events]

    def test_stream_and_json_agree_and_usage_only_when_asked(self, provider):
        req = {"messages": CAPITAL, "max_tokens": 40, "temperature": 0}
        json_text = orjson.loads(run(provider.complete(call(req))).body)[
            "choices"][0]["message"]["content"]

        async def go():
            return await read_all(await provider.open_stream(call(req, stream=True)))

        events = run(go())
        assert stream_text(events) == json_text
        assert not any(not ev.is_done and ev.json().get("usage") for ev in events)
        assert all(not ev.is_done and ev.json()["choices"] for ev in events[:-1])

    def test_stop_and_max_tokens_in_a_stream(self, provider, llama_reference):
        async def go(body):
            return await read_all(await provider.open_stream(call(body, stream=True)))

        stop, before = stop_inside(llama_reference.answer(CAPITAL, max_tokens=40).text)
        events = run(go({"messages": CAPITAL, "max_tokens": 40, "temperature": 0,
                         "stop": stop}))
        assert stream_text(events) == before
        events = run(go({"messages": LONG, "max_tokens": 4, "temperature": 0,
                         "stream_options": {"include_usage": True}}))
        assert events[-3].json()["choices"][0]["finish_reason"] == "length"
        assert events[-2].json()["usage"]["completion_tokens"] == 4

    def test_text_surfaces_while_the_model_is_still_generating(self, provider):
        async def go():
            s = await provider.open_stream(call(
                {"messages": LONG, "max_tokens": 400, "temperature": 0}, stream=True))
            first = await read_until_content(s, 1)
            still_running = not s.job.done()
            await s.aclose()
            await asyncio.wrap_future(s.job)
            return first, still_running

        first, still_running = run(go())
        assert first
        assert still_running

    def test_aclose_mid_stream_stops_the_generation(self, provider, llama_reference):
        async def go():
            s = await provider.open_stream(call(
                {"messages": LONG, "max_tokens": 1500, "temperature": 0}, stream=True))
            await read_until_content(s, 3)
            await s.aclose()
            gen = await asyncio.wait_for(asyncio.wrap_future(s.job), 60)
            after = await s.read(1.0)
            return gen, after

        gen, after = run(go())
        assert gen.finish_reason == "cancelled"
        assert gen.completion_tokens < 50      # not the 1500 it was allowed
        assert after is None
        assert provider.queued == 0
        # and the model is free for the next request
        body = orjson.loads(run(provider.complete(call(
            {"messages": CAPITAL, "max_tokens": 20, "temperature": 0}))).body)
        assert body["choices"][0]["message"]["content"] == \
            llama_reference.answer(CAPITAL, max_tokens=20).text

    def test_read_times_out_as_idle_timeout_while_queued(self, provider):
        async def go():
            a = await provider.open_stream(call(
                {"messages": LONG, "max_tokens": 1500, "temperature": 0}, stream=True))
            await read_until_content(a, 1)
            b = await provider.open_stream(call(
                {"messages": CAPITAL, "max_tokens": 10, "temperature": 0}, stream=True))
            await b.read(5)  # the role chunk
            try:
                with pytest.raises(UpstreamError) as ei:
                    await b.read(0.3)  # b waits behind a, which is far from done
                return ei.value, a.job.done()
            finally:
                await b.aclose()
                await a.aclose()
                await wait_idle(provider)

        err, a_done = run(go())
        assert err.error_class is ErrorClass.IDLE_TIMEOUT
        assert not a_done


# -- the queue bound --------------------------------------------------------------------------


class TestSaturation:
    pytestmark = needs_model

    def test_full_queue_is_local_saturation_at_once_then_queued_work_runs(self, provider,
                                                                          llama_reference):
        assert provider.cfg.max_queue == 1

        async def go():
            a = await provider.open_stream(call(
                {"messages": LONG, "max_tokens": 1500, "temperature": 0}, stream=True))
            await read_until_content(a, 1)                      # a is generating
            b = await provider.open_stream(call(
                {"messages": CAPITAL, "max_tokens": 40, "temperature": 0}, stream=True))
            with pytest.raises(UpstreamError) as ei:             # no room left to wait
                await provider.complete(call({"messages": CAPITAL, "max_tokens": 5}))
            rejected_while_a_runs = not a.job.done()
            await a.aclose()
            b_events = await read_all(b)                         # b ran once a stopped
            return ei.value, rejected_while_a_runs, b_events

        err, rejected_while_a_runs, b_events = run(go())
        assert err.error_class is ErrorClass.LOCAL_SATURATION
        assert err.target == "local"
        assert not err.action.counts_for_breaker
        assert rejected_while_a_runs
        assert stream_text(b_events) == llama_reference.answer(CAPITAL, max_tokens=40).text
        assert provider.queued == 0

    def test_concurrent_completes_beyond_the_bound_are_refused(self, provider):
        async def go():
            async def one():
                return await provider.complete(call(
                    {"messages": LONG, "max_tokens": 60, "temperature": 0}))
            return await asyncio.gather(*(one() for _ in range(4)), return_exceptions=True)

        results = run(go())
        ok = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, UpstreamError)
                   and r.error_class is ErrorClass.LOCAL_SATURATION]
        assert len(ok) >= 2                 # one generating + one waiting always fit
        assert len(ok) + len(refused) == 4  # nothing else went wrong
        assert refused                      # four at once cannot all fit
        assert all(orjson.loads(r.body)["choices"][0]["message"]["content"] for r in ok)

    def test_queued_request_dropped_by_aclose_never_runs(self, provider):
        async def go():
            a = await provider.open_stream(call(
                {"messages": LONG, "max_tokens": 1500, "temperature": 0}, stream=True))
            await read_until_content(a, 1)
            b = await provider.open_stream(call(
                {"messages": CAPITAL, "max_tokens": 10}, stream=True))
            await b.aclose()
            await a.aclose()
            await wait_idle(provider)
            return b.job

        job = run(go())
        assert job.cancelled()
        assert provider.queued == 0


# -- declared facts and helpers needing the model ---------------------------------------------


class TestModelFacts:
    pytestmark = needs_model

    def test_capabilities(self, provider):
        caps = provider.capabilities(MODEL)
        assert (caps.tools, caps.images, caps.streaming, caps.json_mode) == \
            (False, False, True, False)
        assert caps.context_window == 2048
        p = LocalProvider("l2", ProviderConfig(kind="local", n_ctx=1024,
                                               capabilities=Capabilities(context_window=900)))
        assert p.capabilities(MODEL).context_window == 900

    def test_count_tokens_and_fits(self, provider):
        assert provider.count_tokens("") == 0
        one = provider.count_tokens("The capital of France is Paris.")
        assert 3 <= one <= 12
        assert provider.count_tokens("The capital of France is Paris. " * 10) >= 9 * one
        assert provider.fits(CAPITAL, 100)
        assert not provider.fits(CAPITAL, 2048)
        assert provider.fits("hello", 2000)
        assert not provider.fits("dragon bread " * 2000, 1)

    def test_forward_is_a_404(self, provider):
        resp = run(provider.forward("POST", "/v1/embeddings", {}, b"{}", 5.0))
        assert resp.status == 404
        assert orjson.loads(resp.body)["error"]["code"] == "unknown_url"

    def test_renders_with_the_gguf_chat_template(self, provider):
        prompt, _ = provider.engine.render(CAPITAL)
        assert provider.engine.template_source == "gguf"
        assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in prompt
        assert prompt.endswith("<|im_start|>assistant\n")


# -- without a model --------------------------------------------------------------------------


def test_missing_model_file_is_unavailable_not_a_crash(tmp_path):
    missing = tmp_path / "nope.gguf"
    p = LocalProvider("local", ProviderConfig(kind="local", model_path=str(missing)))
    assert p.unavailable_reason
    run(p.start())  # must not raise
    assert p.unavailable_reason
    if importlib.util.find_spec("llama_cpp") is not None:
        assert str(missing) in p.unavailable_reason
    with pytest.raises(UpstreamError) as ei:
        run(p.complete(call({"messages": CAPITAL})))
    assert ei.value.error_class is ErrorClass.UNAVAILABLE
    run(p.close())


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs llama_cpp")
def test_unloadable_model_file_is_unavailable_not_a_crash(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    p = LocalProvider("local", ProviderConfig(kind="local", model_path=str(bad)))
    assert p.unavailable_reason is None
    run(p.start())
    assert p.unavailable_reason and "bad.gguf" in p.unavailable_reason
    with pytest.raises(UpstreamError) as ei:
        run(p.open_stream(call({"messages": CAPITAL}, stream=True)))
    assert ei.value.error_class is ErrorClass.UNAVAILABLE


def test_parse_request_maps_openai_fields():
    req = parse_request(orjson.dumps({
        "model": "m", "messages": CAPITAL, "max_tokens": 9, "temperature": 0.5, "top_p": 0.5,
        "stop": "END", "seed": 7, "stream_options": {"include_usage": True}}))
    assert req.params == SamplingParams(max_tokens=9, temperature=0.5, top_p=0.5,
                                        stop=("END",), seed=7)
    assert req.include_usage
    assert parse_request(orjson.dumps({"messages": CAPITAL})).params.max_tokens is None
    for bad in ({"messages": []}, {"messages": CAPITAL, "temperature": 3},
                {"messages": CAPITAL, "max_tokens": 0}, {"messages": CAPITAL, "stop": [1]}):
        with pytest.raises(UpstreamError) as ei:
            parse_request(orjson.dumps(bad))
        assert ei.value.error_class is ErrorClass.CLIENT
    with pytest.raises(UpstreamError):
        parse_request(b"{not json")


def test_chunk_writer_shapes():
    w = ChunkWriter("m", include_usage=True, completion_id="chatcmpl-x", created=1)
    assert w.role()["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert w.content("hi")["usage"] is None
    assert w.finish("length")["choices"][0]["finish_reason"] == "length"
    u = w.usage(3, 4)
    assert u["choices"] == [] and u["usage"]["total_tokens"] == 7
    assert "usage" not in ChunkWriter("m", include_usage=False).content("hi")


def test_normalize_messages_for_chat_templates():
    out = normalize_messages([
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"},
                                     {"type": "image_url", "image_url": {"url": "x"}},
                                     {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": None},
    ])
    assert out == [{"role": "system", "content": "be brief"},
                   {"role": "user", "content": "a\nb"},
                   {"role": "assistant", "content": ""}]


def test_held_back_keeps_a_possible_stop_prefix():
    assert held_back(b"The capital i", [b" is"]) == 2
    assert held_back(b"The capital ", [b" is"]) == 1
    assert held_back(b"The capital x", [b" is"]) == 0
    assert held_back(b"abc<|im_", [b"<|im_end|>", b"c<"]) == 5


def test_utf8_boundary_never_splits_a_character():
    s = "café 日本".encode()
    for end in range(len(s) + 1):
        cut = utf8_boundary(s, end)
        assert cut <= end
        s[:cut].decode("utf-8")  # never raises
    assert utf8_boundary(s, len(s)) == len(s)
    assert utf8_boundary("é".encode(), 1) == 0
