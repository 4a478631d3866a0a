"""The exact response cache: freshness, stale-if-error, scope, cross-format hits, bounds,
and the promise that the cache file never holds a secret."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ridethrough.cache import CacheEntry, ResponseCache, SemanticIndex
from ridethrough.cache.migrations import MIGRATIONS
from ridethrough.config import CacheConfig, SemanticCacheConfig

TTL = 60.0
STALE = 600.0
CFG = CacheConfig(mode="fallback-only", ttl_s=TTL, stale_ttl_s=STALE)
ROUTE = "claude"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 512,
            "messages": [{"role": "user", "content": text}], **extra}


def ask_openai(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4.1", "max_tokens": 512,
            "messages": [{"role": "user", "content": text}], **extra}


def message(text: str, *, stop_reason: str | None = "end_turn") -> dict[str, Any]:
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}], "stop_reason": stop_reason,
            "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 3}}


def completion(text: str) -> dict[str, Any]:
    return {"id": "chatcmpl-01", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> ResponseCache:
    return ResponseCache(None, clock=clock)


def store(cache: ResponseCache, text: str, answer: str | None = None, *, cfg: CacheConfig = CFG,
          key_id: str | None = None, route: str = ROUTE) -> None:
    cache.store(route, cfg, "anthropic", ask(text), key_id, message(answer or f"A: {text}"),
                "anthropic")


def find(cache: ResponseCache, text: str, *, cfg: CacheConfig = CFG, key_id: str | None = None,
         allow_stale: bool = False, route: str = ROUTE) -> CacheEntry | None:
    return cache.lookup(route, cfg, "anthropic", ask(text), key_id, allow_stale=allow_stale)


def answer_of(entry: CacheEntry | None) -> str | None:
    return None if entry is None else entry.in_format("anthropic")["content"][0]["text"]


# -- freshness ------------------------------------------------------------------------------------


def test_fresh_entry_is_served_as_stored(cache: ResponseCache, clock: Clock) -> None:
    store(cache, "What is 2+2?", "4")
    clock.advance(TTL)
    entry = find(cache, "What is 2+2?")
    assert entry is not None
    assert (answer_of(entry), entry.kind, entry.stale, entry.fmt) == ("4", "exact", False,
                                                                      "anthropic")
    assert entry.age(clock()) == TTL


def test_stale_entry_only_when_stale_is_allowed(cache: ResponseCache, clock: Clock) -> None:
    store(cache, "What is 2+2?", "4")
    clock.advance(TTL + 1)
    assert find(cache, "What is 2+2?") is None
    entry = find(cache, "What is 2+2?", allow_stale=True)
    assert entry is not None and entry.stale and answer_of(entry) == "4"
    assert cache.stats()["stale_hits"] == 1


def test_stale_ttl_boundary_is_inclusive_and_final(cache: ResponseCache, clock: Clock) -> None:
    store(cache, "What is 2+2?", "4")
    clock.advance(TTL + STALE)
    assert answer_of(find(cache, "What is 2+2?", allow_stale=True)) == "4"
    clock.advance(0.001)
    assert find(cache, "What is 2+2?", allow_stale=True) is None


def test_expired_entries_are_purged_from_the_file(cache: ResponseCache, clock: Clock) -> None:
    store(cache, "old question")
    clock.advance(TTL + STALE + 1)
    assert find(cache, "old question", allow_stale=True) is None
    store(cache, "new question")
    assert cache.stats()["entries"] == 1
    assert find(cache, "new question") is not None


def test_retention_sweep_purges_entries_nobody_looks_up(cache: ResponseCache,
                                                        clock: Clock) -> None:
    for i in range(5):
        store(cache, f"question {i}")
    clock.advance(TTL + STALE + 120)  # past retention and past the sweep interval
    store(cache, "fresh")
    assert cache.stats()["entries"] == 1


def test_restoring_refreshes_the_entry(cache: ResponseCache, clock: Clock) -> None:
    store(cache, "q", "first")
    clock.advance(TTL + 1)
    store(cache, "q", "second")
    entry = find(cache, "q")
    assert answer_of(entry) == "second" and cache.stats()["entries"] == 1


def test_mode_off_neither_stores_nor_serves(cache: ResponseCache) -> None:
    off = CacheConfig(mode="off")
    store(cache, "q", cfg=off)
    assert cache.stats()["entries"] == 0
    store(cache, "q")
    assert find(cache, "q", cfg=off) is None


@pytest.mark.parametrize("response, fmt", [
    (message("half an answer", stop_reason=None), "anthropic"),
    ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
     "anthropic"),
    ({"error": {"message": "rate limited", "type": "rate_limit"}}, "openai"),
    ({**completion("x"), "choices": [{"index": 0, "message": {}, "finish_reason": None}]},
     "openai"),
    ({"object": "chat.completion", "choices": ["junk"]}, "openai"),
    ("not a dict", "anthropic"),
])
def test_errors_and_unfinished_answers_are_never_cached(cache: ResponseCache, response: Any,
                                                        fmt: str) -> None:
    cache.store(ROUTE, CFG, "anthropic", ask("q"), None, response, fmt)
    assert cache.stats()["entries"] == 0
    assert find(cache, "q", allow_stale=True) is None


# -- scope ----------------------------------------------------------------------------------------


def test_entries_are_scoped_per_gateway_key(cache: ResponseCache) -> None:
    store(cache, "q", "team a's answer", key_id="team-a")
    assert answer_of(find(cache, "q", key_id="team-a")) == "team a's answer"
    assert find(cache, "q", key_id="team-b") is None
    assert find(cache, "q", key_id=None) is None


def test_share_across_keys_drops_the_scope(cache: ResponseCache) -> None:
    shared = CacheConfig(ttl_s=TTL, stale_ttl_s=STALE, share_across_keys=True)
    store(cache, "q", "everyone's answer", cfg=shared, key_id="team-a")
    assert answer_of(find(cache, "q", cfg=shared, key_id="team-b")) == "everyone's answer"
    assert answer_of(find(cache, "q", cfg=shared, key_id=None)) == "everyone's answer"
    # A route that scopes per key does not read the shared pool.
    assert find(cache, "q", key_id="team-b") is None


def test_routes_do_not_share_entries(cache: ResponseCache) -> None:
    store(cache, "q", route="claude")
    assert find(cache, "q", route="gpt") is None


# -- formats and request normalization -------------------------------------------------------------


def test_anthropic_answer_serves_the_equivalent_openai_request(cache: ResponseCache) -> None:
    body = ask("Name a prime.", system="Answer in one word.", temperature=0.0,
               stop_sequences=["###"])
    cache.store(ROUTE, CFG, "anthropic", body, None, message("Seven"), "anthropic")
    openai_body = {"model": "gpt-4.1", "max_tokens": 512, "temperature": 0, "stop": "###",
                   "messages": [{"role": "system", "content": "Answer in one word."},
                                {"role": "user", "content": "Name a prime."}]}
    entry = cache.lookup(ROUTE, CFG, "openai", openai_body, None, allow_stale=False)
    assert entry is not None and entry.fmt == "anthropic"
    as_openai = entry.in_format("openai")
    assert as_openai["object"] == "chat.completion"
    assert as_openai["choices"][0]["message"]["content"] == "Seven"


def test_openai_answer_serves_the_equivalent_anthropic_request(cache: ResponseCache) -> None:
    cache.store(ROUTE, CFG, "openai", ask_openai("Name a prime."), None, completion("Seven"),
                "openai")
    entry = cache.lookup(ROUTE, CFG, "anthropic",
                         ask("Name a prime.", stream=True), None, allow_stale=False)
    assert entry is not None and entry.fmt == "openai"
    assert entry.in_format("anthropic")["content"] == [{"type": "text", "text": "Seven"}]


def test_stream_flag_does_not_matter(cache: ResponseCache) -> None:
    cache.store(ROUTE, CFG, "anthropic", ask("q", stream=True), None, message("a"), "anthropic")
    assert find(cache, "q") is not None
    cache.store(ROUTE, CFG, "openai", ask_openai("r"), None, completion("b"), "openai")
    streamed = ask_openai("r", stream=True, stream_options={"include_usage": True})
    assert cache.lookup(ROUTE, CFG, "openai", streamed, None, allow_stale=False) is not None


def test_target_model_and_user_ids_do_not_matter_but_sampling_does(cache: ResponseCache) -> None:
    cache.store(ROUTE, CFG, "anthropic", ask("q", temperature=0.5), None, message("a"),
                "anthropic")
    same = ask("q", temperature=0.5, model="claude-haiku", metadata={"user_id": "u-2"})
    assert cache.lookup(ROUTE, CFG, "anthropic", same, None, allow_stale=False) is not None
    hotter = ask("q", temperature=0.9)
    assert cache.lookup(ROUTE, CFG, "anthropic", hotter, None, allow_stale=True) is None
    shorter = ask("q", temperature=0.5, max_tokens=10)
    assert cache.lookup(ROUTE, CFG, "anthropic", shorter, None, allow_stale=True) is None


def test_returned_objects_are_copies(cache: ResponseCache) -> None:
    store(cache, "q", "a")
    entry = find(cache, "q")
    assert entry is not None
    entry.obj["content"][0]["text"] = "mutated by a caller"
    assert answer_of(find(cache, "q")) == "a"


# -- bounds ---------------------------------------------------------------------------------------


def test_eviction_by_count_drops_least_recently_used(clock: Clock) -> None:
    cache = ResponseCache(None, max_entries=3, clock=clock)
    for text in ("one", "two", "three"):
        store(cache, text)
        clock.advance(1)
    assert find(cache, "one") is not None  # "one" is now the most recently used
    clock.advance(1)
    store(cache, "four")
    stats = cache.stats()
    assert stats["entries"] == 3
    assert [find(cache, t) is not None for t in ("one", "two", "three", "four")] == [
        True, False, True, True]


def test_eviction_by_bytes(clock: Clock) -> None:
    cache = ResponseCache(None, max_bytes=5_000, clock=clock)
    for i in range(10):
        store(cache, f"q{i}", "x" * 1_000)
        clock.advance(1)
    stats = cache.stats()
    assert stats["bytes"] <= 5_000
    assert 3 <= stats["entries"] < 10
    assert find(cache, "q9") is not None and find(cache, "q0") is None


def test_an_answer_larger_than_the_whole_cache_is_not_stored(clock: Clock) -> None:
    cache = ResponseCache(None, max_bytes=2_000, clock=clock)
    store(cache, "small")
    store(cache, "huge", "x" * 5_000)
    assert find(cache, "huge") is None and find(cache, "small") is not None


# -- the file -------------------------------------------------------------------------------------


FAKE_KEYS = ("sk-ant-api03-FAKEFAKEFAKE0123456789", "sk-proj-FAKEOPENAIKEY987654321",
             "rt-gateway-secret-token-abc")


class BagOfWords:
    """A deterministic stand-in for the embedding model (so this test runs without it)."""

    name = "bag-of-words"

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, hash(word) % 64] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_the_file_never_holds_keys_headers_or_secrets_in_questions(tmp_path: Path,
                                                                   clock: Clock) -> None:
    path = tmp_path / "cache.db"
    cache = ResponseCache(path, clock=clock, semantic=SemanticIndex(BagOfWords()))
    anthropic_key, openai_key, gateway_key = FAKE_KEYS
    # The question is kept (redacted) for the semantic-match header; what looks like a secret
    # in it is not.
    question = f"Why does my key {openai_key} fail with the launch code ZEBRA9PELICAN42LAUNCH0X?"
    body = ask(question, metadata={"user_id": anthropic_key},
               headers={"x-api-key": anthropic_key, "authorization": f"Bearer {gateway_key}"},
               api_key=openai_key)
    cache.store(ROUTE, CFG, "anthropic", body, "team-a", message("I cannot say."), "anthropic")
    openai_body = {**ask_openai(question), "user": openai_key}
    cache.store(ROUTE, CFG, "openai", openai_body, "team-a", completion("No."), "openai")
    assert cache.lookup(ROUTE, CFG, "anthropic", body, "team-a", allow_stale=False) is not None
    cache.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"I cannot say." in raw  # the answer is there: the scan reads the right bytes
    for secret in (*FAKE_KEYS, "ZEBRA9PELICAN"):
        assert secret.encode() not in raw, secret
    assert b"[redacted]" in raw
    assert b"key:team-a" in raw  # the key's name scopes the entry, never the key


def test_schema_is_created_by_recorded_named_migrations(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "cache.db"
    ResponseCache(path, clock=clock).close()
    ResponseCache(path, clock=clock).close()  # reopening applies nothing twice
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert names == [name for name, _ in MIGRATIONS]
    assert mode == "wal"


def test_entries_survive_a_restart(tmp_path: Path, clock: Clock) -> None:
    first = ResponseCache(tmp_path / "cache.db", clock=clock)
    store(first, "q", "kept")
    first.close()
    second = ResponseCache(tmp_path / "cache.db", clock=clock)
    assert answer_of(find(second, "q")) == "kept"


def test_lru_touches_are_written_before_eviction_after_restart(tmp_path: Path,
                                                               clock: Clock) -> None:
    cache = ResponseCache(tmp_path / "cache.db", max_entries=2, clock=clock)
    store(cache, "one")
    clock.advance(1)
    store(cache, "two")
    clock.advance(1)
    assert find(cache, "one") is not None
    cache.close()  # the deferred touch is flushed on close
    reopened = ResponseCache(tmp_path / "cache.db", max_entries=2, clock=clock)
    clock.advance(1)
    store(reopened, "three")
    assert find(reopened, "one") is not None and find(reopened, "two") is None


def test_concurrent_use_from_threads(tmp_path: Path, clock: Clock) -> None:
    cache = ResponseCache(tmp_path / "cache.db", clock=clock)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                store(cache, f"q{n}-{i}")
                assert find(cache, f"q{n}-{i}") is not None
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and cache.stats()["entries"] == 120 and cache.healthy


def test_closed_cache_answers_nothing_and_does_not_raise(cache: ResponseCache) -> None:
    store(cache, "q")
    cache.close()
    cache.close()
    store(cache, "r")
    assert find(cache, "q") is None
    assert cache.stats()["entries"] is None


def test_semantic_store_can_be_skipped_per_route(clock: Clock) -> None:
    index = SemanticIndex(BagOfWords())
    cache = ResponseCache(None, clock=clock, semantic=index)
    scfg_off = SemanticCacheConfig(enabled=False)
    cache.store(ROUTE, CFG, "anthropic", ask("hello there friend"), None, message("hi"),
                "anthropic", semantic=scfg_off)
    scfg_on = SemanticCacheConfig(enabled=True, threshold=0.5)
    found = cache.lookup_semantic(ROUTE, scfg_on, CFG, "anthropic", ask("hello there friend!"),
                                  None)
    assert found is None
    cache.store(ROUTE, CFG, "anthropic", ask("hello there friend"), None, message("hi"),
                "anthropic", semantic=scfg_on)
    found = cache.lookup_semantic(ROUTE, scfg_on, CFG, "anthropic", ask("hello there friend"),
                                  None)
    assert found is not None and found.kind == "semantic"


def test_two_workers_share_one_file(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "cache.db"
    worker_a = ResponseCache(path, clock=clock)
    worker_b = ResponseCache(path, clock=clock)
    store(worker_a, "q", "from a")
    assert answer_of(find(worker_b, "q")) == "from a"
    # Worker A finds the file corrupt and replaces it; worker B follows to the new file.
    path.write_bytes(b"junk" * 1024)
    assert find(worker_a, "q") is None
    store(worker_a, "r", "after")
    assert find(worker_b, "r") is None  # B notices the file changed under it …
    assert answer_of(find(worker_b, "r")) == "after"  # … and reopens the new one


def test_an_unencodable_answer_is_skipped_without_marking_the_cache_unhealthy(
    cache: ResponseCache,
) -> None:
    weird = message("a")
    weird["usage"] = {"input_tokens": 2**70}  # beyond what orjson encodes
    cache.store(ROUTE, CFG, "anthropic", ask("q"), None, weird, "anthropic")
    assert cache.healthy and cache.stats()["errors"] == 1
    store(cache, "q", "fine")
    assert answer_of(find(cache, "q")) == "fine"


def test_store_many_keeps_every_answer_in_one_go(tmp_path):
    from ridethrough.cache import ResponseCache
    from ridethrough.config import CacheConfig

    cache = ResponseCache(tmp_path / "c.db", clock=lambda: 1_700_000_000.0)
    cfg = CacheConfig()
    items = []
    for i in range(5):
        body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": f"q{i}"}]}
        resp = {"id": f"msg_{i}", "type": "message", "role": "assistant", "model": "m",
                "content": [{"type": "text", "text": f"a{i}"}], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
        items.append({"route": "r", "cfg": cfg, "fmt": "anthropic", "body": body, "key_id": None,
                      "response": resp, "response_fmt": "anthropic"})
    items.append(dict(items[0], response={"type": "error"}))  # incomplete: skipped, not fatal
    cache.store_many(items)
    for i in range(5):
        body = items[i]["body"]
        hit = cache.lookup("r", cfg, "anthropic", body, None, allow_stale=False)
        assert hit is not None and hit.obj["content"][0]["text"] == f"a{i}"
    assert cache.stats()["entries"] == 5


def test_store_many_writes_a_question_asked_twice_in_one_batch_once_with_its_last_answer(tmp_path):
    from ridethrough.cache import ResponseCache
    from ridethrough.config import CacheConfig

    cache = ResponseCache(tmp_path / "c.db", clock=lambda: 1_700_000_000.0)
    cfg = CacheConfig()

    def item(q: str, a: str) -> dict:
        body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": q}]}
        resp = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                "content": [{"type": "text", "text": a}], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
        return {"route": "r", "cfg": cfg, "fmt": "anthropic", "body": body, "key_id": None,
                "response": resp, "response_fmt": "anthropic"}

    cache.store_many([item("hot", "first"), item("other", "x"), item("hot", "second"),
                      item("hot", "third")])
    hit = cache.lookup("r", cfg, "anthropic", item("hot", "")["body"], None, allow_stale=False)
    assert hit is not None and hit.obj["content"][0]["text"] == "third"
    stats = cache.stats()
    assert stats["entries"] == 2 and stats["stores"] == 2
