"""Streams once a target answered (routing/streams.py): the commit point, the end of a stream
by meaning, malformed frames, the in-band error, and mid-stream continuation — driven by
scripted providers on a FakeClock (no sockets, no sleeping).
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ridethrough.protocols.sse import SSEParser
from ridethrough.routing.breaker import State
from ridethrough.routing.streams import StreamResult
from support.scripted import (
    END,
    OVERLOADED,
    START,
    TOKEN,
    C,
    Stall,
    World,
    drain,
    err,
    outcomes,
)

# -- streams and the commit point --------------------------------------------------------------


def test_an_in_band_error_before_the_first_token_is_a_silent_failover():
    w = World(budget=(0.0, 0.0))
    a = w.target("a", "anthropic", [[START, OVERLOADED]])
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    result = w.run(req, [a, b])
    assert isinstance(result, StreamResult) and result.target is b
    assert outcomes(req) == [("a", "overloaded"), ("b", "ok")]
    assert a.provider.streams[0].closed
    frames = b"".join(drain(result))
    assert b"overloaded_error" not in frames and b"message_stop" in frames


def test_a_stream_that_ends_before_content_is_truncated_and_failed_over():
    w = World()
    a = w.target("a", "anthropic", [[START, None]])
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    assert w.run(req, [a, b]).target is b
    assert outcomes(req)[0] == ("a", "truncated")


def test_pings_without_content_hit_the_first_token_timeout():
    w = World()
    a = w.target("a", "anthropic", [[START, Stall(0.9), Stall(0.9), Stall(0.9)]],
                 first_token=1.5, idle=1.0)
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    assert w.run(req, [a, b]).target is b
    assert outcomes(req)[0] == ("a", "first_token_timeout")


@pytest.mark.parametrize("first_token,idle,cls", [(1.0, 1.0, C.FIRST_TOKEN_TIMEOUT),
                                                  (5.0, 1.0, C.IDLE_TIMEOUT)])
def test_a_stall_before_content_is_a_timeout_failover(first_token, idle, cls):
    w = World()
    a = w.target("a", "anthropic", [[START, Stall()]], first_token=first_token, idle=idle)
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    assert w.run(req, [a, b]).target is b
    assert outcomes(req)[0] == ("a", cls.value)


def test_commit_then_clean_end():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    result = w.run(req, [a])
    assert any(b"text_delta" in f for f in result.head)    # committed at the first content
    frames = drain(result)
    assert result.outcome["ok"] is True
    assert frames[-1].startswith(b"event: message_stop")
    assert a.provider.streams[0].closed


@pytest.mark.parametrize("failure,etype,outcome", [
    (OVERLOADED, b"overloaded_error", "overloaded_after_commit"),
    (None, b"api_error", "truncated_after_commit"),
    (Stall(), b"api_error", "idle_timeout_after_commit"),
])
def test_a_failure_after_commit_is_an_in_band_error_in_the_clients_format(failure, etype, outcome):
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, failure]])
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    req = w.request(stream=True)
    result = w.run(req, [a, b])
    assert result.target is a                                # no failover once committed
    frames = drain(result)
    assert frames[-1].startswith(b"event: error") and etype in frames[-1]
    assert result.outcome["ok"] is False
    assert outcomes(req)[-1] == ("a", outcome)
    assert w.breaker(a).consecutive_failures == 1           # counted against the target
    assert len(b.provider.calls) == 0


END_NO_STOP = END[:-1]  # every block closed, the stop reason sent, message_stop never came
MALFORMED = SSEParser().feed(b'event: content_block_delta\ndata: {"type": "content_block_de\n\n')


@pytest.mark.parametrize("client", ["anthropic", "openai"])
def test_a_stream_complete_by_meaning_but_unterminated_is_a_success(client):
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, END_NO_STOP, None]])
    req = w.request(client, stream=True)
    result = w.run(req, [a])
    frames = drain(result)
    assert result.outcome["ok"] is True
    # The gateway ends the client's stream properly itself.
    assert frames[-1].startswith(b"event: message_stop" if client == "anthropic" else b"data: [DONE]")
    assert w.breaker(a).consecutive_failures == 0
    assert w.executor.streams.stats["ended_without_terminator"] == 1


def test_a_stream_cut_before_its_stop_reason_is_still_truncated():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, END[:1], None]])  # block closed, no stop reason
    req = w.request(stream=True)
    result = w.run(req, [a])
    frames = drain(result)
    assert result.outcome["ok"] is False and b"event: error" in frames[-1]
    assert outcomes(req)[-1] == ("a", "truncated_after_commit")


def test_a_malformed_frame_is_dropped_counted_and_the_answer_goes_on():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, MALFORMED, TOKEN, END]])
    req = w.request(stream=True)
    result = w.run(req, [a])
    frames = drain(result)
    assert result.outcome["ok"] is True
    assert sum(1 for f in frames if b"text_delta" in f) == 2
    assert not any(b"content_block_de\n" in f for f in frames)
    assert ("a", "malformed_frames") in outcomes(req)     # the target's health sees it
    assert w.executor.streams.stats["malformed_frames"] == 1


def test_a_stream_of_nothing_but_malformed_frames_fails():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, *([MALFORMED] * 20)]])
    req = w.request(stream=True)
    result = w.run(req, [a])
    drain(result)
    assert result.outcome["ok"] is False
    assert outcomes(req)[-2] == ("a", "malformed_response_after_commit")


def test_an_openai_client_gets_the_error_as_an_openai_error_chunk():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, OVERLOADED]])
    req = w.request("openai", stream=True)
    frames = drain(w.run(req, [a]))
    last = orjson.loads(frames[-1].removeprefix(b"data: "))
    assert last["error"]["type"] == "overloaded_error"


def test_a_half_open_probe_stream_closes_the_breaker_when_it_ends_well():
    w = World(breaker={"consecutive_failures": 1, "cooldown_s": 10})
    a = w.target("a", "anthropic", [err(C.CONNECT), [START, TOKEN, END]])
    b = w.target("b", "anthropic", [[START, TOKEN, END]])
    w.run(w.request(stream=True), [a, b])
    assert w.breaker(a).state is State.OPEN
    w.clock.advance(10)
    result = w.run(w.request(stream=True), [a, b])
    assert result.target is a
    # committed, but the verdict waits for the stream's end: still the one probe in flight
    assert w.breaker(a).state is State.HALF_OPEN
    drain(result)
    assert w.breaker(a).state is State.CLOSED


def test_streams_that_commit_then_die_open_the_breaker():
    # An in-band error after the first token, again and again: a commit is not a success.
    w = World(breaker={"consecutive_failures": 3, "cooldown_s": 10})
    a = w.target("a", "anthropic", [[START, TOKEN, OVERLOADED]] * 3)
    for _ in range(3):
        drain(w.run(w.request(stream=True), [a]))
    assert w.breaker(a).state is State.OPEN


# -- mid-stream continuation -------------------------------------------------------------------


def test_a_cut_stream_is_continued_and_the_breakers_are_told():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, None]])
    b = w.target("b", "anthropic", [[START, TOKEN, END]], prefill=True)
    w.continue_on(a, b)
    req = w.request(stream=True)
    result = w.run(req, [a])
    frames = b"".join(drain(result))
    assert result.outcome["ok"] is True and result.outcome["continued"] is True
    assert frames.count(b"event: message_start") == 1 and b"event: error" not in frames
    assert b": ridethrough continued-on b/m after truncated from a/m" in frames
    sent = orjson.loads(b.provider.calls[0].body)
    assert sent["messages"][-1] == {"role": "assistant", "content": "hel"}
    assert w.breaker(a).consecutive_failures == 1 and w.breaker(b).consecutive_failures == 0
    assert a.provider.streams[0].closed and b.provider.streams[0].closed


def test_a_client_leaving_during_a_continuation_releases_the_probe_and_the_connection():
    w = World(breaker={"consecutive_failures": 1, "cooldown_s": 10})
    a = w.target("a", "anthropic", [[START, TOKEN, None]])
    b = w.target("b", "anthropic", [[START, TOKEN, Stall(1.0), TOKEN, END]], prefill=True)
    w.continue_on(a, b)
    w.breaker(b).record_failure("connect")           # b failed once: its breaker opens
    assert w.breaker(b).state is State.OPEN
    w.clock.advance(10)                              # half-open: the next call is b's probe
    result = w.run(w.request(stream=True), [a])

    async def leave_after_the_switch() -> None:
        async for frame in result.tail:
            if frame.startswith(b": ridethrough continued-on"):
                break
        await result.tail.aclose()                   # the client went away

    asyncio.run(leave_after_the_switch())
    assert b.provider.streams[0].closed
    assert w.breaker(b).availability() is None       # the probe is free again, not held forever


def test_a_continuation_cut_again_is_continued_again_up_to_the_limit():
    w = World()
    a = w.target("a", "anthropic", [[START, TOKEN, None]])
    b = w.target("b", "anthropic", [[START, TOKEN, None]] * 3, prefill=True)
    w.continue_on(a, b)
    w.executor.streams.max_continuations = 2
    req = w.request(stream=True)
    result = w.run(req, [a])
    frames = drain(result)
    assert result.outcome["ok"] is False
    assert frames[-1].startswith(b"event: error")
    assert len(b.provider.calls) == 2                   # two switches, then the clean error
    assert w.executor.streams.stats["continuation_failed"] == 1
    # The second continuation carries all the text the client had: both earlier parts.
    assert orjson.loads(b.provider.calls[1].body)["messages"][-1]["content"] == "helhel"


def test_a_refused_prefill_is_not_asked_again_until_the_lesson_expires():
    w = World()
    refusal = err(C.CLIENT, 400)
    a = w.target("a", "anthropic", [[START, TOKEN, None]] * 3)
    b = w.target("b", "anthropic", [refusal, refusal], prefill=True)
    w.continue_on(a, b)
    for _ in range(2):
        drain(w.run(w.request(stream=True), [a]))
    assert len(b.provider.calls) == 1                   # learned after the first refusal
    w.clock.advance(3601)
    drain(w.run(w.request(stream=True), [a]))
    assert len(b.provider.calls) == 2                   # asked again once the lesson expired
