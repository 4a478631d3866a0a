"""One deadline per request, and how the SDK's own timeout sets it."""

from __future__ import annotations

import pytest

from ridethrough.routing.clock import FakeClock
from ridethrough.routing.deadline import Deadline, client_timeout_from_headers


def test_deadline_counts_down_on_the_injected_clock():
    clock = FakeClock()
    d = Deadline.start(clock, 10)
    assert d.remaining() == 10 and not d.expired
    clock.advance(4)
    assert d.remaining() == 6
    assert d.cap(60) == 6 and d.cap(2) == 2   # a step timeout never runs past the deadline
    clock.advance(6)
    assert d.expired and d.remaining() == 0
    clock.advance(5)
    assert d.remaining() == 0 and d.cap(1) == 0


@pytest.mark.parametrize("headers,expected", [
    ({"x-stainless-timeout": "600"}, 599),
    ({"x-stainless-read-timeout": "600.0"}, 599),                   # the OpenAI SDK's only header
    ({"x-stainless-timeout": "30", "x-stainless-read-timeout": "90"}, 29),
    # The Anthropic SDK with timeout= on the client (not the call) sends both of these:
    ({"x-stainless-timeout": "NOT_GIVEN", "x-stainless-read-timeout": "3.0"}, 2),
    ({"x-stainless-timeout": "None", "x-stainless-read-timeout": "20"}, 19),
    ({"x-stainless-timeout": "1.5"}, 0.75),   # a short timeout keeps at least half its budget
])
def test_client_timeout_from_sdk_headers(headers, expected):
    assert client_timeout_from_headers(headers, margin_s=1.0) == pytest.approx(expected)


@pytest.mark.parametrize("headers", [
    {}, {"x-stainless-timeout": "NOT_GIVEN"}, {"x-stainless-timeout": "0"},
    {"x-stainless-read-timeout": "-5"}, {"x-stainless-timeout": ""}, {"x-stainless-timeout": "nan"},
])
def test_no_usable_client_timeout(headers):
    assert client_timeout_from_headers(headers, margin_s=1.0) is None
