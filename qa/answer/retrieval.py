"""Hybrid retrieval: dense and BM25 rankings (of any `qa.index.Store`) fused by reciprocal rank, with filters.

Rank fusion needs no score calibration between the two engines, which differ per model and
corpus; each keeps its raw score beside the fused one so answering can judge the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qa.core import limits as rules
from qa.embed.embedding import TextEmbedder
from qa.index.filters import Filters  # its home is qa/index/filters.py; callers import it from here too
from qa.index.fusion import fuse, fusion_for
from qa.index.lexical import content_words, tokenize
from qa.index.protocol import Store
from qa.ingest.chunking import Passage
from qa.ingest.letter import Letter

Mode = Literal["hybrid", "dense", "lexical"]
CANDIDATES = 100


def full_text(index: Store, text: str) -> dict[str, float]:
    """Letters whose passages hold every content word of `text` (stemmed, diacritics folded: "beeindiging" finds
    "beëindiging"), each with the BM25 score of its best passage for the whole text. The words may stand in
    different passages of the letter."""
    words = list({stem: word for word, stem in zip(content_words(text), tokenize(text))}.values())  # one per stem
    if not words or not index.passages:
        return {}
    found: set[str] | None = None
    for word in words:
        letters = {index.passages[row].letter_id for row, _ in index.lexical_ranking(word, Filters(), None)}
        found = letters if found is None else found & letters
        if not found:
            return {}
    scores = dict(index.lexical_ranking(text, Filters(), None))
    return {letter_id: max(scores.get(row, 0.0) for row in index.letter_passages[letter_id]) for letter_id in found or ()}


def matching_letters(index: Store, filters: Filters, text: str | None = None, sort: rules.Sort = "relevance") -> list[Letter]:
    """Letters passing the filters and, when `text` is given, holding it: in the full text (`full_text`), or in the
    id or title (a reference like "kst-27925-781" typed whole). Relevance puts id/title matches first, then the
    best BM25 passage; without text it is newest first."""
    needle = (text or "").strip()
    letters = [letter for letter in index.letters.values() if filters.accepts(letter)]
    newest = sorted(letters, key=lambda letter: (letter.date or "", letter.id), reverse=True)
    if needle:
        lowered = needle.lower()
        scores = full_text(index, needle)
        named = {letter.id for letter in letters if lowered in f"{letter.id} {letter.title or ''}".lower()}
        newest = [letter for letter in newest if letter.id in scores or letter.id in named]
        if sort == "relevance":  # stable: equal scores stay newest first
            return sorted(newest, key=lambda letter: (letter.id not in named, -scores.get(letter.id, 0.0)))
    if sort == "oldest":
        return newest[::-1]
    return newest


def word_matches(index: Store, query: str, filters: Filters = Filters()) -> list[int]:
    """Passage rows that hold at least one content word of `query` (as BM25 matches words) and pass the filters:
    the set a results page counts its facets over, so that a facet's count is what filtering by it leaves."""
    return sorted(row for row, _ in index.lexical_ranking(query, filters, None))


def sort_hits(hits: list[Hit], sort: rules.Sort) -> list[Hit]:
    """Ranked hits as asked: by relevance (as ranked), newest or oldest letter first (then by rank)."""
    if sort == "relevance":
        return list(hits)
    dated = sorted(hits, key=lambda hit: hit.letter.date or ("" if sort == "newest" else "9999"), reverse=sort == "newest")
    return dated


@dataclass(frozen=True)
class Hit:
    passage: Passage
    letter: Letter
    score: float  # fused score (or the single engine's score)
    dense_score: float | None  # cosine similarity
    lexical_score: float | None  # BM25


def search(
    index: Store,
    embedder: TextEmbedder,
    query: str,
    k: int = 5,
    filters: Filters = Filters(),
    mode: Mode = "hybrid",
) -> list[Hit]:
    limit = max(CANDIDATES, k)
    dense = index.dense_ranking(embedder.embed_query(query), filters, limit) if mode != "lexical" else []
    lexical = index.lexical_ranking(query, filters, limit) if mode != "dense" else []
    dense_scores = dict(dense)
    lexical_scores = dict(lexical)
    if mode == "hybrid":
        fused = fuse([row for row, _ in dense], [row for row, _ in lexical], fusion_for(embedder.name))
        ranked = sorted(fused.items(), key=lambda item: -item[1])
    else:
        ranked = dense or lexical
    hits = []
    for row, score in ranked[:k]:
        passage = index.passages[row]
        hits.append(Hit(passage, index.letters[passage.letter_id], score, dense_scores.get(row), lexical_scores.get(row)))
    return hits
