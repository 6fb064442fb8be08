"""The core API that the CLI and the web app share: an index and its model, loaded once."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qa import index as index_store
from qa.answering import Answer, answer
from qa.embedding import Embedder
from qa.retrieval import Filters, Hit, Mode, search

# Below this cosine similarity a passage is unlikely to be about the question (per model).
DENSE_THRESHOLDS = {"multilingual-e5-small": 0.80, "all-MiniLM-L6-v2": 0.35}
DEFAULT_DENSE_THRESHOLD = 0.5
_FOLLOW_UP = re.compile(r"^(en|maar|ook|wat|hoe|wanneer|waarom|wie)?\b.*\b(dat|die|dit|deze|daar|daarover|daarvan|hij|zij|ze|het|hem|hun|er)\b", re.I)


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str = ""


class Engine:
    def __init__(self, index: index_store.Index, embedder: Embedder) -> None:
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
        return answer(question if query == question else query, hits, self.index.lexical, self.dense_threshold)


def retrieval_query(question: str, history: Sequence[Turn]) -> str:
    """A short question leaning on an earlier turn ("En wanneer is dat afgerond?") gets its context."""
    if not history:
        return question
    words = question.split()
    if len(words) <= 8 and _FOLLOW_UP.search(question):
        return f"{history[-1].question} {question}"
    return question
