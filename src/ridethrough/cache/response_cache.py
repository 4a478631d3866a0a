"""The response cache the gateway calls: exact, stale-if-error and semantic lookups, stores.

"The resilience layer must never be the outage." Every public method runs its storage work
through :meth:`ResponseCache._guarded`, the one place where failure is translated: whatever
goes wrong — file deleted, overwritten with junk, locked by another process, disk full, a bug
— the method returns ``None`` (or does nothing), ``healthy`` turns False, ``last_error`` says
why, the logger ``ridethrough.cache`` warns once per error streak, and a later call reopens
(or, for a corrupt file, moves it aside and recreates) the database. Nothing here raises.

Methods block (SQLite, and the embedding model on semantic paths). The gateway calls them
from a worker thread (``asyncio.to_thread``); an internal lock makes that safe.

Lookups only read. What they learn (an entry was used, an entry has expired) is written with
the next store, so a lookup never waits on another process's write lock.

Embedding a question costs milliseconds of CPU per answer, paid while the clouds are healthy
for a tier used only in an outage. With ``embed_queue`` set (the gateway sets it) a store
writes the answer at once and hands the question to one background embedder through a
bounded queue; when the queue is full the question is not embedded (counted in
``semantic_embed_dropped``): the exact cache still has the answer, and no request ever waits.
"""

from __future__ import annotations

import functools
import logging
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import orjson

from ridethrough.config import CacheConfig, SemanticCacheConfig

from .disclosure import question_visible, redact_question
from .entry import CacheEntry
from .guards import fingerprint
from .keys import canonical_request, request_key, scope_of, semantic_query
from .semantic import SemanticIndex
from .store import CacheDB, is_contention, is_corruption, quarantine

__all__ = ["ResponseCache"]

log = logging.getLogger("ridethrough.cache")

T = TypeVar("T")

_SWEEP_INTERVAL_S = 60.0      # retention purge at most this often (it is one indexed DELETE)
_PENDING_FLUSH = 1024
_FILE_CHECK_INTERVAL_S = 0.5         # lookups flush deferred touches themselves past this many


class _Keyed(NamedTuple):
    key: str
    scope: str
    canonical: dict[str, Any]


class ResponseCache:
    """Exact and semantic response cache over one SQLite file (``None``: in memory).

    ``clock`` gives wall-clock seconds; tests inject one, and it also paces reopen attempts
    (first retry at once, then backing off from ``reopen_backoff_s`` to 30 s).
    """

    def __init__(
        self,
        path: str | Path | None,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 256 * 2**20,
        clock: Callable[[], float] = time.time,
        semantic: SemanticIndex | None = None,
        busy_timeout_s: float = 0.25,
        reopen_backoff_s: float = 1.0,
        embed_queue: int | None = None,
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else None
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.semantic = semantic
        self.healthy = True
        self.last_error: str | None = None
        self._busy_timeout_s = busy_timeout_s
        self._backoff_min = reopen_backoff_s
        self._backoff = 0.0
        self._retry_at = float("-inf")
        self._db: CacheDB | None = None
        self._corrupt = False
        self._closed = False
        self._next_sweep = float("-inf")
        self._touched: dict[int, float] = {}
        self._expired: dict[int, float] = {}  # id -> the stored_at found expired
        self._lock = threading.RLock()
        self._estimate: list[int] | None = None
        self._estimate_db: CacheDB | None = None
        self._counts: Counter[str] = Counter()
        self._embed_jobs: queue.Queue[tuple[str, str, str, dict[str, Any], Any] | None] | None = None
        self._embedder_thread: threading.Thread | None = None
        if embed_queue is not None:
            self.embed_in_background(embed_queue)
        self._guarded("open", lambda db: None, None)  # fail early in the log, not in a request

    # -- public API ------------------------------------------------------------------------------

    def lookup(
        self,
        route: str,
        cfg: CacheConfig,
        fmt: str,
        body: dict[str, Any],
        key_id: str | None,
        *,
        allow_stale: bool,
        default_max_tokens: int | None = None,
    ) -> CacheEntry | None:
        """The stored answer to this exact (normalized) request, or ``None``.

        Fresh means ``age <= cfg.ttl_s``; with ``allow_stale`` (every provider failed) entries
        up to ``ttl_s + stale_ttl_s`` old are served too, flagged ``stale``. Never older.
        """
        if cfg.mode == "off" or self._closed:
            return None
        return self._guarded("lookup", lambda db: self._lookup(
            db, route, cfg, fmt, body, key_id, allow_stale, default_max_tokens), None)

    def lookup_semantic(
        self,
        route: str,
        scfg: SemanticCacheConfig,
        cfg: CacheConfig,
        fmt: str,
        body: dict[str, Any],
        key_id: str | None,
        *,
        allow_stale: bool | None = None,
        default_max_tokens: int | None = None,
    ) -> CacheEntry | None:
        """An answer to a question that means the same, in the same context, or ``None``.

        ``allow_stale`` defaults to the semantic mode: a ``fallback-only`` lookup happens when
        every provider failed, so it may serve up to ``ttl_s + stale_ttl_s``; an ``always``
        lookup stands in for a live answer and serves only fresh entries.
        """
        if not scfg.enabled or cfg.mode == "off" or self.semantic is None or self._closed:
            return None
        stale_ok = scfg.mode == "fallback-only" if allow_stale is None else allow_stale
        try:
            canonical = canonical_request(fmt, body, default_max_tokens=default_max_tokens)
            query = semantic_query(route, scope_of(cfg, key_id), canonical)
            if query is None or not self.semantic.eligible(query.text):
                return None
            vector = self.semantic.embed(query.text)
        except Exception as e:
            self._record_bad_input("semantic lookup", e)
            return None
        if vector is None:
            self._count("semantic_misses")
            return None
        now = self.clock()
        window = cfg.ttl_s + (cfg.stale_ttl_s if stale_ok else 0.0)
        index = self.semantic
        candidates = self._guarded("semantic lookup", lambda db: db.candidates(
            query.space, index.model, now - window, index.max_candidates), None)
        match = None
        obj: dict[str, Any] = {}
        if candidates:
            try:
                match = index.best_match(vector, fingerprint(query.text, query.turns),
                                         candidates, scfg.threshold)
                if match is not None:
                    obj = orjson.loads(match[0].response)
            except Exception as e:
                self._record_bad_input("semantic lookup", e)
                match = None
        if match is None:
            self._count("semantic_misses")
            return None
        candidate, similarity = match
        self._count("semantic_hits")
        with self._lock:
            self._touched[candidate.id] = now
        # Only a named key's own question is shown: a shared scope's, or the one scope every
        # caller of a gateway without keys falls into, may be another caller's.
        question = candidate.question if question_visible(candidate.scope) else None
        return CacheEntry(obj, candidate.fmt, candidate.stored_at, "semantic", similarity,
                          stale=now - candidate.stored_at > cfg.ttl_s, question=question)

    def store(
        self,
        route: str,
        cfg: CacheConfig,
        fmt: str,
        body: dict[str, Any],
        key_id: str | None,
        response: dict[str, Any],
        response_fmt: str,
        *,
        semantic: SemanticCacheConfig | None = None,
        default_max_tokens: int | None = None,
    ) -> None:
        """Keep a complete answer. Errors and unfinished answers are not stored.

        The question is also embedded for the semantic cache when an index is configured and
        ``semantic`` is None or enabled (pass the route's config to skip disabled routes).
        """
        self.store_many([{"route": route, "cfg": cfg, "fmt": fmt, "body": body, "key_id": key_id,
                          "response": response, "response_fmt": response_fmt,
                          "semantic": semantic, "default_max_tokens": default_max_tokens}])

    def store_many(self, items: list[dict[str, Any]]) -> None:
        """Several ``store`` calls (their keyword arguments) in one transaction: the gateway
        batches its stores, and a COMMIT per answer was most of the cache's cost.

        Within a batch only the last answer to a question is written: the earlier ones would
        be replaced inside the same transaction, so their serialising, embedding and writing
        would be wasted (popular questions arrive many times in one batch window).
        """
        latest: dict[str, tuple[dict[str, Any], _Keyed]] = {}
        for item in items:
            keyed = self._keyed(item)
            if keyed is not None:
                latest.pop(keyed.key, None)  # re-insert: keep the batch's order of last arrival
                latest[keyed.key] = (item, keyed)
        writes = [w for w in (self._prepare_store(item, keyed) for item, keyed in latest.values())
                  if w is not None]
        if not writes:
            return

        def write_all(db: CacheDB) -> None:
            with db._transaction():  # the writes' own transactions nest into this one
                for write in writes:
                    write(db)

        self._guarded("store", write_all, None)

    def _keyed(self, item: dict[str, Any]) -> _Keyed | None:
        """Where a ``store`` item's answer would be stored, or None when it is not to be."""
        cfg: CacheConfig = item["cfg"]
        if cfg.mode == "off" or self._closed or not _is_complete(item["response"], item["response_fmt"]):
            return None
        try:
            scope = scope_of(cfg, item["key_id"])
            canonical = canonical_request(item["fmt"], item["body"],
                                          default_max_tokens=item.get("default_max_tokens"))
            return _Keyed(request_key(item["route"], scope, canonical), scope, canonical)
        except Exception as e:
            self._record_bad_input("store", e)
            return None

    def _prepare_store(self, item: dict[str, Any], keyed: _Keyed) -> Callable[[CacheDB], None] | None:
        """The write for one ``store`` item (the CPU part done here, outside the lock), or None."""
        route, cfg, response_fmt = item["route"], item["cfg"], item["response_fmt"]
        key, scope = keyed.key, keyed.scope
        deferred = self._embed_jobs is not None
        try:
            payload = orjson.dumps(item["response"])
            vector_row = None if deferred else self._vector_row(route, scope, keyed.canonical,
                                                                item.get("semantic"))
        except Exception as e:
            self._record_bad_input("store", e)
            return None
        if len(payload) > self.max_bytes:
            return None
        now = self.clock()

        def write(db: CacheDB) -> None:
            self._flush_pending(db)
            if now >= self._next_sweep:
                db.purge_expired(now)
                self._next_sweep = now + _SWEEP_INTERVAL_S
            db.put(key=key, route=route, scope=scope, fmt=response_fmt, response=payload,
                   stored_at=now, expires_at=now + cfg.ttl_s + cfg.stale_ttl_s,
                   vector=vector_row)
            # Counting the table on every store cost more than the store itself. Track an
            # upper bound instead (a replaced key is counted twice), and count exactly only
            # when that bound crosses a limit.
            if self._estimate is None or self._estimate_db is not db:
                self._estimate, self._estimate_db = list(db.totals()), db
            else:
                self._estimate[0] += 1
                self._estimate[1] += len(payload)
            if self._estimate[0] > self.max_entries or self._estimate[1] > self.max_bytes:
                db.enforce_limits(self.max_entries, self.max_bytes)
                self._estimate = list(db.totals())
            self._count("stores")
            if deferred:
                self._queue_embedding(key, route, scope, keyed.canonical, item.get("semantic"))

        return write

    def embed_in_background(self, queue_size: int) -> None:
        """From now on, stores embed their questions on a background thread (idempotent)."""
        if self.semantic is None or self._embedder_thread is not None or self._closed:
            return
        self._embed_jobs = queue.Queue(maxsize=queue_size)
        self._embedder_thread = threading.Thread(
            target=self._embed_in_background, name="ridethrough-embed", daemon=True)
        self._embedder_thread.start()

    def _queue_embedding(self, key: str, route: str, scope: str, canonical: dict[str, Any],
                         scfg: SemanticCacheConfig | None) -> None:
        if self._embed_jobs is None or self.semantic is None or (scfg is not None
                                                                 and not scfg.enabled):
            return
        try:
            self._embed_jobs.put_nowait((key, route, scope, canonical, scfg))
        except queue.Full:
            self._count("semantic_embed_dropped")

    def _embed_in_background(self) -> None:
        """The embedder thread: one question at a time, so a lookup in an outage waits for
        at most one encode on the model's lock."""
        jobs = self._embed_jobs
        assert jobs is not None
        while True:
            job = jobs.get()
            try:
                if job is None:
                    return
                key, route, scope, canonical, scfg = job
                try:
                    row = self._vector_row(route, scope, canonical, scfg)
                except Exception as e:
                    self._record_bad_input("embed", e)
                    continue
                if row is not None:
                    self._guarded("store vector",
                                  functools.partial(CacheDB.put_vector, key=key, vector=row), False)
                    self._count("semantic_embedded")
            finally:
                jobs.task_done()

    def wait_for_embeddings(self) -> None:
        """Block until every queued question is embedded (tests, shutdown)."""
        if self._embed_jobs is not None and self._embedder_thread is not None \
                and self._embedder_thread.is_alive():
            self._embed_jobs.join()

    def stats(self) -> dict[str, Any]:
        """Counters and health for the status page and /metrics."""
        def totals(db: CacheDB) -> tuple[int, int]:
            self._flush_pending(db)
            return db.totals()

        found = None if self._closed else self._guarded("stats", totals, None)
        index = self.semantic
        return {
            "entries": found[0] if found else None,
            "bytes": found[1] if found else None,
            "hits": self._counts["hits"],
            "stale_hits": self._counts["stale_hits"],
            "misses": self._counts["misses"],
            "semantic_hits": self._counts["semantic_hits"],
            "semantic_misses": self._counts["semantic_misses"],
            "semantic_rejections": dict(index.rejections) if index else {},
            "semantic_available": index.available if index else False,
            "semantic_embedded": self._counts["semantic_embedded"],
            "semantic_embed_dropped": self._counts["semantic_embed_dropped"],
            "semantic_embed_queued": self._embed_jobs.qsize() if self._embed_jobs else 0,
            "semantic_error": index.last_error if index else None,
            "stores": self._counts["stores"],
            "errors": self._counts["errors"],
            "healthy": self.healthy,
            "last_error": self.last_error,
        }

    def close(self) -> None:
        if self._embedder_thread is not None and self._embed_jobs is not None:
            self.wait_for_embeddings()
            self._embed_jobs.put(None)
            self._embedder_thread.join(timeout=10)
            self._embedder_thread = None
        with self._lock:
            if self._closed:
                return
            if self._db is not None:
                try:
                    self._flush_pending(self._db)
                except Exception as e:
                    self._record_failure("close", e)
                self._drop_db()
            self._closed = True

    # -- internals -------------------------------------------------------------------------------

    def _lookup(self, db: CacheDB, route: str, cfg: CacheConfig, fmt: str, body: dict[str, Any],
                key_id: str | None, allow_stale: bool,
                default_max_tokens: int | None) -> CacheEntry | None:
        canonical = canonical_request(fmt, body, default_max_tokens=default_max_tokens)
        row = db.get(request_key(route, scope_of(cfg, key_id), canonical))
        now = self.clock()
        if row is None:
            self._count("misses")
            return None
        age = now - row.stored_at
        if age > cfg.ttl_s + cfg.stale_ttl_s:
            self._expired[row.id] = row.stored_at  # deleted with the next write
            self._count("misses")
            return None
        stale = age > cfg.ttl_s
        if stale and not allow_stale:
            self._count("misses")
            return None
        self._count("stale_hits" if stale else "hits")
        self._touched[row.id] = now
        if len(self._touched) >= _PENDING_FLUSH:
            self._flush_pending(db)
        return CacheEntry(orjson.loads(row.response), row.fmt, row.stored_at, "exact",
                          stale=stale)

    def _vector_row(self, route: str, scope: str, canonical: dict[str, Any],
                    scfg: SemanticCacheConfig | None) -> tuple[str, str, bytes, bytes, str] | None:
        index = self.semantic
        if index is None or (scfg is not None and not scfg.enabled):
            return None
        query = semantic_query(route, scope, canonical)
        if query is None or not index.eligible(query.text):
            return None
        vector = index.embed(query.text)
        if vector is None:
            return None
        guard = orjson.dumps(fingerprint(query.text, query.turns).to_json())
        return (query.space, index.model, np.asarray(vector, dtype=np.float32).tobytes(), guard,
                redact_question(query.text))

    def _flush_pending(self, db: CacheDB) -> None:
        try:
            db.touch_and_forget(self._touched, self._expired)
        except sqlite3.Error as e:
            if not is_contention(e):
                raise
            return  # keep them for the next write; LRU order is a hint, not a promise
        self._touched.clear()
        self._expired.clear()

    def _guarded(self, op: str, fn: Callable[[CacheDB], T], default: T) -> T:
        """Run ``fn`` against an open, verified database; on any failure return ``default``."""
        with self._lock:
            if self._closed:
                return default
            try:
                db = self._open()
                if db is None:
                    return default  # backing off after a failed reopen
                db.check_file()
                result = fn(db)
            except Exception as e:
                self._record_failure(op, e)
                return default
            if not self.healthy:
                log.info("response cache working again (%s)", self.path or "in memory")
            self.healthy = True
            self._backoff = 0.0
            return result

    def _open(self) -> CacheDB | None:
        if self._db is not None:
            return self._db
        now = self.clock()
        if now < self._retry_at:
            return None
        # The next attempt waits if this one fails; the first retry after a failure is at once.
        self._backoff = min(max(self._backoff * 2, self._backoff_min), 30.0)
        self._retry_at = now + self._backoff
        if self._corrupt and self.path is not None:
            quarantine(self.path)
            log.warning("moved corrupt response cache aside to %s.corrupt", self.path)
            self._corrupt = False
        self._db = CacheDB(self.path, busy_timeout_s=self._busy_timeout_s)
        self._retry_at = float("-inf")
        self._next_sweep = float("-inf")
        return self._db

    def _record_failure(self, op: str, exc: BaseException) -> None:
        with self._lock:
            self._count("errors")
            self.last_error = f"{op}: {type(exc).__name__}: {exc}"
            if self.healthy:
                log.warning("response cache unavailable, requests continue without it: %s",
                            self.last_error)
            else:
                log.debug("response cache still failing: %s", self.last_error)
            self.healthy = False
            if is_corruption(exc):
                self._corrupt = True  # the remedy is known: recreate on the next call
                self._retry_at = float("-inf")
            if not is_contention(exc) and self._db is not None:
                self._drop_db()  # reopened (or recreated) by the next call

    def _record_bad_input(self, op: str, exc: BaseException) -> None:
        """A request or row we cannot handle: counted and logged, but the store is fine."""
        self._count("errors")
        log.debug("response cache skipped a %s: %s: %s", op, type(exc).__name__, exc)

    def _drop_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except sqlite3.Error:
                pass  # closing a broken connection may fail too; it is gone either way
        self._touched.clear()
        self._expired.clear()

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1


def _is_complete(response: Any, fmt: str) -> bool:
    """Only whole, successful answers are worth replaying."""
    if not isinstance(response, dict) or "error" in response:
        return False
    if fmt == "anthropic":
        return (response.get("type") == "message" and isinstance(response.get("content"), list)
                and response.get("stop_reason") is not None)
    if fmt == "openai":
        choices = response.get("choices")
        return (response.get("object") == "chat.completion" and isinstance(choices, list)
                and bool(choices) and isinstance(choices[0], dict)
                and choices[0].get("finish_reason") is not None)
    return False
