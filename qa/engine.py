"""The core API that the CLI and the web app share: an index and its model, loaded once."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from qa import index as index_store
from qa.answering import Answer, answer
from qa.embedding import Embedder, TextEmbedder
from qa.retrieval import Filters, Hit, Mode, search

# Below this cosine similarity a passage is unlikely to be about the question (per model).
DENSE_THRESHOLDS = {"multilingual-e5-small": 0.835, "all-MiniLM-L6-v2": 0.45}
DEFAULT_DENSE_THRESHOLD = 0.5
# A follow-up starts like one ("En ...") or points back ("dat", "daarover"); "het" and "er" are too
# common as article and filler to count as pointing back.
_CONTINUATION = re.compile(r"^(en|maar|ook|dus|of)\b", re.I)
_ANAPHOR = re.compile(
    r"\b(dat|dit|die|deze|daar\w*|hier(van|over|mee|door|na|voor|bij|in|uit|op|aan)|ervan|erover|ermee|erna|erdoor|hij|zij|ze|hem|hun|zo'n|dezelfde|datzelfde)\b",
    re.I,
)
FOLLOW_UP_WORDS = 10


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str = ""


class Engine:
    def __init__(self, index: index_store.Index, embedder: TextEmbedder) -> None:
        # One question at a time: FAISS's OpenMP threads cost more than they save there
        # (the "1 thread" columns of docs/benchmarks.md, section Scale, from `python bench/scale.py`).
        faiss.omp_set_num_threads(1)
        self.index = index
        self.embedder = embedder
        self.dense_threshold = DENSE_THRESHOLDS.get(embedder.name, DEFAULT_DENSE_THRESHOLD)

    @classmethod
    def open(cls, folder: Path, model: str | None = None) -> Engine:
        """Load the index and the model it was built with (asking for another one is an error)."""
        index = index_store.load(folder)
        if model and model != index.model:
            raise index_store.IndexStateError(
                f"{folder} was built with model {index.model!r}; it cannot be searched with {model!r}. "
                f"Rebuild it with `qa index build --model {model}`."
            )
        return cls(index, Embedder(index.model))

    def search(self, query: str, k: int = 5, filters: Filters = Filters(), mode: Mode = "hybrid") -> list[Hit]:
        return search(self.index, self.embedder, query, k, filters, mode)

    def ask(
        self, question: str, k: int = 5, filters: Filters = Filters(), history: Sequence[Turn] = (), mode: Mode = "hybrid"
    ) -> Answer:
        """Answer a question; a follow-up borrows the previous question's words to retrieve."""
        query = retrieval_query(question, history)
        hits = self.search(query, k=k, filters=filters, mode=mode)
        query_vector = self.embedder.embed_query(query)[0]

        def similarity(hit: Hit) -> dict[tuple[int, int], float]:
            spans, vectors = self.index.sentences(self.index.rows[hit.passage.id])
            scores = np.asarray(vectors, dtype=np.float32) @ query_vector
            return {(int(start), int(end)): float(score) for (start, end), score in zip(spans, scores)}

        return answer(query, hits, self.index.lexical, self.dense_threshold, similarity)


def retrieval_query(question: str, history: Sequence[Turn]) -> str:
    """A short question leaning on an earlier turn ("En wanneer is dat afgerond?") gets that turn's question,
    itself with its context when it was a follow-up too, so a third "En waarom?" still knows the topic."""
    if not history:
        return question
    if len(question.split()) <= FOLLOW_UP_WORDS and (_CONTINUATION.search(question) or _ANAPHOR.search(question)):
        return f"{retrieval_query(history[-1].question, history[:-1])} {question}"
    return question
