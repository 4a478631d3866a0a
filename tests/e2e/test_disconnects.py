"""Clients that leave early never leak an upstream connection or a concurrency slot."""

from __future__ import annotations

import socket

import httpx
import orjson

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread


def test_clients_hanging_up_at_any_moment_leave_no_slot_taken():
    cfg = parse_config({
        "server": {"access_log": False},
        # one slot only: a single leaked slot would make every later request saturate
        "providers": {"p": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0.01,
                            "max_concurrency": 1, "pool_timeout": 5}},
        "routes": {"m": {"targets": [{"provider": "p", "model": "claude-sonnet-4-5"}]}},
    })
    body = orjson.dumps({"model": "m", "max_tokens": 200, "stream": True,
                         "messages": [{"role": "user", "content": "a long answer please"}]})
    with GatewayThread(cfg) as g:
        for i in range(12):
            s = socket.create_connection(("127.0.0.1", g.port))
            s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                      b"anthropic-version: 2023-06-01\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
            if i % 3:
                s.recv(64)  # read a little of the answer first (or nothing at all)
            s.close()
        for _ in range(3):
            r = httpx.post(g.url + "/v1/messages", timeout=30, headers={"anthropic-version": "2023-06-01"},
                           json={"model": "m", "max_tokens": 20,
                                 "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text
            assert r.headers["x-ridethrough-target"] == "p/claude-sonnet-4-5"
