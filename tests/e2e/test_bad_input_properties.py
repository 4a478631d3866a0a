"""Whatever a client sends, it gets a 4xx or a 2xx in its own format — never a 500 — and no
target is blamed for it (issue 11). Property-based, against a live gateway on loopback.

The gateway has both formats and cross-format routes (``claude-first``: Anthropic, then
OpenAI; ``gpt-first``: the reverse; ``cached``: with the response cache on), so every body is
seen by a passthrough target, a translation and the cache's keys. Bodies come from
``support.wire_strategies`` (typed from the shape tables, mutated golden fixtures, raw bytes)
and are posted with httpx to both endpoints, streamed or not. Per example: status < 500; an
error body in the caller's format; a stream that ends with its terminal event; and the
request's own record blames no target (no attempt a breaker or a health window counts as
failed). At the end: breakers, health windows and incidents untouched, and the gateway still
answers. Fixed seed (``derandomize``), about 3,000 examples, ~25 s here.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import two_route_config
from ridethrough.harness import GatewayThread
from ridethrough.health.samples import attempt_verdict
from ridethrough.records import RequestRecord
from support.wire_strategies import PATHS, encode, mutated_golden, raw_body, typed_request

ROUTES = ["claude-first", "gpt-first", "cached"]
# Roomy timeouts and no hedging: a slow moment of this 2-core machine must not look like a
# target's fault (the test is about what the *client* sent).
ROOMY = {"connect": 5, "first_byte": 20, "first_token": 20, "idle": 20, "total": 30}


def _settings(n: int) -> Any:
    return settings(max_examples=n, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Live:
    """The gateway, an httpx client, and every request record by request id."""

    def __init__(self) -> None:
        cached = {"targets": [{"provider": "a_primary", "model": "claude-sonnet-4-6"},
                              {"provider": "o_primary", "model": "gpt-4o"}], "cache": {"mode": "always"}}
        cfg = two_route_config(
            providers={p: {"timeouts": ROOMY} for p in ("a_primary", "a_backup", "o_primary", "o_backup")},
            routes={"cached": cached}, resilience={"hedge": {"enabled": False}})
        self.gt = GatewayThread(cfg).start()
        self.records: dict[str, RequestRecord] = {}
        self.gt.gateway.observers.append(lambda r: self.records.__setitem__(r.request_id, r))
        self.client = httpx.Client(base_url=self.gt.url, timeout=60)
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}

    def post(self, fmt: str, content: bytes) -> None:
        rid = f"prop-{next(self.ids)}"
        headers = {"content-type": "application/json", "x-request-id": rid}
        if fmt == "anthropic":
            headers["anthropic-version"] = "2023-06-01"
        with self.client.stream("POST", PATHS[fmt], content=content, headers=headers) as r:
            data = r.read()  # a stream is read to its end: a dropped connection raises here
        self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500, data[:500]
        if r.status_code >= 400:
            assert_error_in_format(fmt, data)
        elif r.headers["content-type"].startswith("text/event-stream"):
            end = b"event: message_stop" if fmt == "anthropic" else b"data: [DONE]"
            assert end in data and b'"error"' not in data, data[-300:]
        else:
            obj = orjson.loads(data)
            assert obj.get("type") == "message" if fmt == "anthropic" else obj["object"] == "chat.completion"
        record = self.record(rid)
        for a in record.attempts:
            assert attempt_verdict(a.outcome) != (True, True), (a, record.status)

    def record(self, rid: str) -> RequestRecord:
        for _ in range(200):  # a stream's record is written as its generator closes
            if rid in self.records:
                return self.records[rid]
            time.sleep(0.005)
        raise AssertionError(f"no request record for {rid}")

    def close(self) -> None:
        self.client.close()
        self.gt.stop()


def assert_error_in_format(fmt: str, data: bytes) -> None:
    body = orjson.loads(data)
    if fmt == "anthropic":
        assert body["type"] == "error" and isinstance(body["error"]["type"], str), body
        assert isinstance(body["error"]["message"], str)
    else:
        assert set(body) == {"error"} and isinstance(body["error"]["message"], str), body
        assert "type" in body["error"]


@pytest.fixture(scope="module")
def live():
    g = Live()
    yield g
    try:
        assert g.gt.blamed() == []
        for fmt in PATHS:  # still serving, in both formats
            body = {"model": "claude-first", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
            g.post(fmt, encode(body))
        print("status counts:", dict(sorted(g.statuses.items())))
        assert g.statuses.get(200, 0) > 0 and g.statuses.get(400, 0) > 0  # both kinds were reached
    finally:
        g.close()


formats = st.sampled_from(["anthropic", "openai"])


@_settings(800)
@given(data=st.data(), fmt=formats)
def test_typed_requests(live: Live, data: st.DataObject, fmt: str) -> None:
    live.post(fmt, encode(data.draw(typed_request(fmt, ROUTES))))


@_settings(1800)
@given(data=st.data(), fmt=formats)
def test_mutated_golden_requests(live: Live, data: st.DataObject, fmt: str) -> None:
    live.post(fmt, encode(data.draw(mutated_golden(fmt, ROUTES))))


@_settings(400)
@given(data=st.data(), fmt=formats)
def test_bodies_that_are_not_json_objects(live: Live, data: st.DataObject, fmt: str) -> None:
    live.post(fmt, data.draw(raw_body(fmt, ROUTES)))


def test_nothing_was_blamed_on_a_target(live: Live) -> None:
    assert live.gt.blamed() == []
