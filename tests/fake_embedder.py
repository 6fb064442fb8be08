"""A deterministic embedder for the fast tests: hashed, stemmed words instead of a neural model.

It satisfies `qa.embed.embedding.TextEmbedder`, so indexing, retrieval, answering, the API, the pages and
fetching run for real on top of it, in milliseconds and without the 1 GB model. Passages that share
content words with a query are near it, which is enough to test the logic around the model; what
the model itself gets right is tested with the real one (the `model` marker).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from qa.answer.answering import AnswerPolicy
from qa.index.lexical import tokenize

NAME = "test-hashed-words"
DIMENSION = 256
# The reader's confidence is calibrated on e5's vectors; hashed words say only "shares content words",
# so the fast tier answers whatever it finds (declines are tested with the real model).
FAST_POLICY = AnswerPolicy(decline_below=0.0)


def _bucket(word: str) -> tuple[int, float]:
    digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
    return int.from_bytes(digest[:4], "little") % DIMENSION, 1.0 if digest[4] & 1 else -1.0


def _vector(text: str) -> np.ndarray:
    vector = np.zeros(DIMENSION, dtype=np.float32)
    for word in tokenize(text):
        position, sign = _bucket(word)
        vector[position] += sign
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


class FakeEmbedder:
    """The same text always gives the same vector, in every process."""

    name = NAME
    dimension = DIMENSION
    backend = "test"

    def __init__(self) -> None:
        self.queries = 0  # how many queries were embedded (tests of caching and of not embedding)
        self.passages = 0

    def embed_query(self, text: str) -> np.ndarray:
        self.queries += 1
        return _vector(text)[None, :]

    def embed_passages_with_spans(
        self, texts: Sequence[str], spans: Sequence[np.ndarray], batch_size: int = 32, progress: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        self.passages += len(texts)
        vectors = np.stack([_vector(text) for text in texts]) if texts else np.zeros((0, DIMENSION), dtype=np.float32)
        span_vectors = [
            np.stack([_vector(text[start:end]) for start, end in np.asarray(text_spans).reshape(-1, 2)])
            if len(text_spans) else np.zeros((0, DIMENSION), dtype=np.float32)
            for text, text_spans in zip(texts, spans, strict=True)
        ]
        return vectors, span_vectors
