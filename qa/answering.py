"""Extractive answers: the most relevant sentences of the retrieved passages, each cited.

No language model writes anything: every sentence of an answer is a verbatim quote of a letter,
so a citation can never claim what its passage does not say. When the passages barely touch the
question we decline instead of quoting something beside the point.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from qa.chunking import is_heading
from qa.lexical import LexicalIndex, tokenize
from qa.retrieval import Hit

DECLINE = "Ik kan deze vraag niet beantwoorden op basis van de brieven in de index."
MAX_SENTENCES = 3
PASSAGES_READ = 3
MAX_QUOTE_CHARS = 600
SECOND_SENTENCE_SHARE = 0.6  # further sentences must score this close to the best one
_ENDS_SENTENCE = re.compile(r"[.!?;:][\"'”’»)]*$")

# Question words and the kind of sentence that answers them.
_ASKS_TIME = re.compile(r"\b(wanneer|welke datum|per wanneer|tot wanneer|hoe lang|welk jaar|welke termijn|vanaf wanneer)\b", re.I)
_ASKS_AMOUNT = re.compile(r"\b(hoeveel|hoe groot|hoe hoog|welk bedrag|hoe veel|wat kost|hoeveelheid|aantal)\b", re.I)
_ASKS_REASON = re.compile(r"\b(waarom|om welke reden|waardoor|hoe komt)\b", re.I)
_ASKS_WHO = re.compile(r"\b(wie|welke minister|welk ministerie|welke organisatie)\b", re.I)
_TIME = re.compile(
    r"\b(\d{1,2}\s+(jan|feb|maa|apr|mei|jun|jul|aug|sep|okt|nov|dec)\w*|(januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|december)\s+\d{4}"
    r"|(19|20)\d{2}|kwartaal|uiterlijk|voorjaar|najaar|zomer|winter|eind|begin|medio|binnen\s+\w+\s+(dagen|weken|maanden|jaar))\b",
    re.I,
)
_AMOUNT = re.compile(r"(€|\bEUR\b|\d|\b(miljoen|miljard|procent|duizend|honderd|tientallen|enkele)\b)", re.I)
_REASON = re.compile(r"\b(omdat|doordat|vanwege|daarom|reden|teneinde|zodat|aangezien|gezien|met het oog op)\b", re.I)
_WHO = re.compile(r"\b(minister|staatssecretaris|kabinet|ministerie|dienst|inspectie|gemeente|[A-Z][a-z]+\s[A-Z][a-z]+)\b")
_INNER_ANAPHOR = re.compile(r"\b(dit|deze|die|daar|hiervan|daarvan)\b", re.I)
_ANAPHOR = re.compile(r"^(dit|deze|dat|die|hij|zij|ze|hiermee|daarmee|hierbij|daarbij|hiervoor|daarvoor|hierdoor|daardoor)\b", re.I)


@dataclass(frozen=True)
class Citation:
    n: int
    passage_id: str
    letter_id: str
    title: str | None
    date: str | None
    sender: str | None
    section: str | None
    page: int
    url: str | None
    quote: str
    quote_start: int  # offsets of the quote in the cleaned letter text
    quote_end: int
    score: float


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    abstained: bool
    citations: list[Citation]
    hits: list[Hit]
    evidence: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Sentence:
    hit_rank: int
    start: int  # offsets of the quote in the letter text
    end: int
    sentence_start: int  # the sentence itself, without the sentences it leans on
    lexical_score: float
    coverage: float


SentenceSimilarity = Callable[[Hit], Mapping[tuple[int, int], float]]
"""Similarity to the question of a passage's sentences (read in context), by their offsets in the letter."""


def _weights(terms: set[str], lexical: LexicalIndex) -> dict[str, float]:
    return {term: lexical.idf(term) for term in terms}


def _coverage(text: str, weights: dict[str, float]) -> float:
    """Share of the question's (idf-weighted) content words that occur in a text."""
    total = sum(weights.values())
    if not total:
        return 0.0
    present = set(tokenize(text))
    return sum(weight for term, weight in weights.items() if term in present) / total


def _type_bonus(question: str, sentence: str) -> float:
    bonus = 0.0
    for asks, answers, weight in (
        (_ASKS_TIME, _TIME, 0.25),
        (_ASKS_AMOUNT, _AMOUNT, 0.2),
        (_ASKS_REASON, _REASON, 0.15),
        (_ASKS_WHO, _WHO, 0.1),
    ):
        if asks.search(question):
            bonus += weight if answers.search(sentence) else -weight / 2
    return bonus


def _leans_on_previous(sentence: str) -> bool:
    """"Dit is ..." or a short "Uiterlijk 11 september dient dit te zijn afgerond." needs what came before."""
    return bool(_ANAPHOR.match(sentence) or (len(sentence) < 90 and _INNER_ANAPHOR.search(sentence)))


def _expand_backwards(text: str, spans: list[tuple[int, int]], index: int) -> int:
    """First sentence of a quote: up to two earlier sentences when the quote leans on them."""
    first = index
    while first > 0 and index - first < 2 and _leans_on_previous(text[spans[first][0] : spans[first][1]]):
        if spans[index][1] - spans[first - 1][0] > MAX_QUOTE_CHARS:
            break
        first -= 1
    return first


def _candidate_sentences(question: str, hits: Sequence[Hit], weights: dict[str, float]) -> list[_Sentence]:
    """Sentences of the top passages that can stand alone as an answer, with lexical scores."""
    sentences = []
    for rank, hit in enumerate(hits[:PASSAGES_READ]):
        text = hit.letter.text
        context_terms = set(tokenize(" ".join(filter(None, [hit.letter.title, hit.passage.section]))))
        context = sum(w for t, w in weights.items() if t in context_terms) / (sum(weights.values()) or 1)
        spans = hit.passage.sentences()
        for i, (start, end) in enumerate(spans):
            sentence = text[start:end]
            # Letter heads, dates, signatures and headings are not answers.
            if len(sentence.split()) < 6 or is_heading(sentence) or not (_ENDS_SENTENCE.search(sentence) or len(sentence) > 120):
                continue
            coverage = _coverage(sentence, weights)
            score = coverage + 0.2 * context + _type_bonus(question, sentence) + 0.15 / (1 + rank)
            if len(sentence) > 400:
                score -= 0.1
            first = _expand_backwards(text, spans, i)
            sentences.append(_Sentence(rank, spans[first][0], end, start, score, coverage))
    return sentences


def evidence(question: str, hits: Sequence[Hit], lexical: LexicalIndex) -> dict[str, float]:
    """How well the best passages match the question: the basis for declining."""
    weights = _weights(set(tokenize(question)), lexical)
    top = hits[:3]
    return {
        "coverage": max((_coverage(f"{hit.letter.title or ''} {hit.passage.section or ''} {hit.passage.text}", weights) for hit in top), default=0.0),
        "dense": max((hit.dense_score or 0.0 for hit in top), default=0.0),
        "terms": float(len(weights)),
    }


def should_decline(signals: dict[str, float], dense_threshold: float) -> bool:
    """Decline when the passages are semantically far from the question and share few of its words.

    The threshold is per model (cosine scales differ); it was set on the project's own question
    set so that few answerable questions are declined (see README, evaluation)."""
    if signals["terms"] and signals["coverage"] >= 0.6:
        return False
    return signals["dense"] < dense_threshold


def answer(
    question: str,
    hits: Sequence[Hit],
    lexical: LexicalIndex,
    dense_threshold: float,
    similarity: SentenceSimilarity | None = None,
) -> Answer:
    """Compose a cited extractive answer from ranked hits, or decline.

    Sentences are ranked by their words (idf-weighted overlap, the kind of fact the question
    asks for) and, with a `similarity`, by meaning, which finds answers phrased unlike the question."""
    signals = evidence(question, hits, lexical)
    if not hits or should_decline(signals, dense_threshold):
        return Answer(question, DECLINE, True, [], list(hits), signals)

    weights = _weights(set(tokenize(question)), lexical)
    candidates = _candidate_sentences(question, hits, weights)
    if not candidates:
        return Answer(question, DECLINE, True, [], list(hits), signals)
    scores = np.array([c.lexical_score for c in candidates], dtype=np.float32)
    if similarity is not None:
        by_rank = {rank: similarity(hits[rank]) for rank in {c.hit_rank for c in candidates}}
        meaning = np.array([by_rank[c.hit_rank].get((c.sentence_start, c.end), 0.0) for c in candidates], dtype=np.float32)
        spread = float(meaning.max() - meaning.min()) or 1.0
        scores = 0.5 * scores + (meaning - meaning.min()) / spread
    order = np.argsort(-scores, kind="stable")
    best = float(scores[order[0]])
    chosen: list[_Sentence] = []
    chosen_scores: list[float] = []
    for position in order:
        sentence = candidates[position]
        if len(chosen) == MAX_SENTENCES or scores[position] < best * SECOND_SENTENCE_SHARE:
            break
        letter_id = hits[sentence.hit_rank].letter.id
        overlapping = next(
            (i for i, c in enumerate(chosen)
             if hits[c.hit_rank].letter.id == letter_id and c.start < sentence.end and sentence.start < c.end),
            None,
        )
        if overlapping is None:
            chosen.append(sentence)
            chosen_scores.append(float(scores[position]))
            continue
        # Overlapping quotes of one passage become one quote, when it stays short.
        kept = chosen[overlapping]
        start, end = min(kept.start, sentence.start), max(kept.end, sentence.end)
        if kept.hit_rank == sentence.hit_rank and end - start <= MAX_QUOTE_CHARS:
            chosen[overlapping] = replace(kept, start=start, end=end)

    citations: list[Citation] = []
    numbers: dict[str, int] = {}
    parts: list[str] = []
    for sentence, score in zip(chosen, chosen_scores):
        hit = hits[sentence.hit_rank]
        quote = hit.letter.text[sentence.start : sentence.end]
        assert quote in hit.passage.text, "a citation must quote its own passage"
        number = numbers.setdefault(hit.passage.id, len(numbers) + 1)
        citations.append(
            Citation(
                n=number,
                passage_id=hit.passage.id,
                letter_id=hit.letter.id,
                title=hit.letter.title,
                date=hit.letter.date,
                sender=hit.letter.sender,
                section=hit.passage.section,
                page=hit.passage.page,
                url=hit.letter.url,
                quote=quote,
                quote_start=sentence.start,
                quote_end=sentence.end,
                score=round(score, 4),
            )
        )
        parts.append(f"{' '.join(quote.split())} [{number}]")
    return Answer(question, " ".join(parts), False, citations, list(hits), signals)
