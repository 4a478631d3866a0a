"""The tiers past the live targets: cached answers, then a clear static answer.

Where they sit in a route's ladder (cloud → cache → local → static) is the plan's
business: routing/plan.py ``Tier``. With cache mode ``always`` a fresh exact hit is served
*before* the live targets. Every cache
call runs on one worker thread so SQLite and the embedding model never block the loop, and
a cache that fails answers "miss" (the resilience layer must never be the outage).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ridethrough.routing.request import InboundRequest

log = logging.getLogger("ridethrough.fallback")

STORE_BATCH_DELAY_S = 0.02
EMBED_QUEUE = 256  # questions waiting for the background embedder; past it, not embedded
MAX_PENDING_STORES = 4096  # answers waiting for the next batch; past it, new ones are skipped


@dataclass(slots=True)
class FallbackResult:
    """An answer that did not come from a live target, already in the client's format."""

    obj: dict[str, Any]
    tier: str                         # "cache" | "stale" | "semantic" | "static"
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def served_by(self) -> str:
        return "static" if self.tier == "static" else "cache"


def static_answer(fmt: str, text: str, route: str) -> dict[str, Any]:
    if fmt == "anthropic":
        return {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
                "content": [{"type": "text", "text": text}], "model": route,
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0}}
    return {"id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion",
            "created": int(time.time()), "model": route,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


class Tiers:
    def __init__(self, cache: Any | None, wall_clock: Callable[[], float] = time.time) -> None:
        self.cache = cache
        self.wall_clock = wall_clock
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ridethrough-cache")
        self._pending: list[tuple[InboundRequest, dict[str, Any]]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        # Stores write at once; the semantic tier's embedding runs on its own thread, bounded.
        start_embedder = getattr(cache, "embed_in_background", None)
        if start_embedder is not None:
            start_embedder(EMBED_QUEUE)

    def warm(self) -> None:
        """Load the embedding model in the background, not on the first outage."""
        index = getattr(self.cache, "semantic", None)
        if index is not None:
            self._pool.submit(index.warm)

    def close(self) -> None:
        if self._pending:
            self._store_batch(self._pending)
            self._pending = []
        self._pool.shutdown(wait=True, cancel_futures=False)
        if self.cache is not None:
            self.cache.close()

    def _usable(self, req: InboundRequest) -> bool:
        return self.cache is not None and req.route.cache.mode != "off" and not req.no_store

    async def _call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, lambda: fn(*args, **kw))
        except Exception:  # the cache itself swallows its errors; this is a last guard
            log.exception("cache call failed")
            return None

    async def stats(self) -> dict[str, Any] | None:
        """The cache's counters (lookups, semantic embeddings and rejections) for /metrics,
        read on the cache's own thread; None without a cache."""
        if self.cache is None:
            return None
        result: dict[str, Any] | None = await self._call(self.cache.stats)
        return result

    async def before_live(self, req: InboundRequest) -> FallbackResult | None:
        """Cache mode ``always``: a fresh exact hit is served without asking a provider."""
        if req.route.cache.mode != "always":
            return None
        return await self._lookup(req, allow_stale=False,
                                  semantic=req.route.semantic_cache.mode == "always")

    async def cached_after_failure(self, req: InboundRequest) -> FallbackResult | None:
        """Every cloud target failed: an exact hit (stale allowed), else a semantic one."""
        return await self._lookup(req, allow_stale=True, semantic=True)

    async def _lookup(self, req: InboundRequest, *, allow_stale: bool,
                      semantic: bool) -> FallbackResult | None:
        if not self._usable(req) or self.cache is None:
            return None
        entry = await self._call(self.cache.lookup, req.route_name, req.route.cache, req.format,
                                 req.body, req.key_id, allow_stale=allow_stale,
                                 default_max_tokens=req.route.default_max_tokens)
        if entry is None and semantic and req.route.semantic_cache.enabled:
            entry = await self._semantic(req, allow_stale=allow_stale)
        return self._from_entry(req, entry) if entry is not None else None

    def static(self, req: InboundRequest) -> FallbackResult | None:
        """The last tier: the route's configured answer, so the host application keeps working."""
        if req.route.static_answer:
            return FallbackResult(static_answer(req.format, req.route.static_answer, req.route_name),
                                  "static", {"x-ridethrough-degraded": "static"})
        return None

    async def _semantic(self, req: InboundRequest, allow_stale: bool) -> Any:
        assert self.cache is not None  # _lookup checked
        return await self._call(self.cache.lookup_semantic, req.route_name, req.route.semantic_cache,
                                req.route.cache, req.format, req.body, req.key_id,
                                allow_stale=allow_stale, default_max_tokens=req.route.default_max_tokens)

    def _from_entry(self, req: InboundRequest, entry: Any) -> FallbackResult:
        from ridethrough.protocols.synthesize import with_fresh_ids

        obj = with_fresh_ids(entry.in_format(req.format), req.format)
        age = int(entry.age(self.wall_clock()))
        if entry.kind == "semantic":
            tier, state = "semantic", "semantic"
        else:
            tier, state = ("stale", "stale") if entry.stale else ("cache", "hit")
        headers = {"x-ridethrough-cache": state, "age": str(age)}
        if entry.similarity is not None:
            headers["x-ridethrough-cache-similarity"] = f"{entry.similarity:.3f}"
        if entry.kind == "semantic":
            from ridethrough.cache.disclosure import match_header, with_note

            headers["x-ridethrough-semantic-match"] = match_header(entry.question,
                                                                   entry.similarity or 0.0)
            scfg = req.route.semantic_cache
            if scfg.disclose:
                obj = with_note(obj, req.format, scfg.disclose_note)
        if tier != "cache":
            headers["x-ridethrough-degraded"] = tier
        return FallbackResult(obj, tier, headers)

    def remember(self, req: InboundRequest, response: dict[str, Any] | None) -> None:
        """Store a successful live answer, off the hot path.

        Stores are batched and handed to the cache thread a moment later, after the response
        has been written: waking that thread per request made it compete with the response
        for the interpreter (profiled: a third of the CPU per request at 16 connections).
        """
        if response is None or not self._usable(req):
            return
        if len(self._pending) >= MAX_PENDING_STORES:
            return  # the cache thread is far behind: skip rather than grow without bound
        self._pending.append((req, response))
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(STORE_BATCH_DELAY_S, self._flush)

    def _flush(self) -> None:
        batch, self._pending, self._flush_handle = self._pending, [], None
        self._pool.submit(self._store_batch, batch)

    def flush_now(self) -> concurrent.futures.Future[None]:
        """Hand every pending store to the cache thread; the future resolves once stored
        (and, for the semantic cache, embedded)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        batch, self._pending, self._flush_handle = self._pending, [], None

        def store_and_embed() -> None:
            self._store_batch(batch)
            wait = getattr(self.cache, "wait_for_embeddings", None)
            if wait is not None:
                wait()

        return self._pool.submit(store_and_embed)

    def _store_batch(self, batch: list[tuple[InboundRequest, dict[str, Any]]]) -> None:
        if not batch or self.cache is None:
            return
        try:
            self.cache.store_many([
                {"route": req.route_name, "cfg": req.route.cache, "fmt": req.format,
                 "body": req.body, "key_id": req.key_id, "response": response,
                 "response_fmt": req.format, "semantic": req.route.semantic_cache,
                 "default_max_tokens": req.route.default_max_tokens}
                for req, response in batch])
        except Exception:
            log.exception("cache store failed")
