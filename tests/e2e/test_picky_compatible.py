"""An OpenAI-compatible server that refuses fields it does not know, as some older
self-hosted servers do: ridethrough's own ``stream_options`` (added so it can count a
stream's usage) must not turn into a 400 for the caller.

The server is a tiny aiohttp app on loopback; the caller is the official openai SDK. It
refuses in the three shapes such servers use: OpenAI's and Azure's "Unrecognized request
argument" with ``param: null`` (the field only in the message), ``error.param`` naming one
field, and FastAPI/pydantic's 422 listing every field in ``detail[].loc``. ridethrough reads
the structure, never the message's wording: where it names no field, the call is made again
without ours, and only a success proves ours was refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web

from ridethrough.config import parse_config
from ridethrough.harness import AppThread


class PickyServer:
    """Streams an answer unless the body carries a field outside its known list."""

    def __init__(self, style: str) -> None:
        # "unnamed": 400, param null; "named": 400 with error.param; "pydantic": 422, detail[].loc
        self.style = style
        self.bodies: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self.server = AppThread(app, shutdown_timeout=0.5)

    KNOWN = {"model", "messages", "stream", "max_tokens", "temperature"}

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.bodies.append(body)
        unknown = sorted(set(body) - self.KNOWN)
        if unknown and self.style == "pydantic":
            return web.json_response(status=422, data={"detail": [
                {"type": "extra_forbidden", "loc": ["body", field], "msg": "Extra inputs are not permitted",
                 "input": body[field]} for field in unknown]})
        if unknown:
            return web.json_response(status=400, data={"error": {
                "message": f"Unrecognized request argument supplied: {', '.join(unknown)}",
                "type": "invalid_request_error",
                "param": unknown[0] if self.style == "named" else None, "code": None}})
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-p", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "picky but fine"}}],
                "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}})
        resp = web.StreamResponse(status=200, headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for piece in ("picky ", "but ", "fine"):
            chunk = {"id": "chatcmpl-p", "object": "chat.completion.chunk", "created": 1,
                     "model": body["model"], "choices": [{"index": 0, "delta": {"content": piece},
                                                          "finish_reason": None}]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        last = {"id": "chatcmpl-p", "object": "chat.completion.chunk", "created": 1,
                "model": body["model"], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await resp.write(b"data: " + orjson.dumps(last) + b"\n\ndata: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def __enter__(self) -> PickyServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


@pytest.fixture(params=["unnamed", "named", "pydantic"])
def picky(request: pytest.FixtureRequest) -> Iterator[PickyServer]:
    with PickyServer(request.param) as server:
        yield server


@pytest.fixture()
def gateway(picky, start_gateway):
    cfg = parse_config({
        "server": {"access_log": False},
        "providers": {"picky": {"kind": "openai-compatible",
                                "base_url": f"{picky.server.url}/v1"}},
        "routes": {"assistant": {"targets": [{"provider": "picky", "model": "local-llm"}]}},
    })
    return start_gateway(cfg)


def _stream_text(client: openai.OpenAI, **extra: Any) -> str:
    stream = client.chat.completions.create(
        model="assistant", max_tokens=20, stream=True,
        messages=[{"role": "user", "content": "hi"}], **extra)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_a_stream_is_served_although_the_server_refuses_the_added_stream_options(gateway, picky):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0, timeout=30)
    assert _stream_text(client) == "picky but fine"
    # asked once with the field, refused, asked again without it
    assert ["stream_options" in b for b in picky.bodies] == [True, False]
    # the server is remembered: the next stream goes without the field at once
    assert _stream_text(client) == "picky but fine"
    assert ["stream_options" in b for b in picky.bodies] == [True, False, False]


def test_the_callers_own_unknown_field_is_still_the_callers_400(gateway, picky):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0, timeout=30)
    with pytest.raises(openai.APIStatusError) as info:
        _stream_text(client, extra_body={"reasoning_effort_x": "high"})
    # the caller sees the refusal of its own field, with the server's own status
    assert info.value.status_code == (422 if picky.style == "pydantic" else 400)
    assert "reasoning_effort_x" in info.value.response.text
    if picky.style == "named":
        # error.param names the caller's field: the server's answer is returned at once, as
        # it said it (its message lists every unknown field), nothing retried
        assert info.value.body["param"] == "reasoning_effort_x"
        assert ["stream_options" in b for b in picky.bodies] == [True]
    else:
        # named both, or none: asked again without ours, refused again for the caller's own
        # field — and that second answer, about the request as the caller sent it, is returned
        assert "stream_options" not in info.value.response.text
        assert ["stream_options" in b for b in picky.bodies] == [True, False]
    # A refusal not proven to be ours is not remembered: the next stream tries the field
    # first again (and then learns).
    before = len(picky.bodies)
    assert _stream_text(client) == "picky but fine"
    assert ["stream_options" in b for b in picky.bodies[before:]] == [True, False]
    assert _stream_text(client) == "picky but fine"
    assert ["stream_options" in b for b in picky.bodies[before:]] == [True, False, False]


def test_a_non_streaming_call_is_untouched(gateway, picky):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0, timeout=30)
    out = client.chat.completions.create(model="assistant", max_tokens=20,
                                         messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "picky but fine"
    assert len(picky.bodies) == 1 and "stream_options" not in picky.bodies[0]


def test_an_anthropic_stream_translated_to_the_picky_server_is_served(gateway, picky):
    import anthropic

    client = anthropic.Anthropic(base_url=gateway.url, api_key="k", max_retries=0, timeout=30)
    with client.messages.stream(model="assistant", max_tokens=20,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == "picky but fine" and message.stop_reason == "end_turn"
    assert ["stream_options" in b for b in picky.bodies] == [True, False]
