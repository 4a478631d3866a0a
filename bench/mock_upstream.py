"""A mock LLM provider that is never the bottleneck: canned answers on a raw asyncio protocol.

It speaks Anthropic (`POST /v1/messages`) and OpenAI (`POST /v1/chat/completions`, also
without the `/v1`), JSON and SSE, on one or more ports from one process. Every port has its
own fault switch and counters, so port 1 can be the failing primary while port 2 is the
healthy secondary:

    GET  /__admin/stats              counters of this port
    POST /__admin/fault?mode=M       none | overloaded (529) | hang | reset |
                                     inband_before (error event before the first token) |
                                     inband_after (error event after a few tokens) |
                                     a freeze (below)
    POST /__admin/reset              zero the counters

Every admin call takes ``&port=P`` to act on another port of the same mock: the only way to
reach a port whose fault is ``no_accept``.

Freezes (the timeout-shaped outages of bench/freeze.py): the moment one is switched on,
every answer in progress on that port stops where it is (nothing more is written, the
connection stays open), as when a provider's process stops; new requests then fail in
the shape's own way until the mode is set back (which drops the held connections):

    no_accept             the port stops accepting: a listen(1) socket whose accept queue is
                          filled, so the kernel drops every new SYN (connect() times out);
                          requests on connections already open are held
    hang_before_headers   the request is read, nothing is ever sent
    hang_after_headers    JSON: status and headers, no body; stream: the head (status,
                          headers, the events before the first token), no token
    stall_mid_stream      JSON: half the body; stream: the first 3 tokens; then nothing

``--json-delay-ms`` holds every JSON answer back that long (default 0: at once), so a JSON
call takes about as long as the stream it replaces and a freeze can catch it in flight.
``--jitter S`` multiplies each answer's JSON delay and first-token delay by a lognormal
factor (median 1, sigma S; default 0: none, every answer alike), as real latencies vary.

Why not aiohttp or Starlette: the mock must be several times faster than any gateway it
measures, on the same two cores. A hand-written HTTP/1.1 parser over uvloop serves tens of
thousands of canned responses a second on one core; `bench/run.sh` measures it alone first.
Nothing is parsed as JSON: a streaming request is recognised by `"stream": true` in its body.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

FREEZE_MODES = ("no_accept", "hang_before_headers", "hang_after_headers", "stall_mid_stream")
FAULT_MODES = (
    "none",
    "overloaded",
    "hang",
    "reset",
    "inband_before",
    "inband_after",
    *FREEZE_MODES,
)
HOLDING_MODES = ("hang", *FREEZE_MODES)  # modes whose held connections stay held
STALL_AFTER_TOKENS = 3
PORTS: dict[int, PortState] = {}  # every port of this mock, for ``&port=`` admin calls
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
    json_delay_s: float = 0.0
    jitter: float = 0.0  # sigma of the lognormal latency factor (0: none)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    fault: str = "none"
    fault_since: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    hung: set[asyncio.Transport] = field(default_factory=set)
    host: str = "127.0.0.1"
    server: asyncio.AbstractServer | None = None  # the listener (None while no_accept)
    silence: Silence | None = None

    @property
    def frozen(self) -> bool:
        return self.fault in FREEZE_MODES

    def factor(self) -> float:
        return math.exp(self.rng.gauss(0.0, self.jitter)) if self.jitter > 0 else 1.0

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
        self.state.count("connections")

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
        if fault in ("hang", "hang_before_headers", "no_accept"):
            self._hold()  # never answer; the client gives up or the mode changes
            return
        if fault == "reset":
            self._reset()
            return
        c = st.canned
        if not stream:
            if fault == "inband_before":  # a 200 whose body is an error: the JSON form
                self.transport.write(OVERLOADED[fmt].replace(b"529 Overloaded", b"200 OK", 1))  # type: ignore[union-attr]
                return
            answer = c.anthropic_json if fmt == "anthropic" else c.openai_json
            if fault in ("hang_after_headers", "stall_mid_stream"):
                end = answer.index(b"\r\n\r\n") + 4
                half = (len(answer) - end) // 2 if fault == "stall_mid_stream" else 0
                self.transport.write(answer[: end + half])  # type: ignore[union-attr]
                self._hold()
                return
            if st.json_delay_s > 0:
                self.busy = True
                self.loop.call_later(st.json_delay_s * st.factor(), self._send_late, answer)
                return
            self.transport.write(answer)  # type: ignore[union-attr]
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
        if fault == "hang_after_headers":
            self.transport.write(head)  # type: ignore[union-attr]
            self._hold()
            return
        if fault == "stall_mid_stream":
            tokens, tail = tokens[:STALL_AFTER_TOKENS], None
        if st.first_token_s <= 0 and st.token_interval_s <= 0 and tail is not None:
            self.transport.write(head + b"".join(tokens) + tail)  # type: ignore[union-attr]
            return
        self.transport.write(head)  # type: ignore[union-attr]
        self.busy = True
        self.loop.call_later(st.first_token_s * st.factor(), self._drip, tokens, 0, tail)

    def _drip(self, tokens: list[bytes], i: int, tail: bytes | None) -> None:
        """The next token, then the rest after the pacing interval; ``tail`` None: hold the
        stream after the last token (a stall). A frozen port writes nothing more."""
        t = self.transport
        if t is None:
            return
        if self.state.frozen:
            self._hold()
            return
        if i < len(tokens):
            t.write(tokens[i])
            if self.state.token_interval_s > 0:
                self.loop.call_later(self.state.token_interval_s, self._drip, tokens, i + 1, tail)
                return
            t.write(b"".join(tokens[i + 1 :]))
        if tail is None:
            self._hold()
            return
        t.write(tail)
        self._done()

    def _send_late(self, answer: bytes) -> None:
        """A JSON answer after ``--json-delay-ms``, unless the port froze meanwhile."""
        if self.transport is None:
            return
        if self.state.frozen:
            self._hold()
            return
        self.transport.write(answer)
        self._done()

    def _done(self) -> None:
        self.busy = False
        if self.buf:
            self.data_received(b"")

    def _hold(self) -> None:
        """Send nothing more on this connection until the fault is switched off (which
        drops it) or the client leaves."""
        self.state.hung.add(self.transport)  # type: ignore[arg-type]
        self.busy = True

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
        if "port" in q:  # act on another port of this mock
            st = PORTS.get(int(q["port"]))  # type: ignore[assignment]
            if st is None:
                self.transport.write(NOT_FOUND)  # type: ignore[union-attr]
                return
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
            if mode not in HOLDING_MODES:  # a recovered primary answers again: drop what it held
                for t in list(st.hung):
                    t.abort()
                st.hung.clear()
            if (mode == "no_accept") != (st.silence is not None):
                # The listener changes: answer once it has (the caller's next step may
                # depend on the port being silent, or open again).
                self.busy = True
                task = self.loop.create_task(_set_listening(st, mode != "no_accept"))
                task.add_done_callback(self._after_listen_switch)
                return
        elif url.path == "/__admin/reset" and method == "POST":
            st.counts.clear()
        elif url.path != "/__admin/stats":
            self.transport.write(NOT_FOUND)  # type: ignore[union-attr]
            return
        self.transport.write(_http(200, "OK", "application/json", st.stats()))  # type: ignore[union-attr]

    def _after_listen_switch(self, task: asyncio.Task[None]) -> None:
        if self.transport is None:
            return
        if task.cancelled() or task.exception() is not None:
            err = "cancelled" if task.cancelled() else repr(task.exception())
            msg = _http(500, "Error", "application/json", _json({"error": err}))
        else:
            msg = _http(200, "OK", "application/json", self.state.stats())
        self.transport.write(msg)
        self._done()


class Silence:
    """A port that takes no connections: a listen(1) socket nobody accepts from, its accept
    queue filled by connections of its own, so the kernel drops every further SYN and a
    client's connect() retransmits until its own timeout (a closed port would answer
    ECONNREFUSED at once). The same technique as ridethrough's simulator (NO_ACCEPT)."""

    MAX_FILLERS = 4

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fillers: list[socket.socket] = []

    async def fill(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        while not _accept_queue_full(self.sock):
            if len(self.fillers) >= self.MAX_FILLERS:
                raise RuntimeError(f"no_accept: the accept queue of port {port} did not fill")
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            self.fillers.append(f)
            await asyncio.wait_for(loop.sock_connect(f, (host, port)), 1.0)

    def close(self) -> None:
        for f in self.fillers:
            f.close()
        self.fillers.clear()
        self.sock.close()


def _accept_queue_full(sock: socket.socket) -> bool:
    """Linux reports a listener's accept-queue length and limit in tcp_info's
    tcpi_unacked / tcpi_sacked (offset 24); the queue is full past the limit."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
    queued, limit = struct.unpack_from("=II", raw, 24)
    return queued > limit


async def _set_listening(st: PortState, listening: bool) -> None:
    """Swap the port between its real listener and a Silence (no_accept). Connections
    already open stay as they are (held, if the mode holds them)."""
    loop = asyncio.get_running_loop()
    if not listening:
        if st.server is not None:
            st.server.close()
            st.server = None
        sock = _bind(st.host, st.port, 1)
        st.silence = Silence(sock)
        try:
            await st.silence.fill(loop, st.host, st.port)
        except BaseException:
            st.silence.close()
            st.silence = None
            raise
        return
    if st.silence is not None:
        st.silence.close()
        st.silence = None
    if st.server is None:
        sock = _bind(st.host, st.port, 4096)
        st.server = await loop.create_server(lambda: MockProtocol(st), sock=sock)


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


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
    json_delay_ms: float = 0.0,
    jitter: float = 0.0,
    host: str = "127.0.0.1",
    ready_file: str | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    canned = Canned(tokens)
    states = []
    bound: list[int] = []
    for port in ports:
        st = PortState(
            port, canned, first_token_ms / 1000, token_interval_ms / 1000, json_delay_ms / 1000
        )
        st.host, st.jitter, st.rng = host, jitter, random.Random(port or len(states))
        st.server = await loop.create_server(
            lambda st=st: MockProtocol(st), host, port, backlog=4096, reuse_address=True
        )
        real = st.server.sockets[0].getsockname()[1]
        st.port = real
        PORTS[real] = st
        bound.append(real)
        states.append(st)
    line = " ".join(str(p) for p in bound)
    if ready_file:
        _announce(ready_file, line)
    print(f"mock upstream: listening on {host} ports {line}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for st in states:
        if st.server is not None:
            st.server.close()
        if st.silence is not None:
            st.silence.close()


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
    ap.add_argument(
        "--json-delay-ms", type=float, default=0.0, help="hold every JSON answer back this long"
    )
    ap.add_argument(
        "--jitter", type=float, default=0.0, help="sigma of a lognormal latency factor per answer"
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
            json_delay_ms=a.json_delay_ms,
            jitter=a.jitter,
            ready_file=a.ready_file,
        )
    )


if __name__ == "__main__":
    main()
