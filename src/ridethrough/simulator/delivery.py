"""Putting an answer on the connection, or failing to, the way real outages fail.

Everything here acts on the live aiohttp request/transport: resets need the raw socket
(SO_LINGER 0 so the kernel sends RST), hangs must park without leaking tasks, and
stream faults are cut at frame boundaries chosen by ``FrameKind``. What the bytes look
like is the wire's business, not this module's.

Non-streaming requests get the closest equivalent of each stream-only fault:

========================  ==========================================================
HANG_AFTER_HEADERS        200 + JSON headers (with Content-Length), then no body
STALL_MID_STREAM          200 + the first half of the JSON body, then nothing
INBAND_ERROR_* (both)     200 whose JSON body is the provider's error object
TRUNCATED                 200 + the first half of the JSON body, then a clean close (FIN)
NO_TERMINATOR             the normal body (a JSON answer has no terminator to lose)
MALFORMED_FRAME           the normal body
MALFORMED_JSON            200 with a complete but syntactically invalid JSON body
SLOW_TOKENS               the normal body after ``tokens × token_delay_s`` (default 0.2 s)
========================  ==========================================================

A healthy JSON answer is also held back ``tokens × token_delay_s`` (the server's pacing),
so a non-streaming call costs about as long as the stream it replaces. RESET, hangs and
HTTP errors behave the same streamed or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

import orjson
from aiohttp import web

from .faults import Fault, FaultKind
from .wire import Frame, FrameKind, Wire

__all__ = ["Delivery", "format_retry_after"]

JSON_TYPE = "application/json"
SLOW_TOKEN_DELAY_S = 0.2  # SLOW_TOKENS without its own token_delay_s: ~5 tokens/s

_CUT_AFTER_TOKENS = {
    FaultKind.STALL_MID_STREAM,
    FaultKind.INBAND_ERROR_AFTER_FIRST_TOKEN,
    FaultKind.TRUNCATED,
    FaultKind.MALFORMED_JSON,
    FaultKind.MALFORMED_FRAME,
}


class Delivery:
    """Sends answers and failures. ``stopping`` wakes every parked handler on shutdown."""

    def __init__(self, stopping: asyncio.Event, token_delay_s: float) -> None:
        self.stopping = stopping
        self.token_delay_s = token_delay_s

    # -- connection-level failures ------------------------------------------------------

    async def reset(self, request: web.BaseRequest) -> web.StreamResponse:
        """Abort the TCP connection with an RST; the client gets no response at all."""
        _abort_with_rst(request)
        return await self._park_until_cancelled()

    async def hold(self, request: web.BaseRequest) -> web.StreamResponse:
        """Never answer. aiohttp cancels us when the client leaves (handler_cancellation);
        a stopping server drops the connection instead of waiting for the client."""
        await self.stopping.wait()
        _abort_with_rst(request)
        return await self._park_until_cancelled()

    async def _park_until_cancelled(self) -> web.StreamResponse:
        # The aborted transport reports connection_lost on the next loop turn and aiohttp
        # cancels this handler. The timeout only guards against that never happening.
        await asyncio.sleep(30)
        raise asyncio.CancelledError

    # -- HTTP error ---------------------------------------------------------------------

    def http_error(self, wire: Wire, fault: Fault, headers: dict[str, str],
                   request_id: str) -> web.Response:
        body = wire.error_body(fault.status, request_id=request_id,
                               error_type=fault.error_type, code=fault.error_code)
        headers = dict(headers)
        if fault.retry_after is not None:
            headers["retry-after"] = format_retry_after(fault.retry_after)
            headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
        return json_response(body, status=fault.status, headers=headers)

    # -- JSON answers -------------------------------------------------------------------

    async def json(self, request: web.BaseRequest, wire: Wire, body: dict[str, Any],
                   headers: dict[str, str], fault: Fault | None, output_tokens: int,
                   request_id: str) -> web.StreamResponse:
        kind = fault.kind if fault is not None else None
        delay = self._token_delay(fault)
        if delay and output_tokens:
            await asyncio.sleep(delay * output_tokens)
        payload = orjson.dumps(body)
        if kind in (FaultKind.INBAND_ERROR_BEFORE_FIRST_TOKEN,
                    FaultKind.INBAND_ERROR_AFTER_FIRST_TOKEN):
            assert fault is not None
            error = wire.error_body(529 if wire.format == "anthropic" else 500,
                                    request_id=request_id, error_type=fault.error_type,
                                    code=fault.error_code)
            return json_response(error, status=200, headers=headers)
        if kind is FaultKind.MALFORMED_JSON:
            return web.Response(body=wire.malformed_body(), status=200, headers=headers,
                                content_type=JSON_TYPE)
        if kind in (FaultKind.HANG_AFTER_HEADERS, FaultKind.STALL_MID_STREAM,
                    FaultKind.TRUNCATED):
            resp = web.StreamResponse(status=200, headers=headers)
            resp.content_type = JSON_TYPE
            resp.content_length = len(payload)
            await resp.prepare(request)
            if kind is not FaultKind.HANG_AFTER_HEADERS:
                await resp.write(payload[: len(payload) // 2])
            if kind is FaultKind.TRUNCATED:
                if request.transport is not None:
                    request.transport.close()  # FIN after the buffered half-body
                return await self._park_until_cancelled()
            return await self.hold(request)
        return web.Response(body=payload, status=200, headers=headers, content_type=JSON_TYPE)

    # -- streams ------------------------------------------------------------------------

    async def stream(self, request: web.BaseRequest, wire: Wire, frames: list[Frame],
                     headers: dict[str, str], fault: Fault | None) -> web.StreamResponse:
        kind = fault.kind if fault is not None else None
        resp = web.StreamResponse(status=200, headers={
            **headers, "content-type": wire.stream_content_type, "cache-control": "no-cache",
        })
        await resp.prepare(request)
        if kind is FaultKind.HANG_AFTER_HEADERS:
            return await self.hold(request)

        cut = len(frames)
        if kind is FaultKind.INBAND_ERROR_BEFORE_FIRST_TOKEN:
            cut = next((i for i, f in enumerate(frames) if f.kind is not FrameKind.START), cut)
        elif kind is FaultKind.NO_TERMINATOR:
            cut = next((i for i, f in enumerate(frames) if f.kind is FrameKind.END), cut)
        elif kind in _CUT_AFTER_TOKENS:
            assert fault is not None
            cut = _cut_after_tokens(frames, fault.after_tokens,
                                    "token" if kind is FaultKind.MALFORMED_FRAME else fault.cut_at)

        delay = self._token_delay(fault)
        for frame in frames[:cut]:
            if frame.kind is FrameKind.TOKEN and delay:
                await asyncio.sleep(delay)
            await resp.write(frame.data)

        if kind is None or kind is FaultKind.SLOW_TOKENS:
            await resp.write_eof()
            return resp
        assert fault is not None
        if kind is FaultKind.MALFORMED_FRAME:  # one bad frame, then the answer goes on
            await resp.write(wire.malformed_frame())
            for frame in frames[cut:]:
                if frame.kind is FrameKind.TOKEN and delay:
                    await asyncio.sleep(delay)
                await resp.write(frame.data)
            await resp.write_eof()
            return resp
        if fault.cut_at == "mid_token" and cut < len(frames) and frames[cut].kind is FrameKind.TOKEN:
            await resp.write(half_token(frames[cut].data))
        if kind is FaultKind.STALL_MID_STREAM:
            return await self.hold(request)
        if kind in (FaultKind.INBAND_ERROR_BEFORE_FIRST_TOKEN,
                    FaultKind.INBAND_ERROR_AFTER_FIRST_TOKEN):
            await resp.write(wire.inband_error_frame(error_type=fault.error_type, message=None))
        elif kind is FaultKind.MALFORMED_JSON:
            await resp.write(wire.malformed_frame())
        # TRUNCATED, NO_TERMINATOR (and the two above): end the body cleanly, then close.
        resp.force_close()
        await resp.write_eof()
        return resp

    def _token_delay(self, fault: Fault | None) -> float:
        if fault is not None and fault.kind is FaultKind.SLOW_TOKENS:
            return fault.token_delay_s if fault.token_delay_s is not None else SLOW_TOKEN_DELAY_S
        return self.token_delay_s


def json_response(body: Any, *, status: int, headers: dict[str, str]) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type=JSON_TYPE)


def format_retry_after(seconds: float) -> str:
    """Integral seconds print without a fraction ("30"), as real providers send them."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _cut_after_tokens(frames: list[Frame], after_tokens: int, cut_at: str = "token") -> int:
    """Index of the first frame *not* sent once ``after_tokens`` tokens (or all there are)
    have gone out: the next content or closing frame ("token", "mid_token"); past the
    closing frames that follow ("close"); past those and the next block's opening ("open")."""
    total = sum(1 for f in frames if f.kind is FrameKind.TOKEN)
    wanted = min(after_tokens, total)
    stops = _CUT_STOPS.get(cut_at, _CUT_STOPS["token"])
    seen = 0
    for i, frame in enumerate(frames):
        if seen >= wanted and frame.kind in stops:
            return i
        if frame.kind is FrameKind.TOKEN:
            seen += 1
    return len(frames)


_CUT_STOPS = {
    "token": frozenset({FrameKind.TOKEN, FrameKind.CLOSE, FrameKind.END}),
    "close": frozenset({FrameKind.TOKEN, FrameKind.OPEN, FrameKind.END}),
    "open": frozenset({FrameKind.TOKEN, FrameKind.END}),
}


def half_token(data: bytes) -> bytes:
    """A token frame re-encoded with the first half of its text (a cut in mid-word): the
    text of an Anthropic ``text_delta``/``input_json_delta`` or an OpenAI content/arguments
    delta, whichever it carries."""
    lines = data.decode().split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    obj = orjson.loads(lines[at][6:])
    holder, key = _token_text(obj)
    text = holder[key]
    holder[key] = text[: max(1, (len(text) + 1) // 2)]
    lines[at] = "data: " + orjson.dumps(obj).decode()
    return "\n".join(lines).encode()


def _token_text(obj: dict[str, Any]) -> tuple[dict[str, Any], str]:
    delta = obj.get("delta")
    if isinstance(delta, dict):  # Anthropic
        return delta, "text" if "text" in delta else "partial_json"
    delta = obj["choices"][0]["delta"]
    if delta.get("content"):
        return delta, "content"
    return delta["tool_calls"][0]["function"], "arguments"


def _abort_with_rst(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
