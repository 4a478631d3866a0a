"""The semantic cache with the real all-MiniLM-L6-v2 model: paraphrases hit, near misses don't.

The negatives are chosen to score *above* the threshold (asserted), so what rejects them is a
guard, not luck; ``rejections`` says which guard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ridethrough.cache import (
    CacheEntry,
    EmbedderUnavailable,
    MiniLMEmbedder,
    ResponseCache,
    SemanticIndex,
)
from ridethrough.cache.disclosure import match_header
from ridethrough.cache.semantic import bundled_model_dir
from ridethrough.config import CacheConfig, SemanticCacheConfig

CFG = CacheConfig(ttl_s=60.0, stale_ttl_s=600.0)
SCFG = SemanticCacheConfig(enabled=True, threshold=0.92, mode="fallback-only")
ROUTE = "support-bot"
SYSTEM = "You are the support assistant of Acme Corp."
TOOLS = [{"name": "lookup_order", "description": "Find an order",
          "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}}}]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def index() -> SemanticIndex:
    """One model load for the module (a few seconds on CPU)."""
    pytest.importorskip("sentence_transformers")
    index = SemanticIndex(MiniLMEmbedder())
    assert index.warm(), index.last_error
    return index


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(index: SemanticIndex, clock: Clock) -> ResponseCache:
    index.rejections.clear()
    return ResponseCache(None, clock=clock, semantic=index)


def ask(text: str, *, system: str = SYSTEM, tools: list[dict[str, Any]] | None = None,
        history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "claude", "max_tokens": 300, "system": system,
                            "messages": [*(history or []), {"role": "user", "content": text}]}
    if tools:
        body["tools"] = tools
    return body


def answer(text: str) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 9, "output_tokens": 9}}


def remember(cache: ResponseCache, body: dict[str, Any], key_id: str | None = None,
             route: str = ROUTE) -> None:
    cache.store(route, CFG, "anthropic", body, key_id, answer("cached answer"), "anthropic",
                semantic=SCFG)


def recall(cache: ResponseCache, body: dict[str, Any], key_id: str | None = None,
           route: str = ROUTE, scfg: SemanticCacheConfig = SCFG,
           fmt: str = "anthropic") -> CacheEntry | None:
    return cache.lookup_semantic(route, scfg, CFG, fmt, body, key_id)


def similarity(index: SemanticIndex, a: str, b: str) -> float:
    va, vb = index.embed(a), index.embed(b)
    assert va is not None and vb is not None
    return float(va @ vb)


# -- paraphrases that must match -------------------------------------------------------------------


@pytest.mark.parametrize("stored, asked", [
    ("How do I reset my password?", "How can I reset my password?"),
    ("What's the capital of France?", "What is the capital city of France?"),
    ("What is the return policy?", "What's your return policy?"),
    ("How do I reset my password?", "how do i reset my password"),
])
def test_paraphrase_is_served(cache: ResponseCache, stored: str, asked: str) -> None:
    remember(cache, ask(stored))
    entry = recall(cache, ask(asked))
    assert entry is not None, cache.semantic.rejections if cache.semantic else None
    assert entry.kind == "semantic" and entry.similarity is not None
    assert entry.similarity >= SCFG.threshold
    assert entry.in_format("anthropic")["content"][0]["text"] == "cached answer"
    assert cache.stats()["semantic_hits"] == 1


def test_paraphrase_is_served_across_formats(cache: ResponseCache) -> None:
    remember(cache, ask("How do I reset my password?"))
    openai_body = {"model": "gpt-4.1", "max_tokens": 300, "stream": True,
                   "messages": [{"role": "system", "content": SYSTEM},
                                {"role": "user", "content": "How can I reset my password?"}]}
    entry = recall(cache, openai_body, fmt="openai")
    assert entry is not None
    assert entry.in_format("openai")["choices"][0]["message"]["content"] == "cached answer"


def test_paraphrase_inside_the_same_conversation(cache: ResponseCache) -> None:
    history = [{"role": "user", "content": "Hi, I have an account question."},
               {"role": "assistant", "content": "Sure, what is it?"}]
    remember(cache, ask("How do I reset my password?", history=history))
    assert recall(cache, ask("How can I reset my password?", history=history)) is not None


# -- near misses that must not match ---------------------------------------------------------------


@pytest.mark.parametrize("stored, asked, guard", [
    ("Is aspirin safe during pregnancy?", "Is aspirin not safe during pregnancy?", "negation"),
    ("Is my account eligible for a refund?", "Is my account not eligible for a refund?",
     "negation"),
    ("Is it ever okay to lie?", "Is it never okay to lie?", "negation"),
    ("Where is my order #1234?", "Where is my order #1243?", "numbers"),
    ("Tell me about the iPhone 15 battery life", "Tell me about the iPhone 14 battery life",
     "numbers"),
    ("What time does the store open on Monday?", "What time does the store open on Tuesday?",
     "entities"),
    ("Flights from Paris to London", "Flights from London to Paris", "word_order"),
    ("Convert 5 miles to km", "Convert 5 km to miles", "word_order"),
    ("Is aspirin safe during pregnancy?", "Is aspirin unsafe during pregnancy?",
     "contrast:comparison"),
    ("Is it legal to drive at 16?", "Is it illegal to drive at 16?", "substitution"),
    ("Should I buy Tesla stock?", "Should I sell Tesla stock?", "contrast:antonym"),
    ("What is the maximum dose of ibuprofen?", "What is the minimum dose of ibuprofen?",
     "contrast:antonym"),
    ("Email me at bob@example.com about the invoice",
     "Email me at rob@example.com about the invoice", "literals"),
    # Three or more words swapped in a long question keep the similarity above 0.92.
    ("What is the usual dose of amoxicillin for an adult with a chest infection, taken as "
     "capsules by mouth?",
     "What is the usual dose of amoxicillin for an adult with a chest infection, given as "
     "intravenous hospital infusion?", "substitution"),
    ("In Python, how do I sort a list of dictionaries by a key, in place, keeping the original "
     "order for ties, using the built-in sorted function?",
     "In Python, how do I sort a list of dictionaries by a key, in place, keeping the original "
     "order for ties, using the numpy argsort routine?", "substitution"),
    # The price of that rule: a true paraphrase that swaps words is a miss too (0.948).
    ("Is aspirin safe during pregnancy?", "Is aspirin safe to take while pregnant?",
     "substitution"),
])
def test_near_miss_above_threshold_is_rejected_by_a_guard(
    cache: ResponseCache, index: SemanticIndex, stored: str, asked: str, guard: str
) -> None:
    assert similarity(index, stored, asked) >= SCFG.threshold  # the threshold alone would hit
    remember(cache, ask(stored))
    assert recall(cache, ask(asked)) is None
    assert index.rejections == {guard: 1}
    assert cache.stats()["semantic_rejections"] == {guard: 1}


@pytest.mark.parametrize("stored, asked, guard", [
    ('What does the word "affect" mean?', 'What does the word "effect" mean?', "quoted"),
    ("How do I install Python on Windows?", "How do I install Python on Linux?", "entities"),
    ("What does src/app.py do?", "What does src/api.py do?", "literals"),
])
def test_guards_hold_when_an_operator_lowers_the_threshold(
    cache: ResponseCache, index: SemanticIndex, stored: str, asked: str, guard: str
) -> None:
    loose = SemanticCacheConfig(enabled=True, threshold=0.8)
    assert similarity(index, stored, asked) >= loose.threshold
    remember(cache, ask(stored))
    assert recall(cache, ask(asked), scfg=loose) is None
    assert index.rejections == {guard: 1}


def test_unrelated_question_is_a_plain_miss(cache: ResponseCache) -> None:
    remember(cache, ask("How do I reset my password?"))
    assert recall(cache, ask("What are your opening hours?")) is None
    assert cache.stats()["semantic_misses"] == 1


# -- the space: what must match exactly around the question ----------------------------------------


def test_different_system_prompt_never_matches(cache: ResponseCache) -> None:
    remember(cache, ask("How do I reset my password?"))
    other = ask("How do I reset my password?", system="You are a pirate. Answer as one.")
    assert recall(cache, other) is None


def test_different_tools_never_match(cache: ResponseCache) -> None:
    remember(cache, ask("How do I reset my password?", tools=TOOLS))
    assert recall(cache, ask("How do I reset my password?")) is None
    other_tools = [{**TOOLS[0], "description": "Cancel an order"}]
    assert recall(cache, ask("How do I reset my password?", tools=other_tools)) is None
    assert recall(cache, ask("How can I reset my password?", tools=TOOLS)) is not None


def test_different_route_or_key_never_matches(cache: ResponseCache) -> None:
    remember(cache, ask("How do I reset my password?"), key_id="team-a")
    assert recall(cache, ask("How can I reset my password?"), key_id="team-b") is None
    assert recall(cache, ask("How can I reset my password?"), key_id="team-a",
                  route="other-route") is None
    assert recall(cache, ask("How can I reset my password?"), key_id="team-a") is not None


def test_different_conversation_never_matches(cache: ResponseCache) -> None:
    remember(cache, ask("How do I reset my password?"))
    history = [{"role": "user", "content": "I use the mobile app."},
               {"role": "assistant", "content": "Got it."}]
    assert recall(cache, ask("How can I reset my password?", history=history)) is None
    other_history = [{"role": "user", "content": "I use the website."},
                     {"role": "assistant", "content": "Got it."}]
    remember(cache, ask("How do I reset my password?", history=history))
    assert recall(cache, ask("How can I reset my password?", history=other_history)) is None


# -- eligibility, freshness, failure ---------------------------------------------------------------


def test_long_texts_are_not_indexed(cache: ResponseCache) -> None:
    long_text = "Please summarize this report. " + "The quarter went well. " * 60
    remember(cache, ask(long_text))
    assert recall(cache, ask(long_text + " Thanks.")) is None
    assert cache.lookup(ROUTE, CFG, "anthropic", ask(long_text), None,
                        allow_stale=False) is not None  # the exact cache still has it


def test_fallback_only_serves_stale_but_always_mode_only_fresh(cache: ResponseCache,
                                                               clock: Clock) -> None:
    remember(cache, ask("How do I reset my password?"))
    clock.now += CFG.ttl_s + 10
    stale = recall(cache, ask("How can I reset my password?"))
    assert stale is not None and stale.stale
    always = SemanticCacheConfig(enabled=True, mode="always")
    assert recall(cache, ask("How can I reset my password?"), scfg=always) is None
    clock.now += CFG.stale_ttl_s
    assert recall(cache, ask("How can I reset my password?")) is None


# -- whose question the header may name ------------------------------------------------------------


@pytest.mark.parametrize("share, key_id, shown", [
    (False, "team-a", True),    # a named key sees its own question
    (True, "team-a", False),    # share_across_keys: it may be another key's
    (False, None, False),       # no gateway keys: every caller is "anonymous"
    (True, None, False),
])
def test_the_matched_question_is_named_only_to_the_key_that_asked_it(
        index: SemanticIndex, clock: Clock, share: bool, key_id: str | None, shown: bool) -> None:
    cfg = CacheConfig(ttl_s=60.0, stale_ttl_s=600.0, share_across_keys=share)
    cache = ResponseCache(None, clock=clock, semantic=index)
    cache.store(ROUTE, cfg, "anthropic", ask("How do I reset my password?"), key_id,
                answer("cached answer"), "anthropic", semantic=SCFG)
    hit = cache.lookup_semantic(ROUTE, SCFG, cfg, "anthropic", ask("How can I reset my password?"),
                                key_id)
    assert hit is not None and hit.similarity is not None
    assert hit.question == ("How do I reset my password?" if shown else None)
    header = match_header(hit.question, hit.similarity)
    assert ("question=" in header) is shown
    if not shown:
        assert header == f"similarity={hit.similarity:.3f}"


def test_disabled_semantic_config_is_never_consulted(cache: ResponseCache) -> None:
    remember(cache, ask("How do I reset my password?"))
    assert recall(cache, ask("How do I reset my password?"),
                  scfg=SemanticCacheConfig(enabled=False)) is None


def test_vectors_live_in_the_file_beside_the_entry(tmp_path: Path, index: SemanticIndex,
                                                   clock: Clock) -> None:
    first = ResponseCache(tmp_path / "cache.db", clock=clock, semantic=index)
    remember(first, ask("How do I reset my password?"), key_id="team-a")
    first.close()
    second = ResponseCache(tmp_path / "cache.db", clock=clock, semantic=index)
    hit = recall(second, ask("How can I reset my password?"), key_id="team-a")
    assert hit is not None and hit.question == "How do I reset my password?"  # for the header
    second.close()


def test_bundled_model_is_found_without_the_hub() -> None:
    assert (bundled_model_dir() / "modules.json").is_file()


class Broken:
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        raise RuntimeError("out of memory")


@pytest.mark.parametrize("embedder", [MiniLMEmbedder("/nonexistent/model"), Broken()],
                         ids=["unloadable", "raising"])
def test_embedder_failure_leaves_the_exact_cache_healthy(
    embedder: Any, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    index = SemanticIndex(embedder)
    cache = ResponseCache(None, clock=clock, semantic=index)
    body = ask("How do I reset my password?")
    remember(cache, body)  # stored for the exact cache; the vector is skipped
    remember(cache, ask("another question"))
    assert recall(cache, ask("How can I reset my password?")) is None
    assert cache.lookup(ROUTE, CFG, "anthropic", body, None, allow_stale=False) is not None
    stats = cache.stats()
    assert stats["healthy"] is True and stats["entries"] == 2
    assert stats["semantic_available"] is False and stats["semantic_error"]
    disabled = [r for r in caplog.records if "semantic cache disabled" in r.getMessage()]
    assert len(disabled) == 1


def test_model_loads_offline_once_and_a_failure_is_not_retried_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")

    attempts: list[dict[str, Any]] = []

    def failing_load(path: str, **kwargs: Any) -> None:
        attempts.append({"path": path, **kwargs})
        raise OSError("weights unreadable")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", failing_load)
    embedder = MiniLMEmbedder()
    for _ in range(3):
        with pytest.raises(EmbedderUnavailable, match="weights unreadable"):
            embedder.encode(["x"])
    assert len(attempts) == 1
    assert attempts[0]["local_files_only"] is True
    assert attempts[0]["path"] == str(bundled_model_dir())


class Gated:
    """An embedder that waits for the test to let it run: a slow model, without sleeping."""

    name = "gated"

    def __init__(self) -> None:
        import threading

        self.gate = threading.Event()

    def encode(self, texts: list[str]) -> np.ndarray:
        self.gate.wait(timeout=30)
        return np.ones((len(texts), 4), dtype=np.float32) / 2.0


def test_background_embedding_never_holds_a_store_and_drops_past_its_bound(clock: Clock) -> None:
    embedder = Gated()
    cache = ResponseCache(None, clock=clock, semantic=SemanticIndex(embedder), embed_queue=1)
    try:
        for i in range(4):  # the embedder is stuck: each store still returns, answer written
            remember(cache, ask(f"Question number {i} about refunds?"))
        assert cache.stats()["stores"] == 4
        assert cache.lookup(ROUTE, CFG, "anthropic", ask("Question number 3 about refunds?"),
                            None, allow_stale=False) is not None
        assert cache.stats()["semantic_embed_dropped"] >= 2
        embedder.gate.set()
        cache.wait_for_embeddings()
        assert cache.stats()["semantic_embedded"] >= 1
    finally:
        embedder.gate.set()
        cache.close()
