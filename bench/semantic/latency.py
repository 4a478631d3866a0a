"""What a semantic lookup adds to a request during an outage.

    .venv/bin/python bench/semantic/latency.py            1,000 and 10,000 cached questions
    .venv/bin/python bench/semantic/latency.py --json

When every cloud failed, the gateway asks the exact cache, then the semantic cache. This
times those two calls on the real ``ResponseCache`` (SQLite file, all-MiniLM-L6-v2, the
two-stage check), with the cache filled to 1,000 and 10,000 questions in one context — the
scan is linear, so its size is what matters. Every timed question is new (a repeated one
would come from the embedder's memo and flatter the figure). On healthy clouds none of this
runs: stores embed on a background thread (``response_cache.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

HERE = Path(__file__).resolve().parent


def _body(text: str) -> dict[str, Any]:
    return {"model": "bench", "max_tokens": 256, "system": "You are a support bot.",
            "messages": [{"role": "user", "content": text}]}


def _answer(text: str) -> dict[str, Any]:
    return {"id": "msg_bench", "type": "message", "role": "assistant", "model": "bench",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}


def _fill(cache: Any, cfg: Any, count: int, now: float) -> None:
    """``count`` entries in the benchmark's context, real fingerprints, random unit vectors
    (written directly: embedding 10,000 questions would take minutes and time nothing)."""
    from ridethrough.cache.guards import fingerprint
    from ridethrough.cache.keys import canonical_request, request_key, scope_of, semantic_query

    rng = np.random.default_rng(7)
    scope = scope_of(cfg, "bench")
    rows = []
    for i in range(count):
        text = f"What is the status of support ticket {i}?"
        canonical = canonical_request("anthropic", _body(text))
        query = semantic_query("bench", scope, canonical)
        assert query is not None
        vector = rng.standard_normal(384).astype(np.float32)
        vector /= np.linalg.norm(vector)
        rows.append((request_key("bench", scope, canonical), query, vector, text))

    def write(db: Any) -> None:
        with db._transaction():
            for key, query, vector, text in rows:
                db.put(key=key, route="bench", scope=scope, fmt="anthropic",
                       response=orjson.dumps(_answer(text)), stored_at=now,
                       expires_at=now + 10**6, vector=(
                           query.space, cache.semantic.model, vector.tobytes(),
                           orjson.dumps(fingerprint(query.text, query.turns).to_json()), text))

    cache._guarded("bench fill", write, None)


def measure(count: int, rounds: int = 40) -> dict[str, Any]:
    from ridethrough.cache import MiniLMEmbedder, ResponseCache, SemanticIndex
    from ridethrough.config import CacheConfig, SemanticCacheConfig

    cfg, scfg = CacheConfig(), SemanticCacheConfig(enabled=True)
    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(Path(tmp) / "cache.sqlite3", max_entries=count + 100,
                              semantic=SemanticIndex(MiniLMEmbedder()))
        assert cache.semantic is not None and cache.semantic.warm()
        now = time.time()
        _fill(cache, cfg, count, now)
        cache.store("bench", cfg, "anthropic", _body("How do I reset my password?"), "bench",
                    _answer("Click Forgot password."), "anthropic", semantic=scfg)
        exact, hit, miss = [], [], []
        served = 0
        for i in range(rounds):
            paraphrase = _body(f"How can I reset my password{'?' * (i % 3 + 1)}" + " " * i)
            unrelated = _body(f"Which countries do you ship furniture to, case {i}?")
            t0 = time.perf_counter()
            assert cache.lookup("bench", cfg, "anthropic", paraphrase, "bench",
                                allow_stale=True) is None
            t1 = time.perf_counter()
            entry = cache.lookup_semantic("bench", scfg, cfg, "anthropic", paraphrase, "bench")
            t2 = time.perf_counter()
            served += entry is not None
            cache.lookup_semantic("bench", scfg, cfg, "anthropic", unrelated, "bench")
            t3 = time.perf_counter()
            exact.append((t1 - t0) * 1000)
            hit.append((t2 - t1) * 1000)
            miss.append((t3 - t2) * 1000)
        cache.close()

    def summary(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {"p50_ms": round(statistics.median(xs), 2),
                "p95_ms": round(xs[int(0.95 * (len(xs) - 1))], 2)}

    return {"cached_questions": count, "rounds": rounds, "paraphrases_served": served,
            "exact_lookup": summary(exact), "semantic_hit": summary(hit),
            "semantic_miss": summary(miss)}


def format_results(results: list[dict[str, Any]]) -> str:
    out = ["semantic lookup during an outage (added after the exact-cache miss), per request:"]
    for r in results:
        out.append(
            f"  {r['cached_questions']:>6} cached: semantic hit p50 {r['semantic_hit']['p50_ms']}"
            f" ms / p95 {r['semantic_hit']['p95_ms']} ms, miss p50 "
            f"{r['semantic_miss']['p50_ms']} ms / p95 {r['semantic_miss']['p95_ms']} ms "
            f"(exact lookup p50 {r['exact_lookup']['p50_ms']} ms; "
            f"{r['paraphrases_served']}/{r['rounds']} paraphrases served)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args(argv)
    results = [measure(int(n), args.rounds) for n in args.sizes.split(",")]
    print(json.dumps(results, indent=2) if args.json else format_results(results))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    sys.exit(main())
