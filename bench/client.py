"""A small closed-loop HTTP/1.1 client for what wrk cannot see: streams and outages.

Each of N workers keeps one keep-alive connection and sends the same POST again and again,
for a bounded time and a bounded count. Per request it records, relative to sending:

  ttfb   first byte of the response (status line)
  ttft   first byte of the first content token (an Anthropic ``text_delta`` or an OpenAI
         delta with non-empty ``content``); for a JSON answer, the whole body
  ttlb   last byte of the body

and whether the answer is one a client would accept: status 200, and for a stream its
terminal event (``message_stop`` / ``data: [DONE]``) with no in-band error, for JSON a body
with its content. Anything else is an error of a named kind (``status_529``, ``timeout``,
``reset``, ``inband_error``, ``incomplete``, ``bad_body``…).

Raw asyncio streams rather than aiohttp so the client adds little and parses nothing it
does not need; the measurement is of the server, not of a client library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

TOKEN_RE = {
    "anthropic": re.compile(rb'"text_delta"'),
    "openai": re.compile(rb'"content"\s*:\s*"[^"]'),
}
TERMINAL_RE = {
    "anthropic": re.compile(rb"message_stop"),
    "openai": re.compile(rb"data:\s*\[DONE\]"),
}
ERROR_RE = {
    "anthropic": re.compile(rb'event:\s*error|"type"\s*:\s*"error"'),
    "openai": re.compile(rb'data:\s*\{\s*"error"'),
}


@dataclass(slots=True)
class Sample:
    start: float  # seconds since the run began
    ok: bool
    kind: str  # "ok" or the error kind
    status: int = 0
    ttfb: float | None = None  # seconds
    ttft: float | None = None
    ttlb: float | None = None
    elapsed: float = 0.0  # until the answer or the failure, seconds


class Failure(Exception):
    def __init__(self, kind: str, status: int = 0) -> None:
        super().__init__(kind)
        self.kind = kind
        self.status = status


@dataclass
class Job:
    url: str  # http://127.0.0.1:PORT/v1/messages
    body: bytes
    fmt: str  # "anthropic" | "openai"
    stream: bool
    headers: dict[str, str] = field(default_factory=dict)
    concurrency: int = 1
    duration_s: float = 3.0
    max_requests: int = 1_000_000  # across all workers
    timeout_s: float = 30.0  # per request, as the client's own deadline

    def request_bytes(self) -> bytes:
        u = urlsplit(self.url)
        path = u.path + (f"?{u.query}" if u.query else "")
        lines = [
            f"POST {path} HTTP/1.1",
            f"host: {u.netloc}",
            "content-type: application/json",
            f"content-length: {len(self.body)}",
            "accept: " + ("text/event-stream" if self.stream else "application/json"),
        ]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


class Conn:
    """One keep-alive connection; reopened after an error or ``connection: close``."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def ensure(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.writer is None or self.writer.is_closing():
            try:
                self.reader, self.writer = await asyncio.open_connection(
                    self.host, self.port, limit=1 << 20
                )
            except OSError:
                raise Failure("connect") from None
        assert self.reader is not None
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None


async def one_request(conn: Conn, job: Job, raw: bytes, t0: float) -> Sample:
    """Send ``raw`` on ``conn`` and read the answer; raises Failure on a client-visible error."""
    reader, writer = await conn.ensure()
    sent = time.perf_counter()
    writer.write(raw)
    s = Sample(start=sent - t0, ok=False, kind="")
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        conn.close()
        raise Failure("reset" if not e.partial else "incomplete") from None
    except asyncio.LimitOverrunError:
        conn.close()
        raise Failure("bad_head") from None
    s.ttfb = time.perf_counter() - sent
    lines = head.decode("latin-1").split("\r\n")
    try:
        s.status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        conn.close()
        raise Failure("bad_head") from None
    length: int | None = None
    chunked = False
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            close = True
    token_re = TOKEN_RE[job.fmt]
    body = bytearray()
    scanned = 0

    def took(data: bytes) -> None:
        nonlocal scanned
        body.extend(data)
        if s.ttft is None and job.stream and s.status == 200:
            if token_re.search(body, max(0, scanned - 64)):
                s.ttft = time.perf_counter() - sent
            scanned = len(body)

    try:
        if chunked:
            while True:
                line = await reader.readuntil(b"\r\n")
                size = int(line.split(b";", 1)[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                took(await reader.readexactly(size))
                await reader.readexactly(2)
        elif length is not None:
            left = length
            while left > 0:
                data = await reader.read(min(left, 65536))
                if not data:
                    raise asyncio.IncompleteReadError(b"", left)
                took(data)
                left -= len(data)
        else:  # delimited by close
            close = True
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                took(data)
    except (asyncio.IncompleteReadError, ConnectionError):
        conn.close()
        raise Failure("incomplete" if s.status == 200 else f"status_{s.status}", s.status) from None
    s.ttlb = time.perf_counter() - sent
    if close:
        conn.close()
    if s.status != 200:
        raise Failure(f"status_{s.status}", s.status)
    data = bytes(body)
    if job.stream:
        if ERROR_RE[job.fmt].search(data):
            raise Failure("inband_error", 200)
        if not TERMINAL_RE[job.fmt].search(data):
            raise Failure("incomplete", 200)
        if s.ttft is None:
            raise Failure("no_content", 200)
    else:
        s.ttft = s.ttlb
        if not _json_has_content(job.fmt, data):
            raise Failure("bad_body", 200)
    s.ok, s.kind = True, "ok"
    return s


def _json_has_content(fmt: str, data: bytes) -> bool:
    try:
        obj = json.loads(data)
        if fmt == "anthropic":
            return obj.get("type") == "message" and bool(obj["content"][0]["text"])
        return bool(obj["choices"][0]["message"]["content"])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return False


async def run(job: Job, *, on_sample: Any = None) -> list[Sample]:
    """Run ``job``; returns every sample (successes and failures), in completion order."""
    u = urlsplit(job.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    raw = job.request_bytes()
    samples: list[Sample] = []
    t0 = time.perf_counter()
    stop_at = t0 + job.duration_s
    budget = [job.max_requests]

    async def worker() -> None:
        conn = Conn(host, port)
        try:
            while time.perf_counter() < stop_at and budget[0] > 0:
                budget[0] -= 1
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(job.timeout_s):
                        s = await one_request(conn, job, raw, t0)
                except Failure as f:
                    s = Sample(started - t0, False, f.kind, f.status)
                except TimeoutError:
                    conn.close()
                    s = Sample(started - t0, False, "timeout")
                except (ConnectionError, OSError):
                    conn.close()
                    s = Sample(started - t0, False, "reset")
                s.elapsed = time.perf_counter() - started
                if not s.ok and s.kind in ("connect",):
                    await asyncio.sleep(0.01)  # a refused connect must not spin the CPU
                samples.append(s)
                if on_sample is not None:
                    on_sample(s)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(job.concurrency)))
    return samples


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summarize(samples: list[Sample], wall_s: float | None = None) -> dict[str, Any]:
    """Counts, error kinds, throughput and ms percentiles of ttfb/ttft/ttlb over ``samples``."""
    ok = [s for s in samples if s.ok]
    errors: dict[str, int] = {}
    for s in samples:
        if not s.ok:
            errors[s.kind] = errors.get(s.kind, 0) + 1
    if wall_s is None:
        ends = [s.start + (s.ttlb or 0) for s in samples]
        wall_s = (max(ends) - min(s.start for s in samples)) if samples else 0.0
    out: dict[str, Any] = {
        "requests": len(samples),
        "ok": len(ok),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "wall_s": round(wall_s, 3),
        "rps": round(len(ok) / wall_s, 1) if wall_s > 0 else 0.0,
    }
    for name in ("ttfb", "ttft", "ttlb"):
        vals = [getattr(s, name) * 1000 for s in ok if getattr(s, name) is not None]
        out[name + "_ms"] = {f"p{q}": _r(percentile(vals, q)) for q in (50, 90, 99)}
        out[name + "_ms"]["max"] = _r(max(vals) if vals else None)
    return out


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def run_job(job: Job) -> dict[str, Any]:
    t = time.perf_counter()
    samples = asyncio.run(run(job))
    return summarize(samples, time.perf_counter() - t)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("--format", choices=("anthropic", "openai"), required=True)
    ap.add_argument("--body-file", required=True)
    ap.add_argument("--header", action="append", default=[], help="'name: value', repeatable")
    ap.add_argument("--concurrency", "-c", type=int, default=1)
    ap.add_argument("--duration", "-d", type=float, default=3.0)
    ap.add_argument("--max-requests", type=int, default=1_000_000)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--samples-out", help="also write every sample as JSON lines here")
    a = ap.parse_args(argv)
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    with open(a.body_file, "rb") as f:
        body = f.read()
    headers = dict(h.split(":", 1) for h in a.header)
    job = Job(
        a.url,
        body,
        a.format,
        b'"stream": true' in body or b'"stream":true' in body,
        {k.strip(): v.strip() for k, v in headers.items()},
        a.concurrency,
        a.duration,
        a.max_requests,
        a.timeout,
    )
    t = time.perf_counter()
    samples = asyncio.run(run(job))
    result = summarize(samples, time.perf_counter() - t)
    if a.samples_out:
        with open(a.samples_out, "w") as f:
            f.writelines(json.dumps(asdict(s)) + "\n" for s in samples)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
