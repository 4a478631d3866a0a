"""The shared HTTP machinery of every remote provider: one pooled aiohttp session each.

Foreign errors (aiohttp, asyncio timeouts, OS errors) are translated into ``UpstreamError``
in exactly one place, ``_translated`` (also as the context manager ``_translate_errors``;
the hot calls use it inline, one ``try`` and one timeout per exchange); status codes and
provider error bodies are classified by each subclass's ``classify``. Our own concurrency cap turns into
LOCAL_SATURATION, which never counts against the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp

from ridethrough.config import Format, ProviderConfig
from ridethrough.errors import ErrorClass, UpstreamError
from ridethrough.protocols.sse import SSEEvent, SSEParser
from ridethrough.providers.base import ResolvedCapabilities, UpstreamCall, UpstreamResponse
from ridethrough.providers.headers import filter_response_headers, upstream_request_id
from ridethrough.redact import redact, redact_text

_FOREIGN = (TimeoutError, aiohttp.ClientError, ConnectionError, OSError)


def _translated(e: BaseException, target: str, phase: str) -> UpstreamError:
    """An aiohttp/asyncio/OS error (one of ``_FOREIGN``) as an UpstreamError.
    ``phase`` is "headers" or "body"."""
    if isinstance(e, TimeoutError):
        cls = ErrorClass.TIMEOUT if phase == "headers" else ErrorClass.IDLE_TIMEOUT
        return UpstreamError(cls, f"no {'response' if phase == 'headers' else 'data'} in time",
                             target=target)
    if isinstance(e, aiohttp.ClientPayloadError):
        return UpstreamError(ErrorClass.TRUNCATED, f"response cut short: {type(e).__name__}",
                             target=target)
    if isinstance(e, (aiohttp.ClientConnectionError, ConnectionError, OSError)):
        return UpstreamError(ErrorClass.CONNECT, f"connection failed: {type(e).__name__}",
                             target=target)
    return UpstreamError(ErrorClass.CONNECT, f"HTTP client error: {type(e).__name__}",
                         target=target)


@contextlib.asynccontextmanager
async def _translate_errors(target: str, phase: str) -> AsyncIterator[None]:
    try:
        yield
    except UpstreamError:
        raise
    except _FOREIGN as e:
        raise _translated(e, target, phase) from None


async def _read_body(resp: aiohttp.ClientResponse, idle: float) -> bytes:
    """A JSON answer's body, where headers followed by silence longer than ``idle`` is a
    stall (IDLE_TIMEOUT), not a slow answer: a healthy server sends the body with its headers."""
    chunks: list[bytes] = []
    while True:
        async with asyncio.timeout(idle):
            chunk = await resp.content.readany()
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class HttpStream:
    """An open upstream SSE response, read frame by frame under an idle timeout."""

    def __init__(self, provider: HttpProvider, resp: aiohttp.ClientResponse) -> None:
        self._provider = provider
        self._resp = resp
        self._parser = SSEParser()
        self._closed = False
        self.headers = filter_response_headers(resp.headers.items())
        self.request_id = upstream_request_id({k.lower(): v for k, v in resp.headers.items()})

    async def read(self, timeout: float) -> list[SSEEvent] | None:
        if self._closed:
            return None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    chunk = await self._resp.content.readany()
                    if not chunk:
                        rest = self._parser.flush()
                        await self.aclose()
                        return rest or None
                    events = self._parser.feed(chunk)
                    if events:
                        return events
        except _FOREIGN as e:
            raise _translated(e, self._provider.name, "body") from None

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._resp.close()
            self._provider._release()


class HttpProvider:
    """Base of the remote adapters; subclasses set ``format``, paths, auth and classify."""

    kind = "http"
    format: Format = "openai"
    chat_path = "/chat/completions"
    default_caps = ResolvedCapabilities()

    def __init__(self, name: str, cfg: ProviderConfig, base_url: str | None = None) -> None:
        self.name = name
        self.cfg = cfg
        self.base_url = (base_url or cfg.base_url or "").rstrip("/")
        self.api_key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
        self.unavailable_reason: str | None = None
        if cfg.api_key_env and not self.api_key:
            self.unavailable_reason = f"{cfg.api_key_env} is not set"
        elif cfg.kind in ("anthropic", "openai") and not cfg.api_key_env and not cfg.base_url:
            self.unavailable_reason = "no api_key_env configured for the provider's own API"
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(cfg.max_concurrency)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.cfg.max_connections, limit_per_host=self.cfg.max_connections,
            ttl_dns_cache=300, enable_cleanup_closed=True, keepalive_timeout=30,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.cfg.timeouts.connect),
            auto_decompress=True, skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- what subclasses define ------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {}

    def classify(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        raise NotImplementedError

    def classify_stream_error(self, data: dict[str, Any]) -> UpstreamError:
        raise NotImplementedError

    def capabilities(self, model: str) -> ResolvedCapabilities:
        return self.default_caps.merged(self.cfg.capabilities)

    counts_tokens = False  # no tokenizer here: the planner's estimate decides

    def fits(self, messages: str | Sequence[Any], max_output: int) -> bool | None:
        return None

    def forward_path(self, path: str) -> str:
        """The upstream path for a client's /v1/... path (base URLs differ on the /v1)."""
        return path

    # -- requests --------------------------------------------------------------------------

    def _headers(self, call_headers: dict[str, str]) -> dict[str, str]:
        h = {"content-type": "application/json", "accept-encoding": "gzip, deflate"}
        h.update(self.cfg.headers)
        h.update(call_headers)
        h.update(self.auth_headers())
        return h

    async def _acquire(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: taken at once, no timer needed
            return
        try:
            async with asyncio.timeout(self.cfg.pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise UpstreamError(
                ErrorClass.LOCAL_SATURATION,
                f"ridethrough's own concurrency cap for {self.name} is exhausted",
                target=self.name,
            ) from None

    def _release(self) -> None:
        self._slots.release()

    async def _post(self, path: str, call: UpstreamCall, timeout: float) -> aiohttp.ClientResponse:
        assert self._session is not None, "provider not started"
        try:
            async with asyncio.timeout(timeout):
                return await self._session.post(
                    self.base_url + path, data=call.body, headers=self._headers(call.headers),
                )
        except _FOREIGN as e:
            raise _translated(e, self.name, "headers") from None

    async def _fail_from(self, resp: aiohttp.ClientResponse, timeout: float) -> UpstreamError:
        headers = {k.lower(): v for k, v in resp.headers.items()}
        try:
            async with asyncio.timeout(min(timeout, 10.0)):
                body = await resp.read()
        except (TimeoutError, aiohttp.ClientError):
            body = b""
        finally:
            resp.close()
        err = self.classify(resp.status, redact(body, self.api_key), headers)
        return err.reclassified(target=self.name, message=redact_text(err.message, self.api_key))

    async def complete(self, call: UpstreamCall) -> UpstreamResponse:
        await self._acquire()
        try:
            # ``total`` bounds the whole exchange, headers and body together: one timer.
            total = call.deadline.cap(call.timeouts.total)
            assert self._session is not None, "provider not started"
            resp: aiohttp.ClientResponse | None = None
            body = b""
            try:
                async with asyncio.timeout(total):
                    resp = await self._session.post(
                        self.base_url + self.chat_path, data=call.body,
                        headers=self._headers(call.headers))
                    if resp.status == 200:
                        body = await _read_body(resp, call.timeouts.idle)
            except BaseException as e:
                if resp is not None:
                    resp.close()  # a half-read body: this connection cannot be reused
                if isinstance(e, _FOREIGN):
                    raise _translated(e, self.name, "headers" if resp is None else "body") from None
                raise
            if resp.status != 200:
                # Read outside the exchange's timer: an error is classified by its status,
                # never turned into a timeout by a slow error body.
                raise await self._fail_from(resp, call.deadline.remaining())
            headers = {k.lower(): v for k, v in resp.headers.items()}
            return UpstreamResponse(200, body, filter_response_headers(headers.items()),
                                    upstream_request_id(headers))
        finally:
            self._release()

    async def open_stream(self, call: UpstreamCall) -> HttpStream:
        await self._acquire()
        try:
            resp = await self._post(self.chat_path, call, call.deadline.cap(call.timeouts.first_byte))
            if resp.status != 200:
                raise await self._fail_from(resp, call.deadline.remaining())
            if "text/event-stream" not in resp.headers.get("content-type", ""):
                # Some servers answer a stream request with a JSON error and status 200.
                err = await self._fail_from(resp, call.deadline.remaining())
                if err.error_class is ErrorClass.CLIENT:
                    raise err.reclassified(ErrorClass.MALFORMED)
                raise err
        except BaseException:
            self._release()
            raise
        return HttpStream(self, resp)

    async def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes, timeout: float
    ) -> UpstreamResponse:
        assert self._session is not None, "provider not started"
        h = dict(headers)
        for k, v in self.auth_headers().items():
            if k.startswith("anthropic-") and k in h:
                continue  # the client's own API version and betas win, as on the chat path
            h[k] = v
        async with _translate_errors(self.name, "headers"):
            async with asyncio.timeout(timeout):
                url = self.base_url + self.forward_path(path)
                async with self._session.request(method, url, data=body or None,
                                                 headers=h) as resp:
                    data = await resp.read()
                    if resp.status >= 400:
                        data = redact(data, self.api_key)
                    raw = {k.lower(): v for k, v in resp.headers.items()}
                    return UpstreamResponse(resp.status, data, filter_response_headers(raw.items()),
                                            upstream_request_id(raw))
