"""Per-target timeouts against upstreams that are slow in ways the simulator's faults are not.

A tiny raw upstream (aiohttp, its own thread and loop) answers the Anthropic Messages API
with a chosen pacing: headers after a delay, then the body in two halves with a pause in
between. Outcomes are asserted (who served, what the attempt was classed as), not durations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest
from aiohttp import web

from ridethrough.harness import AppThread

MESSAGE = {
    "id": "msg_drip", "type": "message", "role": "assistant", "model": "claude-drip",
    "content": [{"type": "text", "text": "[drip] a slow but correct answer"}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 5, "output_tokens": 7},
}


class DripUpstream:
    """Headers after ``head_s``; the first half of the body; ``gap_s``; the rest."""

    def __init__(self) -> None:
        self.head_s = 0.0
        self.gap_s = 0.0
        self.status = 200
        self.requests = 0
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self.server = AppThread(app, handler_cancellation=True, shutdown_timeout=0.5)

    @property
    def port(self) -> int:
        return self.server.port

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.read()
        await asyncio.sleep(self.head_s)
        payload = orjson.dumps(MESSAGE if self.status == 200 else {
            "type": "error", "error": {"type": "invalid_request_error",
                                       "message": "max_tokens: must be at most 8192"}})
        resp = web.StreamResponse(status=self.status,
                                  headers={"request-id": f"req_drip_{self.requests}"})
        resp.content_type = "application/json"
        resp.content_length = len(payload)
        await resp.prepare(request)
        await resp.write(payload[: len(payload) // 2])
        await asyncio.sleep(self.gap_s)
        await resp.write(payload[len(payload) // 2:])
        await resp.write_eof()
        return resp

    def start(self) -> DripUpstream:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def drip() -> Iterator[DripUpstream]:
    up = DripUpstream().start()
    yield up
    up.stop()


@pytest.fixture()
def gt(drip, resilience_kit, start_gateway):
    drip.head_s = drip.gap_s = 0.0
    drip.status = 200
    drip.requests = 0
    cfg = resilience_kit.config(
        providers={"drip": {"kind": "anthropic", "base_url": f"http://127.0.0.1:{drip.port}",
                            "timeouts": {"connect": 1, "first_byte": 0.3, "first_token": 0.3,
                                         "idle": 0.3, "total": 1.0}}},
        routes={"drip-first": {"targets": [{"provider": "drip", "model": "claude-drip"},
                                           {"provider": "o_backup", "model": "gpt-4o"}]}},
    )
    return start_gateway(cfg)


def test_json_headers_later_than_first_byte_are_fine_within_total(gt, drip, resilience_kit):
    """A non-streaming answer arrives whole: only ``total`` bounds it, not ``first_byte``."""
    drip.head_s = 0.6
    seen = resilience_kit.ask("anthropic", gt.url, "drip-first", "drip", stream=False)
    assert seen.error is None and seen.target == "drip/claude-drip", seen
    assert seen.text == "[drip] a slow but correct answer"


def test_json_total_bounds_headers_and_body_together(gt, drip, resilience_kit):
    """Headers at 0.6 s and the body's second half at 1.2 s: each wait alone fits in the 1 s
    ``total``, the whole exchange does not — the target is abandoned and the backup serves."""
    drip.head_s = 0.6
    drip.gap_s = 0.6
    seen = resilience_kit.ask("anthropic", gt.url, "drip-first", "dripping", stream=False)
    assert resilience_kit.answered_by(seen, "o_backup", "dripping"), seen
    assert drip.requests == 1
    assert "drip/claude-drip=" in seen.headers["x-ridethrough-fallback-reason"]


def test_a_slow_error_body_is_classified_by_its_status_not_as_a_timeout(gt, drip, resilience_kit):
    """A 400 whose body trickles in past ``total`` is still the caller's 400: not a timeout
    that would fail over to the backup and count against the target."""
    drip.status = 400
    drip.head_s = 0.6
    drip.gap_s = 0.6
    seen = resilience_kit.ask("anthropic", gt.url, "drip-first", "too many tokens", stream=False)
    import anthropic

    assert isinstance(seen.error, anthropic.BadRequestError), seen
    assert "max_tokens: must be at most 8192" in str(seen.error)
    assert drip.requests == 1
