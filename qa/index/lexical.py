"""Dutch lexical search: tokenising with stemming and stop words, and BM25 over passages.

Dense models miss exact names, numbers and rare terms that users type ("Resolute Support",
"TAAC-N", "2021"); BM25 catches them. Diacritics are folded so "beeindiging" finds "beëindiging".
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_DUTCH

from qa.ingest.cleaning import without_note_markers

_WORD = re.compile(r"\w+", re.UNICODE)
# Question words, and words so frequent in letters that they carry no topic.
_EXTRA_STOPWORDS = {"wanneer", "waarom", "hoeveel", "welke", "welk", "waarover", "waarmee", "hoelang",
                    "klopt", "uw", "wij", "graag", "nr", "jl"}
STOPWORDS = frozenset(STOPWORDS_DUTCH) | _EXTRA_STOPWORDS
_stemmer = Stemmer.Stemmer("dutch")


def fold(text: str) -> str:
    """Lowercase and strip diacritics."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def content_words(text: str) -> list[str]:
    """The words of a text that count, folded but not stemmed, in order: what a store that stems by itself
    (Milvus's Dutch analyzer) is given, so that it sees the same words as `tokenize`."""
    words = _WORD.findall(fold(without_note_markers(text)))  # "grondstoffen¹" is the word "grondstoffen"
    return [word for word in words if word not in STOPWORDS and (len(word) > 1 or word.isdigit())]


def tokenize(text: str) -> list[str]:
    """Stemmed content words of a text, in order."""
    return [_stem(word) for word in content_words(text)]


def term_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where in `text` the words stand that match a content word of `query` as BM25 matches them (same stem,
    diacritics folded): what a results page highlights."""
    wanted = set(tokenize(query))
    if not wanted:
        return []
    spans = []
    for match in _WORD.finditer(text):
        word = fold(match.group())
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()) and _stem(word) in wanted:
            spans.append(match.span())
    return spans


def idf(frequency: int, size: int) -> float:
    """Inverse document frequency (BM25's, as bm25s and Milvus compute it); unknown words weigh most (they are the rarest)."""
    return float(np.log(1 + (size - frequency + 0.5) / (frequency + 0.5)))


def document_frequencies(token_lists: Iterable[list[str]]) -> dict[str, int]:
    """In how many documents each token occurs."""
    frequency: dict[str, int] = {}
    for document in token_lists:
        for token in set(document):
            frequency[token] = frequency.get(token, 0) + 1
    return frequency


class LexicalIndex:
    """BM25 over passages, scores for every passage at once so filters are a mask."""

    def __init__(self, bm25: bm25s.BM25, document_frequency: dict[str, int], size: int) -> None:
        self._bm25 = bm25
        self._document_frequency = document_frequency
        self.size = size

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        tokens = [tokenize(text) or ["\u2205"] for text in texts]  # bm25s wants no empty document
        bm25 = bm25s.BM25(k1=1.2, b=0.75)
        bm25.index(tokens, show_progress=False)
        return cls(bm25, document_frequencies(tokens), len(texts))

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        known = [token for token in query_tokens if token in self._bm25.vocab_dict]
        if not known or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def frequency(self, token: str) -> int:
        """In how many passages a (stemmed) token occurs; 0 for a word no letter uses."""
        return self._document_frequency.get(token, 0)

    def idf(self, token: str) -> float:
        return idf(self._document_frequency.get(token, 0), self.size)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)
        (folder / "document_frequency.json").write_text(json.dumps(self._document_frequency), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        bm25 = bm25s.BM25.load(str(folder), mmap=False, show_progress=False)
        frequency = json.loads((folder / "document_frequency.json").read_text(encoding="utf-8"))
        return cls(bm25, frequency, size)
