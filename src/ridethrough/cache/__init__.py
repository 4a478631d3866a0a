"""Response cache: the exact cache in front, and the "stale" and "semantic" fallback tiers.

When every provider fails, an answer given yesterday to the same question (stale-if-error) or
to a question that means the same (semantic) beats an error page. The gateway calls
:class:`ResponseCache`; everything behind it is internal:

* ``keys``        normalize either wire format into one canonical request; hash it;
* ``store``       the SQLite file (``migrations``: its schema), and noticing when it breaks;
* ``semantic``    the embedding model and the similarity scan;
* ``guards``      word-level vetoes on semantic matches (negations, numbers, names …);
* ``entry``       what a hit returns.
"""

from .entry import CacheEntry
from .response_cache import ResponseCache
from .semantic import Embedder, EmbedderUnavailable, MiniLMEmbedder, SemanticIndex

__all__ = [
    "CacheEntry",
    "Embedder",
    "EmbedderUnavailable",
    "MiniLMEmbedder",
    "ResponseCache",
    "SemanticIndex",
]
