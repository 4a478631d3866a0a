"""Each simulated outage, observed the way a client of the real provider would see it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator

import anthropic
import httpx
import httpx2  # what both official SDKs are built on (timeouts, raw stream errors)
import openai
import pytest

from ridethrough.simulator import Fault, FaultKind, SimulatorServer

USER = [{"role": "user", "content": "Tell me about tea"}]
SHORT = 0.5  # client timeout for hangs: the test observes a timeout, not a duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# A read timeout inside a stream: anthropic-python up to 2.16 let the transport's own
# ReadTimeout escape; from 2.17 it is wrapped as APITimeoutError. Either is "timed out".
STREAM_READ_TIMEOUT = (httpx2.ReadTimeout, anthropic.APITimeoutError)


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer("sim-f", token_delay_s=0.0, seed=7)
    server.start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture
def claude(sim: SimulatorServer) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0,
                                 timeout=httpx2.Timeout(SHORT, connect=2.0))
    yield client
    client.close()


@pytest.fixture
def gpt(sim: SimulatorServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key="k", max_retries=0,
                           timeout=httpx2.Timeout(SHORT, connect=2.0))
    yield client
    client.close()


def claude_stream(client: anthropic.Anthropic) -> tuple[list[str], str]:
    """Event types seen and text received, until the stream ends or raises."""
    seen: list[str] = []
    with client.messages.stream(model="m", max_tokens=200, messages=USER) as stream:
        for event in stream:
            seen.append(event.type)
        return seen, stream.get_final_message().content[0].text


def gpt_stream(client: openai.OpenAI, received: list[str]) -> list[dict]:
    chunks = []
    for chunk in client.chat.completions.create(model="m", messages=USER, stream=True):
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            received.append(chunk.choices[0].delta.content)
    return chunks


# -- HTTP errors ------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error_type", "exc"), [
    (529, "overloaded_error", anthropic.InternalServerError),
    (500, "api_error", anthropic.InternalServerError),
    (504, "timeout_error", anthropic.InternalServerError),
    (429, "rate_limit_error", anthropic.RateLimitError),
    (402, "billing_error", anthropic.APIStatusError),
    (401, "authentication_error", anthropic.AuthenticationError),
    (403, "permission_error", anthropic.PermissionDeniedError),
    (404, "not_found_error", anthropic.NotFoundError),
    (413, "request_too_large", anthropic.APIStatusError),
])
def test_http_error_in_anthropic_format(sim, claude, status, error_type, exc):
    sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=status))
    with pytest.raises(exc) as info:
        claude.messages.create(model="m", max_tokens=10, messages=USER)
    assert info.value.status_code == status
    assert info.value.body["type"] == "error"
    assert info.value.body["error"]["type"] == error_type
    assert info.value.body["request_id"] == info.value.response.headers["request-id"]
    with pytest.raises(exc):  # a stream fails the same way: before any byte of the body
        claude_stream(claude)


@pytest.mark.parametrize(("fault", "error_type", "code", "exc"), [
    (Fault(FaultKind.HTTP_ERROR, status=503), "server_error", None, openai.InternalServerError),
    (Fault(FaultKind.HTTP_ERROR, status=429), "requests", "rate_limit_exceeded",
     openai.RateLimitError),
    (Fault(FaultKind.HTTP_ERROR, status=429, error_code="insufficient_quota"),
     "insufficient_quota", "insufficient_quota", openai.RateLimitError),
    (Fault(FaultKind.HTTP_ERROR, status=401), "invalid_request_error", "invalid_api_key",
     openai.AuthenticationError),
    (Fault(FaultKind.HTTP_ERROR, status=500, error_type="custom_type", error_code="x1"),
     "custom_type", "x1", openai.InternalServerError),
])
def test_http_error_in_openai_format(sim, gpt, fault, error_type, code, exc):
    sim.set_fault(fault)
    with pytest.raises(exc) as info:
        gpt.chat.completions.create(model="m", messages=USER)
    assert info.value.status_code == fault.status
    assert info.value.type == error_type
    assert info.value.code == code
    with pytest.raises(exc):
        gpt_stream(gpt, [])


def test_retry_after_headers(sim, claude, gpt):
    sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=429, retry_after=2.5))
    with pytest.raises(anthropic.RateLimitError) as a_info:
        claude.messages.create(model="m", max_tokens=10, messages=USER)
    assert a_info.value.response.headers["retry-after"] == "2.5"
    assert a_info.value.response.headers["retry-after-ms"] == "2500"
    assert a_info.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503, retry_after=30))
    with pytest.raises(openai.InternalServerError) as o_info:
        gpt.chat.completions.create(model="m", messages=USER)
    assert o_info.value.response.headers["retry-after"] == "30"


def test_http_error_hits_every_endpoint_of_a_hard_down_provider(sim, claude, gpt):
    sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503))
    with pytest.raises(openai.InternalServerError):
        gpt.models.list()
    with pytest.raises(openai.InternalServerError):
        gpt.embeddings.create(model="e", input="x")
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.count_tokens(model="m", messages=USER)


# -- connection-level faults ------------------------------------------------------------


def test_refuse_closes_the_port_and_reopens_it_on_the_same_port(sim, claude, gpt):
    assert claude.messages.create(model="m", max_tokens=5, messages=USER)  # pools a connection
    port = sim.port
    sim.set_fault(Fault(FaultKind.REFUSE))
    with pytest.raises(anthropic.APIConnectionError) as pooled:
        claude.messages.create(model="m", max_tokens=5, messages=USER)
    with pytest.raises(anthropic.APIConnectionError):
        claude_stream(claude)
    with pytest.raises(openai.APIConnectionError) as fresh:
        gpt.chat.completions.create(model="m", messages=USER)
    for info in (pooled, fresh):
        assert isinstance(info.value.__cause__, httpx2.ConnectError)
        assert "refused" in str(info.value.__cause__).lower()
    sim.clear_faults()
    assert sim.port == port
    assert claude.messages.create(model="m", max_tokens=5, messages=USER).content


def test_refuse_set_and_cleared_over_http_using_the_admin_port(sim, claude):
    httpx.post(sim.base_url + "/_sim/fault", json={"kind": "refuse"}).raise_for_status()
    with pytest.raises(anthropic.APIConnectionError):
        claude.messages.create(model="m", max_tokens=5, messages=USER)
    with pytest.raises(httpx.ConnectError):
        httpx.delete(sim.base_url + "/_sim/fault")  # the main port is down, admin too
    assert httpx.get(sim.admin_url + "/_sim/fault").json()["fault"]["kind"] == "refuse"
    httpx.delete(sim.admin_url + "/_sim/fault").raise_for_status()
    assert claude.messages.create(model="m", max_tokens=5, messages=USER).content
    assert httpx.post(sim.admin_url + "/v1/messages", json={}).status_code == 404


def connect_outcome(port: int, timeout: float = 1.0) -> str:
    """What a bare TCP connect to the main port meets: connected, refused or timeout."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return "connected"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:  # socket.timeout
        return "timeout"


def test_no_accept_makes_connect_time_out_and_reopens_on_the_same_port(sim):
    # Connect timeouts short enough for the hang, far above a loopback handshake.
    claude = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0,
                                 timeout=httpx2.Timeout(5.0, connect=SHORT))
    gpt = openai.OpenAI(base_url=sim.base_url + "/v1", api_key="k", max_retries=0,
                        timeout=httpx2.Timeout(5.0, connect=SHORT))
    assert claude.messages.create(model="m", max_tokens=5, messages=USER)  # pools a connection
    port = sim.port
    sim.set_fault(Fault(FaultKind.NO_ACCEPT))
    assert connect_outcome(port) == "timeout"  # not refused, not connected
    with pytest.raises(anthropic.APITimeoutError) as pooled:  # the pooled one was dropped
        claude.messages.create(model="m", max_tokens=5, messages=USER)
    with pytest.raises(anthropic.APITimeoutError):
        claude_stream(claude)
    with pytest.raises(openai.APITimeoutError) as fresh:
        gpt.chat.completions.create(model="m", messages=USER)
    for info in (pooled, fresh):
        assert isinstance(info.value.__cause__, httpx2.ConnectTimeout)
    with pytest.raises(httpx.ConnectTimeout):
        httpx.get(sim.base_url + "/v1/models", timeout=httpx.Timeout(5.0, connect=SHORT))
    assert sim.stats.total == 1  # only the healthy request reached the simulator
    sim.clear_faults()
    assert sim.port == port
    assert connect_outcome(port) == "connected"
    assert claude.messages.create(model="m", max_tokens=5, messages=USER).content
    assert gpt.chat.completions.create(model="m", messages=USER).choices
    claude.close()
    gpt.close()


def test_no_accept_set_over_http_and_cleared_on_the_admin_port(sim):
    with httpx.Client(base_url=sim.base_url, timeout=httpx.Timeout(5.0, connect=SHORT)) as main:
        assert main.post("/_sim/fault", json={"kind": "no_accept"}).status_code == 200
        # The connection that asked was spared; a request on it is reset, and counted.
        with pytest.raises(httpx.TransportError):
            main.post("/v1/messages", json={"model": "m", "max_tokens": 5, "messages": USER})
        with pytest.raises(httpx.ConnectTimeout):  # every new connection hangs
            main.get("/_sim/fault")
    assert connect_outcome(sim.port) == "timeout"
    with httpx.Client(base_url=sim.admin_url, timeout=5.0) as admin:
        assert admin.get("/_sim/fault").json()["fault"]["kind"] == "no_accept"
        stats = admin.get("/_sim/stats").json()
        assert stats["by_outcome"] == {"no_accept": 1}
        assert stats["fault"]["kind"] == "no_accept"
        assert admin.delete("/_sim/fault").json() == {"fault": None}
        assert httpx.get(sim.base_url + "/v1/models").status_code == 200
        assert admin.post("/_sim/fault", json={"kind": "no_accept"}).status_code == 200
        assert connect_outcome(sim.port) == "timeout"
        assert admin.post("/_sim/fault", json={"kind": "no_accept", "rate": 0.5}).status_code \
            == 400
        assert admin.post("/_sim/reset").json() == {"ok": True}
    assert httpx.get(sim.base_url + "/v1/models").status_code == 200


def test_no_accept_switches_to_and_from_other_faults_on_the_same_port(sim, claude):
    port = sim.port
    sim.set_fault(Fault(FaultKind.NO_ACCEPT))
    assert connect_outcome(port) == "timeout"
    sim.set_fault(Fault(FaultKind.REFUSE))
    assert connect_outcome(port) == "refused"
    sim.set_fault(Fault(FaultKind.NO_ACCEPT))
    assert connect_outcome(port) == "timeout"
    sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503))  # the port is served again
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.create(model="m", max_tokens=5, messages=USER)
    sim.set_fault(Fault(FaultKind.NO_ACCEPT))
    sim.set_fault(Fault(FaultKind.REFUSE))
    sim.clear_faults()
    assert sim.port == port
    assert claude.messages.create(model="m", max_tokens=5, messages=USER).content


def _sockets() -> set[str]:
    return {target for fd in os.listdir("/proc/self/fd")
            if (target := _readlink(f"/proc/self/fd/{fd}")).startswith("socket:")}


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # the fd listdir itself used, already closed
        return ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_a_server_born_silent_opens_when_cleared_and_stop_thread_closes_everything():
    before = _sockets()
    server = SimulatorServer("born-silent", token_delay_s=0.0)
    server.set_fault(Fault(FaultKind.NO_ACCEPT))
    server.start_in_thread()
    try:
        assert server.port != 0
        assert connect_outcome(server.port) == "timeout"
        server.clear_faults()
        assert httpx.get(server.base_url + "/v1/models").status_code == 200
        server.set_fault(Fault(FaultKind.NO_ACCEPT))
        assert connect_outcome(server.port) == "timeout"
    finally:
        server.stop_thread()
    assert connect_outcome(server.port) == "refused"  # the silent listener is gone too
    assert not any(t.name == "simulator-born-silent" for t in threading.enumerate())
    assert _sockets() == before  # listeners, fillers, loop: nothing leaked


@pytest.mark.parametrize("settled", [True, False], ids=["silent", "going-silent"])
def test_async_stop_while_no_accept_closes_the_port(settled):
    async def scenario() -> tuple[int, set]:
        server = SimulatorServer("silent-async", token_delay_s=0.0)
        await server.start()
        if settled:  # the admin API answers once the port is silent
            async with httpx.AsyncClient(base_url=server.admin_url) as admin:
                assert (await admin.post("/_sim/fault", json={"kind": "no_accept"})).is_success
        else:  # on the loop: the port goes silent on a later turn, which stop() pre-empts
            server.set_fault(Fault(FaultKind.NO_ACCEPT))
        await server.stop()
        leftovers = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        return server.port, leftovers

    port, leftovers = asyncio.run(scenario())
    assert leftovers == set()
    assert connect_outcome(port) == "refused"


def test_reset_aborts_the_connection_for_both_apis(sim, claude, gpt):
    sim.set_fault(Fault(FaultKind.RESET))
    with pytest.raises(anthropic.APIConnectionError) as a_info:
        claude.messages.create(model="m", max_tokens=5, messages=USER)
    with pytest.raises(anthropic.APIConnectionError):
        claude_stream(claude)
    with pytest.raises(openai.APIConnectionError) as o_info:
        gpt.chat.completions.create(model="m", messages=USER)
    with pytest.raises(openai.APIConnectionError):
        gpt_stream(gpt, [])
    for info in (a_info, o_info):
        assert "reset" in str(info.value.__cause__).lower()
    assert sim.stats.by_outcome == {"reset": 4}
    assert len(sim.last_requests) == 4  # the request was read before the reset


# -- hangs and stalls -------------------------------------------------------------------


def test_hang_before_headers_times_out_json_and_stream(sim, claude, gpt):
    sim.set_fault(Fault(FaultKind.HANG_BEFORE_HEADERS))
    with pytest.raises(anthropic.APITimeoutError):
        claude.messages.create(model="m", max_tokens=5, messages=USER)
    with pytest.raises(anthropic.APITimeoutError):
        claude_stream(claude)
    with pytest.raises(openai.APITimeoutError):
        gpt.chat.completions.create(model="m", messages=USER)
    with pytest.raises(openai.APITimeoutError):
        gpt_stream(gpt, [])


def test_hang_after_headers_sends_200_then_nothing(sim, claude, gpt):
    sim.set_fault(Fault(FaultKind.HANG_AFTER_HEADERS))
    anthropic_body = {"model": "m", "max_tokens": 5, "messages": USER, "stream": True}
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("POST", sim.base_url + "/v1/messages", timeout=SHORT,
                     json=anthropic_body) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        resp.read()
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("POST", sim.base_url + "/v1/chat/completions", timeout=SHORT,
                     json={"model": "m", "messages": USER}) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/json")
        resp.read()
    with pytest.raises(openai.APITimeoutError):
        gpt_stream(gpt, [])
    with pytest.raises(anthropic.APITimeoutError):
        claude.messages.create(model="m", max_tokens=5, messages=USER)


def test_stall_mid_stream_after_some_tokens(sim, claude, gpt):
    sim.set_fault(Fault(FaultKind.STALL_MID_STREAM, after_tokens=4))
    received: list[str] = []
    with pytest.raises(openai.APITimeoutError):
        gpt_stream(gpt, received)
    assert len(received) == 4 and received[0] == "[sim-f]"
    events: list[str] = []
    with (
        pytest.raises(STREAM_READ_TIMEOUT),
        claude.messages.stream(model="m", max_tokens=200, messages=USER) as stream,
    ):
        events.extend(e.type for e in stream)
    assert events.count("text") == 4
    with pytest.raises(anthropic.APITimeoutError):  # JSON: half a body, then nothing
        claude.messages.create(model="m", max_tokens=200, messages=USER)


# -- in-band errors ---------------------------------------------------------------------


def test_inband_error_before_first_token(sim, claude, gpt):
    sim.set_fault(Fault(FaultKind.INBAND_ERROR_BEFORE_FIRST_TOKEN))
    events: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as a_info,
        claude.messages.stream(model="m", max_tokens=200, messages=USER) as stream,
    ):
        events.extend(e.type for e in stream)
    assert a_info.value.status_code == 200
    assert a_info.value.body["error"]["type"] == "overloaded_error"
    assert events == ["message_start"]
    received: list[str] = []
    with pytest.raises(openai.APIError) as o_info:
        gpt_stream(gpt, received)
    assert received == []
    assert o_info.value.body["type"] == "server_error"


def test_inband_error_after_first_tokens(sim, claude, gpt):
    sim.set_fault(Fault(FaultKind.INBAND_ERROR_AFTER_FIRST_TOKEN, after_tokens=2,
                        error_type="api_error"))
    events: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as a_info,
        claude.messages.stream(model="m", max_tokens=200, messages=USER) as stream,
    ):
        events.extend(e.type for e in stream)
    assert a_info.value.body["error"]["type"] == "api_error"
    assert events.count("text") == 2 and "message_stop" not in events
    received: list[str] = []
    with pytest.raises(openai.APIError):
        gpt_stream(gpt, received)
    assert received == ["[sim-f]", " Here"]


def test_inband_error_without_streaming_is_a_200_with_an_error_body(sim):
    sim.set_fault(Fault(FaultKind.INBAND_ERROR_AFTER_FIRST_TOKEN))
    a = httpx.post(sim.base_url + "/v1/messages",
                   json={"model": "m", "max_tokens": 5, "messages": USER})
    assert a.status_code == 200 and a.json()["error"]["type"] == "overloaded_error"
    o = httpx.post(sim.base_url + "/v1/chat/completions", json={"model": "m", "messages": USER})
    assert o.status_code == 200 and o.json()["error"]["type"] == "server_error"


# -- truncated, malformed, slow ---------------------------------------------------------


def test_truncated_stream_ends_cleanly_without_its_terminator(sim, claude, gpt):
    sim.set_fault(Fault(FaultKind.TRUNCATED, after_tokens=3))
    events, text = claude_stream(claude)  # the SDK does not notice: that is the danger
    assert "message_stop" not in events and "message_delta" not in events
    assert text == "[sim-f] Here is"
    received: list[str] = []
    chunks = gpt_stream(gpt, received)
    assert received == ["[sim-f]", " Here", " is"]
    assert all(c.choices[0].finish_reason is None for c in chunks)
    with httpx.stream("POST", sim.base_url + "/v1/chat/completions",
                      json={"model": "m", "messages": USER, "stream": True}) as resp:
        assert b"[DONE]" not in resp.read()


def test_truncated_json_body_is_cut_short(sim, claude):
    sim.set_fault(Fault(FaultKind.TRUNCATED))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(sim.base_url + "/v1/messages",
                   json={"model": "m", "max_tokens": 5, "messages": USER})
    with pytest.raises(anthropic.APIConnectionError):
        claude.messages.create(model="m", max_tokens=5, messages=USER)


def test_malformed_json_in_body_and_stream(sim, claude, gpt):
    sim.set_fault(Fault(FaultKind.MALFORMED_JSON, after_tokens=1))
    with pytest.raises(ValueError):
        claude.messages.create(model="m", max_tokens=5, messages=USER)
    with pytest.raises(ValueError):
        gpt.chat.completions.create(model="m", messages=USER)
    with pytest.raises(ValueError):
        claude_stream(claude)
    received: list[str] = []
    with pytest.raises(ValueError):
        gpt_stream(gpt, received)
    assert received == ["[sim-f]"]


def test_slow_tokens_are_slower_than_a_read_timeout_but_complete(sim):
    sim.set_fault(Fault(FaultKind.SLOW_TOKENS, token_delay_s=0.3))
    slow_client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0,
                                      timeout=httpx2.Timeout(0.1, connect=2.0))
    with (
        pytest.raises(STREAM_READ_TIMEOUT),
        slow_client.messages.stream(model="m", max_tokens=5, messages=USER) as stream,
    ):
        list(stream)
    sim.set_fault(Fault(FaultKind.SLOW_TOKENS, token_delay_s=0.01))
    patient = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
    with patient.messages.stream(model="m", max_tokens=5, messages=USER) as stream:
        assert stream.get_final_message().usage.output_tokens == 5


# -- who is hit: rate, ramp, partial outages --------------------------------------------


def _outcomes(sim: SimulatorServer, n: int, model: str = "m") -> list[int]:
    with httpx.Client(base_url=sim.base_url) as client:
        return [client.post("/v1/messages", json={
            "model": model, "max_tokens": 2, "messages": USER}).status_code for _ in range(n)]


def test_intermittent_rate_is_seeded_and_repeatable(sim):
    sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=529, rate=0.3))
    first = _outcomes(sim, 60)
    sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=529, rate=0.3))  # re-seeds the draw
    second = _outcomes(sim, 60)
    assert first == second
    assert set(first) == {200, 529}
    assert 6 <= first.count(529) <= 30
    assert sim.stats.by_outcome["http_error"] == 2 * first.count(529)


def test_error_rate_ramps_with_the_injected_clock():
    clock = FakeClock()
    server = SimulatorServer("ramp", token_delay_s=0.0, clock=clock, seed=3)
    server.start_in_thread()
    try:
        server.set_fault(Fault(FaultKind.HTTP_ERROR, status=503, rate=0.0, ramp_to=1.0,
                               ramp_seconds=1200))
        assert _outcomes(server, 20).count(503) == 0
        clock.now += 600
        halfway = _outcomes(server, 40).count(503)
        assert 8 <= halfway <= 32
        clock.now += 600
        assert _outcomes(server, 20).count(503) == 20
        clock.now += 10_000
        assert _outcomes(server, 5).count(503) == 5
    finally:
        server.stop_thread()


def test_partial_outage_by_model_and_by_format(sim, claude, gpt):
    sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=529, models=["claude-down"]))
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.create(model="claude-down", max_tokens=5, messages=USER)
    assert claude.messages.create(model="claude-up", max_tokens=5, messages=USER).content
    sim.set_fault(Fault(FaultKind.INBAND_ERROR_BEFORE_FIRST_TOKEN, formats=["openai"]))
    with pytest.raises(openai.APIError):
        gpt_stream(gpt, [])
    assert claude_stream(claude)[1].startswith("[sim-f]")
    assert sim.stats.by_model == {"claude-down": 1, "claude-up": 1, "m": 2}


# -- admin API --------------------------------------------------------------------------


def test_admin_endpoints_switch_faults_and_report_stats(sim, claude):
    admin = httpx.Client(base_url=sim.base_url)
    fault = {"kind": "http_error", "status": 529, "retry_after": 1, "models": ["claude-x"]}
    created = admin.post("/_sim/fault", json=fault)
    assert created.status_code == 200
    assert Fault.from_dict(created.json()["fault"]) == Fault.from_dict(fault)
    assert sim.fault == Fault(FaultKind.HTTP_ERROR, status=529, retry_after=1, models=["claude-x"])
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.create(model="claude-x", max_tokens=5, messages=USER)
    stats = admin.get("/_sim/stats").json()
    assert stats["total"] == 1 and stats["by_outcome"] == {"http_error": 1}
    assert stats["fault"]["kind"] == "http_error"
    assert admin.post("/_sim/fault", json={"kind": "nope"}).status_code == 400
    assert admin.post("/_sim/fault", json={"kind": "reset", "colour": "red"}).status_code == 400
    assert admin.delete("/_sim/fault").json() == {"fault": None}
    assert claude.messages.create(model="claude-x", max_tokens=5, messages=USER).content
    assert admin.post("/_sim/reset").json() == {"ok": True}
    assert admin.get("/_sim/stats").json()["total"] == 0
    assert len(sim.last_requests) == 0
    admin.close()


# -- shutdown with hung connections -----------------------------------------------------


def test_stop_thread_drops_hung_connections_instead_of_waiting():
    server = SimulatorServer("hung", token_delay_s=0.0)
    server.start_in_thread()
    server.set_fault(Fault(FaultKind.HANG_BEFORE_HEADERS))
    patient = anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0,
                                  timeout=30.0)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            patient.messages.create(model="m", max_tokens=5, messages=USER)
        except anthropic.APIError as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    for _ in range(200):
        if server.stats.total:
            break
        threading.Event().wait(0.01)
    server.stop_thread()
    worker.join(5)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], anthropic.APIConnectionError)
    assert not isinstance(errors[0], anthropic.APITimeoutError)


def test_async_stop_with_hung_streams_leaves_no_tasks():
    async def scenario() -> tuple[list[str], set]:
        server = SimulatorServer("hung-async", token_delay_s=0.0)
        await server.start()
        server.set_fault(Fault(FaultKind.STALL_MID_STREAM, after_tokens=1))
        client = openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="k",
                                    max_retries=0, timeout=30.0)
        outcomes: list[str] = []

        async def consume() -> None:
            try:
                stream = await client.chat.completions.create(
                    model="m", messages=USER, stream=True)
                async for _ in stream:
                    pass
                outcomes.append("ended")
            except openai.APIConnectionError:
                outcomes.append("connection_error")

        consumers = [asyncio.create_task(consume()) for _ in range(3)]
        while server.stats.total < 3:
            await asyncio.sleep(0.01)
        await server.stop()
        await asyncio.gather(*consumers)
        await client.close()
        leftovers = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        return outcomes, leftovers

    outcomes, leftovers = asyncio.run(scenario())
    assert outcomes == ["connection_error"] * 3
    assert leftovers == set()


def test_fault_round_trips_through_json():
    fault = Fault(FaultKind.SLOW_TOKENS, token_delay_s=0.25, rate=0.5, ramp_to=0.9,
                  ramp_seconds=60, models=["a"], formats=["anthropic"])
    assert Fault.from_dict(json.loads(json.dumps(fault.to_dict()))) == fault
    with pytest.raises(ValueError):
        Fault.from_dict({"kind": "refuse", "models": ["a"]})
    assert Fault.from_dict({"kind": "no_accept"}) == Fault(FaultKind.NO_ACCEPT)
    for field, value in (("models", ["a"]), ("formats", ["openai"]), ("rate", 0.5),
                         ("ramp_to", 1.0)):
        with pytest.raises(ValueError):
            Fault.from_dict({"kind": "no_accept", field: value})
    with pytest.raises(ValueError):
        Fault(FaultKind.HTTP_ERROR, rate=1.5)
    with pytest.raises(ValueError):
        Fault.from_dict({"kind": "http_error", "formats": ["gemini"]})


def test_a_server_started_while_refusing_has_a_port_and_opens_it_when_cleared():
    server = SimulatorServer("born-down", token_delay_s=0.0)
    server.set_fault(Fault(FaultKind.REFUSE))
    server.start_in_thread()
    try:
        assert server.port != 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.base_url + "/v1/models")
        server.clear_faults()
        assert httpx.get(server.base_url + "/v1/models").status_code == 200
    finally:
        server.stop_thread()
