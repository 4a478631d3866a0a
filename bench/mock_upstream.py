"""A mock LLM provider that is never the bottleneck: canned answers on a raw asyncio protocol.

It speaks Anthropic (`POST /v1/messages`) and OpenAI (`POST /v1/chat/completions`, also
without the `/v1`), JSON and SSE, on one or more ports from one process. Every port has its
own fault switch and counters, so port 1 can be the failing primary while port 2 is the
healthy secondary:

    GET  /__admin/stats              counters of this port
    POST /__admin/fault?mode=M       none | overloaded (529) | hang | reset |
                                     inband_before (error event before the first token) |
                                     inband_after (error event after a few tokens)
    POST /__admin/reset              zero the counters

Why not aiohttp or Starlette: the mock must be several times faster than any gateway it
measures, on the same two cores. A hand-written HTTP/1.1 parser over uvloop serves tens of
thousands of canned responses a second on one core; `bench/run.sh` measures it alone first.
Nothing is parsed as JSON: a streaming request is recognised by `"stream": true` in its body.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

FAULT_MODES = ("none", "overloaded", "hang", "reset", "inband_before", "inband_after")
STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
TEXT_WORDS = [
    "The",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "the",
    "gateway",
    "keeps",
    "every",
    "stream",
    "flowing",
    "and",
    "every",
    "answer",
    "arrives",
    "on",
    "time",
    "without",
    "a",
    "single",
    "error",
]


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _http(status: int, reason: str, ctype: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass
class Canned:
    """Every byte the mock ever sends, built once at start-up."""

    tokens: int
    openai_json: bytes = b""
    anthropic_json: bytes = b""
    openai_head: bytes = b""  # status line + headers + first frame(s) before any token
    openai_tokens: list[bytes] = field(default_factory=list)
    openai_tail: bytes = b""  # finish chunk, usage chunk, [DONE], end of chunked body
    anthropic_head: bytes = b""
    anthropic_tokens: list[bytes] = field(default_factory=list)
    anthropic_tail: bytes = b""
    openai_error_frame: bytes = b""
    anthropic_error_frame: bytes = b""

    def __post_init__(self) -> None:
        words = [TEXT_WORDS[i % len(TEXT_WORDS)] + " " for i in range(self.tokens)]
        text = "".join(words).strip()
        usage_o = {
            "prompt_tokens": 12,
            "completion_tokens": self.tokens,
            "total_tokens": 12 + self.tokens,
        }
        self.openai_json = _http(
            200,
            "OK",
            "application/json",
            _json(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "created": 1700000000,
                    "model": "gpt-4.1",
                    "system_fingerprint": None,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": usage_o,
                }
            ),
            "x-request-id: req_mock\r\n",
        )
        self.anthropic_json = _http(
            200,
            "OK",
            "application/json",
            _json(
                {
                    "id": "msg_bench",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 12, "output_tokens": self.tokens},
                }
            ),
            "request-id: req_mock\r\n",
        )
        sse_head = (
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            "cache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
        )

        def o_chunk(
            delta: dict, finish: str | None = None, choices: bool = True, usage: dict | None = None
        ) -> bytes:
            obj: dict = {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": "gpt-4.1",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
                if choices
                else [],
            }
            if usage is not None:
                obj["usage"] = usage
            return b"data: " + _json(obj) + b"\n\n"

        self.openai_head = (sse_head + "x-request-id: req_mock\r\n\r\n").encode() + _chunk(
            o_chunk({"role": "assistant", "content": ""})
        )
        self.openai_tokens = [_chunk(o_chunk({"content": w})) for w in words]
        self.openai_tail = (
            _chunk(
                o_chunk({}, "stop")
                + o_chunk({}, choices=False, usage=usage_o)
                + b"data: [DONE]\n\n"
            )
            + b"0\r\n\r\n"
        )
        self.openai_error_frame = (
            _chunk(
                b"data: "
                + _json(
                    {
                        "error": {
                            "message": "Overloaded (mock fault)",
                            "type": "overloaded_error",
                            "param": None,
                            "code": "overloaded",
                        }
                    }
                )
                + b"\n\n"
            )
            + b"0\r\n\r\n"
        )

        def a_event(name: str, obj: dict) -> bytes:
            return b"event: " + name.encode() + b"\ndata: " + _json(obj) + b"\n\n"

        self.anthropic_head = (sse_head + "request-id: req_mock\r\n\r\n").encode() + _chunk(
            a_event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_bench",
                        "type": "message",
                        "role": "assistant",
                        "model": "claude-sonnet-4-5",
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": 12, "output_tokens": 1},
                    },
                },
            )
            + a_event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        self.anthropic_tokens = [
            _chunk(
                a_event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": w},
                    },
                )
            )
            for w in words
        ]
        self.anthropic_tail = (
            _chunk(
                a_event("content_block_stop", {"type": "content_block_stop", "index": 0})
                + a_event(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": self.tokens},
                    },
                )
                + a_event("message_stop", {"type": "message_stop"})
            )
            + b"0\r\n\r\n"
        )
        self.anthropic_error_frame = (
            _chunk(
                a_event(
                    "error",
                    {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded (mock fault)"},
                    },
                )
            )
            + b"0\r\n\r\n"
        )


OVERLOADED = {
    "anthropic": _http(
        529,
        "Overloaded",
        "application/json",
        _json(
            {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded (mock fault)"},
                "request_id": "req_mock",
            }
        ),
    ),
    "openai": _http(
        529,
        "Overloaded",
        "application/json",
        _json(
            {
                "error": {
                    "message": "Overloaded (mock fault)",
                    "type": "overloaded_error",
                    "param": None,
                    "code": "overloaded",
                }
            }
        ),
    ),
}
NOT_FOUND = _http(
    404,
    "Not Found",
    "application/json",
    _json({"error": {"message": "mock upstream: unknown path", "type": "not_found_error"}}),
)


@dataclass
class PortState:
    port: int
    canned: Canned
    first_token_s: float
    token_interval_s: float
    fault: str = "none"
    fault_since: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    hung: set[asyncio.Transport] = field(default_factory=set)

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def stats(self) -> bytes:
        return _json(
            {
                "port": self.port,
                "fault": self.fault,
                "counts": self.counts,
                "hung_now": len(self.hung),
                "time": time.time(),
            }
        )


class MockProtocol(asyncio.Protocol):
    __slots__ = ("buf", "busy", "loop", "state", "transport")

    def __init__(self, state: PortState) -> None:
        self.state = state
        self.buf = b""
        self.loop = asyncio.get_running_loop()
        self.busy = False  # a streamed answer is still being written on this connection
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.hung.discard(self.transport)  # type: ignore[arg-type]
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while not self.busy and self.transport is not None:
            req = self._next_request()
            if req is None:
                return
            self._answer(*req)

    def _next_request(self) -> tuple[str, str, bytes] | None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buf[:end].decode("latin-1")
        lines = head.split("\r\n")
        try:
            method, target, _ = lines[0].split(" ", 2)
        except ValueError:
            self._abort()
            return None
        length = 0
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        rest = end + 4
        if chunked:
            body = bytearray()
            pos = rest
            while True:
                eol = self.buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                size = int(self.buf[pos:eol].split(b";")[0], 16)
                if len(self.buf) < eol + 2 + size + 2:
                    return None
                body += self.buf[eol + 2 : eol + 2 + size]
                pos = eol + 2 + size + 2
                if size == 0:
                    break
            self.buf = self.buf[pos:]
            return method, target, bytes(body)
        if len(self.buf) < rest + length:
            return None
        body = self.buf[rest : rest + length]
        self.buf = self.buf[rest + length :]
        return method, target, body

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _answer(self, method: str, target: str, body: bytes) -> None:
        st = self.state
        path = target.split("?", 1)[0]
        if path.startswith("/__admin/"):
            self._admin(method, target)
            return
        if path.endswith("/messages"):
            fmt = "anthropic"
        elif path.endswith("/chat/completions"):
            fmt = "openai"
        else:
            st.count("not_found")
            self.transport.write(NOT_FOUND)  # type: ignore[union-attr]
            return
        stream = STREAM_RE.search(body) is not None
        st.count("requests")
        st.count(f"{fmt}_{'stream' if stream else 'json'}")
        fault = st.fault
        if fault != "none":
            st.count(f"fault_{fault}")
        if fault == "overloaded":
            self.transport.write(OVERLOADED[fmt])  # type: ignore[union-attr]
            return
        if fault == "hang":
            st.hung.add(self.transport)  # type: ignore[arg-type]
            self.busy = True  # never answer; the client gives up or the mock exits
            return
        if fault == "reset":
            self._reset()
            return
        c = st.canned
        if not stream:
            if fault == "inband_before":  # a 200 whose body is an error: the JSON form
                self.transport.write(OVERLOADED[fmt].replace(b"529 Overloaded", b"200 OK", 1))  # type: ignore[union-attr]
                return
            self.transport.write(c.anthropic_json if fmt == "anthropic" else c.openai_json)  # type: ignore[union-attr]
            return
        if fmt == "anthropic":
            head, tokens, tail, err = (
                c.anthropic_head,
                c.anthropic_tokens,
                c.anthropic_tail,
                c.anthropic_error_frame,
            )
        else:
            head, tokens, tail, err = (
                c.openai_head,
                c.openai_tokens,
                c.openai_tail,
                c.openai_error_frame,
            )
        if fault == "inband_before":
            self.transport.write(head + err)  # type: ignore[union-attr]
            return
        if fault == "inband_after":
            tokens, tail = tokens[:3], err
        if st.first_token_s <= 0 and st.token_interval_s <= 0:
            self.transport.write(head + b"".join(tokens) + tail)  # type: ignore[union-attr]
            return
        self.transport.write(head)  # type: ignore[union-attr]
        self.busy = True
        self.loop.call_later(st.first_token_s, self._drip, tokens, 0, tail)

    def _drip(self, tokens: list[bytes], i: int, tail: bytes) -> None:
        t = self.transport
        if t is None:
            return
        if i < len(tokens):
            t.write(tokens[i])
            if self.state.token_interval_s > 0:
                self.loop.call_later(self.state.token_interval_s, self._drip, tokens, i + 1, tail)
                return
            t.write(b"".join(tokens[i + 1 :]))
        t.write(tail)
        self.busy = False
        if self.buf:
            self.data_received(b"")

    def _reset(self) -> None:
        t = self.transport
        if t is None:
            return
        sock = t.get_extra_info("socket")
        if sock is not None:  # SO_LINGER 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.abort()

    def _admin(self, method: str, target: str) -> None:
        st = self.state
        url = urlsplit(target)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/__admin/fault" and method == "POST":
            mode = q.get("mode", "none")
            if mode not in FAULT_MODES:
                self.transport.write(
                    _http(
                        400,
                        "Bad Request",
                        "application/json",  # type: ignore[union-attr]
                        _json({"error": f"mode must be one of {FAULT_MODES}"}),
                    )
                )
                return
            st.fault, st.fault_since = mode, time.time()
            if mode != "hang":  # a recovered primary answers again: drop what it held
                for t in list(st.hung):
                    t.abort()
                st.hung.clear()
        elif url.path == "/__admin/reset" and method == "POST":
            st.counts.clear()
        elif url.path != "/__admin/stats":
            self.transport.write(NOT_FOUND)  # type: ignore[union-attr]
            return
        self.transport.write(_http(200, "OK", "application/json", st.stats()))  # type: ignore[union-attr]


def _announce(path: str, line: str) -> None:
    """Write the bound ports atomically: the harness waits for this file to appear."""
    with open(path + ".tmp", "w") as f:
        f.write(line + "\n")
    os.replace(path + ".tmp", path)


async def serve(
    ports: list[int],
    *,
    tokens: int,
    first_token_ms: float,
    token_interval_ms: float,
    host: str = "127.0.0.1",
    ready_file: str | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    canned = Canned(tokens)
    servers = []
    bound: list[int] = []
    for port in ports:
        st = PortState(port, canned, first_token_ms / 1000, token_interval_ms / 1000)
        srv = await loop.create_server(
            lambda st=st: MockProtocol(st), host, port, backlog=4096, reuse_address=True
        )
        real = srv.sockets[0].getsockname()[1]
        st.port = real
        bound.append(real)
        servers.append(srv)
    line = " ".join(str(p) for p in bound)
    if ready_file:
        _announce(ready_file, line)
    print(f"mock upstream: listening on {host} ports {line}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for srv in servers:
        srv.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, action="append", help="repeatable; 0 = any free port")
    ap.add_argument("--tokens", type=int, default=16, help="content tokens per answer")
    ap.add_argument(
        "--first-token-ms",
        type=float,
        default=0.0,
        help="delay between the stream's head and its first token",
    )
    ap.add_argument(
        "--token-interval-ms",
        type=float,
        default=0.0,
        help="delay between streamed tokens (0: the rest in one write)",
    )
    ap.add_argument("--ready-file", help="write the bound ports here once listening")
    ap.add_argument("--no-uvloop", action="store_true")
    a = ap.parse_args(argv)
    if not a.no_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            print("mock upstream: uvloop not installed, using asyncio's loop", file=sys.stderr)
    asyncio.run(
        serve(
            a.port or [0],
            tokens=a.tokens,
            first_token_ms=a.first_token_ms,
            token_interval_ms=a.token_interval_ms,
            ready_file=a.ready_file,
        )
    )


if __name__ == "__main__":
    main()
