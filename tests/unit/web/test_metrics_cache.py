"""/metrics carries this process's response cache: lookups, semantic vetoes by guard, and the
background embedder (embedded, dropped past its queue, queued now)."""

from __future__ import annotations

import pytest

from ridethrough.cache import ResponseCache
from ridethrough.config import HealthConfig
from ridethrough.gateway import Gateway
from ridethrough.health import install
from ridethrough.health.service import HealthService
from ridethrough.routing.clock import FakeClock
from ridethrough.web import metrics
from support.health_records import simulated_config


@pytest.fixture()
def svc() -> HealthService:
    clock = FakeClock(1_760_000_000.0)
    gw = Gateway(simulated_config(), clock=clock)
    svc = install(gw, store_path=None, clock=clock, config=HealthConfig(page_name="Acme AI"))
    assert svc is not None
    return svc


def test_the_cache_and_the_embedder_counters_are_exposed(svc: HealthService) -> None:
    cache = ResponseCache(None)
    stats = cache.stats()
    cache.close()
    # The keys /metrics reads are the ones the cache reports (a rename would show as zeros).
    assert {"hits", "stale_hits", "misses", "semantic_hits", "semantic_misses",
            "semantic_rejections", "semantic_embedded", "semantic_embed_dropped",
            "semantic_embed_queued", "semantic_available"} <= set(stats)
    stats.update(hits=7, misses=3, semantic_hits=2, semantic_misses=5,
                 semantic_rejections={"substitution": 4, "negation": 1},
                 semantic_embedded=40, semantic_embed_dropped=6, semantic_embed_queued=12,
                 semantic_available=True)
    text = metrics.render(svc, cache=stats)
    for line in ('ridethrough_cache_lookups_total{result="hit"} 7',
                 'ridethrough_cache_lookups_total{result="stale_hit"} 0',
                 'ridethrough_cache_lookups_total{result="miss"} 3',
                 'ridethrough_semantic_lookups_total{result="hit"} 2',
                 'ridethrough_semantic_lookups_total{result="miss"} 5',
                 'ridethrough_semantic_rejections_total{guard="negation"} 1',
                 'ridethrough_semantic_rejections_total{guard="substitution"} 4',
                 'ridethrough_semantic_embeddings_total{result="embedded"} 40',
                 'ridethrough_semantic_embeddings_total{result="dropped"} 6',
                 "ridethrough_semantic_embed_queued 12",
                 "ridethrough_semantic_available 1",
                 "# TYPE ridethrough_semantic_embeddings_total counter",
                 "# TYPE ridethrough_semantic_embed_queued gauge"):
        assert line in text.splitlines(), line


def test_without_a_cache_nothing_about_it_is_written(svc: HealthService) -> None:
    assert "ridethrough_semantic" not in metrics.render(svc)
    assert "ridethrough_cache" not in metrics.render(svc)
