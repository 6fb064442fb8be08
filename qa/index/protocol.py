"""What readers need of an index (`Store`) and how a build writes one (`StoreWriter`); see qa/index/__init__.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from qa.index.filters import Filters

if TYPE_CHECKING:
    import numpy as np

    from qa.ingest.chunking import Passage
    from qa.ingest.letter import Letter

Ranking = list[tuple[int, float]]  # (passage row, score), best first


class TermStatistics(Protocol):
    """How rare a (stemmed) word is among the passages: what the reader weighs a question's words by."""

    size: int  # passages counted

    def frequency(self, token: str) -> int: ...

    def idf(self, token: str) -> float: ...


class Store(Protocol):
    """An index generation as its readers need it. Passage rows are positions 0..n-1 in `passages`."""

    manifest: dict
    letters: dict[str, Letter]
    passages: list[Passage]
    letter_passages: dict[str, list[int]]  # letter id -> its rows, in text order
    rows: dict[str, int]  # passage id -> row
    generation: str | None  # which generation is loaded (a server reloads when the live one moves on)

    @property
    def lexical(self) -> TermStatistics: ...

    @property
    def model(self) -> str: ...

    @property
    def backend(self) -> str:
        """What ran the model (qa/embed/onnx_runtime.py); queries are embedded by the same."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def location(self) -> str: ...

    def passages_of(self, letter_id: str) -> list[Passage]: ...

    def sentences(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """A passage's sentence spans (k, 2), offsets in its letter, and their in-context vectors (k, dimension)."""
        ...

    def sentences_of(self, rows: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """`sentences` of several passages at once (one request to a remote store)."""
        ...

    def passage_vectors(self, rows: list[int]) -> np.ndarray: ...

    def mean_vector(self) -> np.ndarray:
        """The mean passage vector of the whole index (the reader's corpus baseline)."""
        ...

    def dense_ranking(self, query_vector: np.ndarray, filters: Filters, limit: int) -> Ranking:
        """Rows by cosine similarity to a (1, dimension) query vector, among the passages passing the filters."""
        ...

    def lexical_ranking(self, query: str, filters: Filters, limit: int | None) -> Ranking:
        """Rows by BM25 (Dutch stemming, stop words, diacritics folded) with score > 0; limit None: all of them."""
        ...

    def info(self) -> dict[str, object]: ...


class StoreWriter(Protocol):
    """Writes one new generation in batches; nothing is visible to readers until `commit`.

    Add a passage's letter before (or in the same batch as) its passages; passages get rows in the order added."""

    def add_letters(self, letters: Iterable[Letter], hashes: Mapping[str, str]) -> None: ...

    def add_passages(self, passages: Sequence[Passage], vectors: np.ndarray,
                     sentences: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        """Passages with their vectors (n, dimension) and per passage its sentence spans (k, 2) and vectors (k, dimension)."""
        ...

    def commit(self) -> str:
        """Make the written generation the live one, atomically; returns its name."""
        ...

    def abort(self) -> None:
        """Drop what was written (the live generation is untouched)."""
        ...
