"""Earlier Kamervragen: the question/answer pairs of every answer to Kamervragen, ranked for a new question.

An "Aanhangsel van de Handelingen" restates each question ("Vraag 3") before its answer
("Antwoord 3"). A pair is the Vraag's text and its Antwoord's text, each an exact span of the
cleaned letter (offsets, so the letter page can highlight them; the text is never edited), with
the letter's date, the members who asked, the answering minister and the official link.

Pairs are derived from what the index already stores (the letters' text, the passages' sentence
spans and their in-context sentence vectors), so they cost no model run and no index format change:
`PairIndex.build(index)` reads them in milliseconds when an index is loaded.

Ranking for a user's question weighs how well the earlier *question* matches (its sentences'
vectors against the question's, and the question's words in it) and how well its *answer* answers
(the reader of qa/answer/reader.py scoring the Antwoord's sentences, as it scores any passage). Every
number of that is a field of `PairPolicy`, with its measurement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from qa.answer import reader
from qa.answer.reader import BLOCK_HEADING, QuestionView, ReadPassage, block_numbers
from qa.answer.retrieval import Filters, Hit
from qa.core import limits
from qa.index.lexical import tokenize
from qa.index.protocol import Store as Index
from qa.ingest.chunking import Passage
from qa.ingest.letter import Letter
from qa.ingest.metadata import parse_dutch_date

if TYPE_CHECKING:
    from qa.answer.engine import Engine

_PARAGRAPH = re.compile(r"[^\n]+(?:\n(?!\n)[^\n]+)*")
# Paragraphs that are page furniture, not the Vraag or Antwoord: a footnote number or a page number alone,
# a footnote with its link, the publication footer ("ah-tk-20232024-1292", "ISSN", "'s-Gravenhage 2024",
# "Tweede Kamer, vergaderjaar 2023–2024, Aanhangsel"). Trimmed from the end of a block, never from within.
_FURNITURE = re.compile(
    r"^\d{1,3}$|https?://|www\.\w|^ah-tk-\d|^ISSN\b|^[’'`]s-Gravenhage\s+\d{4}$|^Tweede Kamer, vergaderjaar|^Aanhangsel\b"
    r"|^\d{1,3}\s+\S",  # a footnote: its number, then its text
    re.I,
)
_ASKERS = re.compile(r"Vragen van (?:het lid|de leden)\s+(?P<who>.+?)\s+aan\s+(?:de|het)\s", re.S)
_ASKED_ON = re.compile(r"\(ingezonden\s+(?P<day>[^)]+)\)")
_SPLIT_NAMES = re.compile(r"\s*,\s*|\s+en\s+")


@dataclass(frozen=True)
class Pair:
    """One earlier Kamervraag and the government's answer, each an exact span of its letter."""

    id: str  # "<letter id>#vraag-<first number>"
    letter_id: str
    label: str  # the Vraag heading as printed: "Vraag 3, 4 en 5"
    numbers: tuple[str, ...]
    question_start: int
    question_end: int
    answer_label: str  # "Antwoord 3, 4 en 5"
    answer_start: int
    answer_end: int

    def question(self, letter: Letter) -> str:
        return letter.text[self.question_start : self.question_end]

    def answer(self, letter: Letter) -> str:
        return letter.text[self.answer_start : self.answer_end]


@dataclass(frozen=True)
class Block:
    kind: str  # "vraag" or "antwoord"
    label: str
    numbers: tuple[str, ...]
    start: int  # the body, after the heading
    end: int


def _paragraphs(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _PARAGRAPH.finditer(text)]


def blocks(text: str) -> list[Block]:
    """The Vraag and Antwoord blocks of a letter, in order: each heading's body up to the next heading."""
    paragraphs = _paragraphs(text)
    headings: list[tuple[int, str, str, tuple[str, ...]]] = []  # paragraph index, kind, label, numbers
    for i, (start, end) in enumerate(paragraphs):
        match = BLOCK_HEADING.fullmatch(text[start:end].strip())
        if match:
            headings.append((i, match.group(1).lower(), " ".join(text[start:end].split()),
                             block_numbers(match.group(2))))
    found = []
    for position, (i, kind, label, numbers) in enumerate(headings):
        last = headings[position + 1][0] if position + 1 < len(headings) else len(paragraphs)
        body = paragraphs[i + 1 : last]
        while body and _FURNITURE.search(text[body[-1][0] : body[-1][1]].strip()):
            body.pop()
        if body:
            found.append(Block(kind, label, numbers, body[0][0], body[-1][1]))
    return found


def letter_pairs(letter: Letter) -> list[Pair]:
    """Each Vraag with the Antwoord that follows it and names its number (one answer may take several)."""
    found: list[Pair] = []
    waiting: list[Block] = []
    for block in blocks(letter.text):
        if block.kind == "vraag":
            waiting.append(block)
            continue
        for question in [q for q in waiting if set(q.numbers) & set(block.numbers)]:
            found.append(Pair(f"{letter.id}#vraag-{question.numbers[0]}", letter.id, question.label, question.numbers,
                              question.start, question.end, block.label, block.start, block.end))
        waiting = [q for q in waiting if not set(q.numbers) & set(block.numbers)]
    return found


def askers(letter: Letter) -> list[str]:
    """The members who asked, as the Aanhangsel names them: ['Mutluer (GroenLinks-PvdA)', 'Kostić (PvdD)']."""
    match = _ASKERS.search(letter.text[:3000])
    if not match:
        return []
    who = " ".join(match.group("who").split())
    names, depth, current = [], 0, ""
    for piece in re.split(r"(\(|\)|\s*,\s*|\s+en\s+)", who):
        depth += piece.count("(") - piece.count(")")
        if depth == 0 and piece and _SPLIT_NAMES.fullmatch(piece):
            names.append(current.strip())
            current = ""
        else:
            current += piece
    names.append(current.strip())
    return [name for name in names if name]


def asked_on(letter: Letter) -> str | None:
    """The day the questions were sent in ("ingezonden 11 maart 2024"), ISO."""
    match = _ASKED_ON.search(letter.text[:3000])
    return parse_dutch_date(match.group("day")) if match else None


@dataclass(frozen=True)
class PairInfo:
    """A pair with what the ranking reads: its letter, the rows of its passages and its sentences."""

    pair: Pair
    letter: Letter
    askers: tuple[str, ...]
    asked_on: str | None
    question_vectors: np.ndarray  # (k, dimension): the Vraag's sentences, read in context
    answer_spans: np.ndarray  # (m, 2): the Antwoord's sentences (offsets in the letter)
    answer_vectors: np.ndarray  # (m, dimension)
    answer_passage: Passage  # the passage holding the Antwoord's start (its section, for the reader)


def _sentences_within(index: Index, rows: Sequence[int], start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Stored sentence spans and vectors of the passages `rows` that lie within [start, end), each once."""
    spans: list[tuple[int, int]] = []
    vectors: list[np.ndarray] = []
    seen: set[tuple[int, int]] = set()
    for row in rows:
        row_spans, row_vectors = index.sentences(row)
        for (s, e), vector in zip(row_spans.tolist(), row_vectors):
            if start <= s and e <= end and (s, e) not in seen:
                seen.add((s, e))
                spans.append((s, e))
                vectors.append(np.asarray(vector, dtype=np.float32))
    dimension = index.dimension
    if not spans:
        return np.zeros((0, 2), np.int64), np.zeros((0, dimension), np.float32)
    order = np.argsort([s for s, _ in spans], kind="stable")
    return np.asarray(spans, np.int64)[order], np.stack(vectors)[order]


@dataclass
class PairIndex:
    """Every pair of an index, with the stored vectors its ranking needs, built once per loaded index."""

    items: list[PairInfo] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)
    generation: str | None = None

    @classmethod
    def build(cls, index: Index, letter_ids: Sequence[str] | None = None) -> PairIndex:
        """The pairs of all letters (or of `letter_ids` only: a saved question's check reads just the new letters)."""
        built = cls(generation=index.generation)
        ids = index.letters.keys() if letter_ids is None else [i for i in letter_ids if i in index.letters]
        for letter_id in ids:
            letter = index.letters[letter_id]
            pairs = letter_pairs(letter)
            if not pairs:
                continue
            rows = index.letter_passages.get(letter_id, [])
            who, day = tuple(askers(letter)), asked_on(letter)
            for pair in pairs:
                question_spans, question_vectors = _sentences_within(index, rows, pair.question_start, pair.question_end)
                answer_spans, answer_vectors = _sentences_within(index, rows, pair.answer_start, pair.answer_end)
                if not len(question_spans) or not len(answer_spans):
                    continue
                row = next((r for r in rows if index.passages[r].start <= pair.answer_start < index.passages[r].end), rows[0])
                built.by_id[pair.id] = len(built.items)
                built.items.append(PairInfo(pair, letter, who, day, question_vectors, answer_spans, answer_vectors, index.passages[row]))
        return built

    def __len__(self) -> int:
        return len(self.items)

    def get(self, pair_id: str) -> PairInfo | None:
        position = self.by_id.get(pair_id)
        return None if position is None else self.items[position]


# --- ranking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairPolicy:
    """Every number of ranking pairs, with its measurement: `python eval/kamervragen.py --index /tmp/e5`
    on eval/kamervragen.jsonl (20 rephrased Kamervragen of the shared corpus, their own pair to find among
    158; a small development set, so these are round values, not fitted ones) and on eval/questions.jsonl
    (questions about other letters, for the thresholds)."""

    # The earlier question's best sentence (its stored in-context vector) against the user's question:
    # alone R@1 0.85; the mean of its sentences 0.80; embedding each Vraag anew as a query 0.95, but
    # that is a model run per pair (42 s for the 158 pairs here), so the stored vectors are used.
    weight_question: float = 1.0
    # The user's question's words (idf-weighted) in the Vraag: with 0.2 beside the question score R@1 0.90,
    # MRR 0.94 (0.1: 0.95 but R@3 0.95; 0.3 and more: 0.85-0.90).
    weight_coverage: float = 0.2
    # How well the Antwoord answers, as the reader scores its best sentence (qa/answer/reader.py, the answer
    # policy's sentence weights): alone R@1 0.60; 0.05 beside the two above: R@1 0.95, R@3 1.00, MRR 0.967;
    # 0.1: 0.90.
    weight_answer: float = 0.05
    # The reader reads the answers of this many pairs, the best by question match (or the page asked for).
    shortlist: int = 30
    # The chat's panel "Eerder gestelde Kamervragen" shows pairs scoring at least this, at most `panel_max`.
    # The own pair of the 20 rephrased Kamervragen scores 0.945 at least (median 1.057); the best pair for the
    # 176 questions of eval/questions.jsonl about other letters scores a median 0.899, p95 0.956. From 0.945:
    # 0.95 of the own pairs shown, a pair beside 0.07 of the other questions (0.92: 1.00 and 0.20).
    panel_from: float = 0.945
    panel_max: int = 3
    # Lists (the page, the API, the CLI) leave out pairs scoring below this unless asked (`min_score`):
    # from 0.85 every own pair is kept (0.80 keeps a pair for every other question too).
    list_from: float = 0.85


DEFAULT_PAIR_POLICY = PairPolicy()


@dataclass(frozen=True)
class Match:
    """A pair ranked for a question: its score and what it is made of, and the Antwoord's best sentence."""

    info: PairInfo
    score: float
    question_score: float  # the best cosine of the Vraag's sentences to the question
    coverage: float  # share of the question's idf mass in the Vraag
    answer_score: float  # the reader's score of the Antwoord's best sentence (0 when not read)
    best_sentence: tuple[int, int] | None  # offsets of that sentence in the letter


class RankedPairs:
    """The pairs of one PairIndex as matrices, so a question costs a few dot products."""

    def __init__(self, pairs: PairIndex) -> None:
        self.pairs = pairs
        items = pairs.items
        dimension = items[0].question_vectors.shape[1] if items else 1
        self._vectors = np.concatenate([p.question_vectors for p in items]) if items else np.zeros((0, dimension), np.float32)
        self._starts = np.cumsum([0] + [len(p.question_vectors) for p in items[:-1]]) if items else np.zeros(0, np.int64)
        self._terms = [frozenset(tokenize(p.pair.question(p.letter))) for p in items]

    def rank(self, question: QuestionView, filters: Filters = Filters(), asker: str | None = None, need: int = 0,
             policy: PairPolicy = DEFAULT_PAIR_POLICY, answer_weights: np.ndarray | None = None) -> list[Match]:
        """Every pair passing the filters, best first; the reader reads the answers of the top `shortlist` (or `need`)."""
        items = self.pairs.items
        if not items:
            return []
        keep = np.asarray([filters.accepts(p.letter) and _asked_by(p, asker) for p in items], dtype=bool)
        cosines = self._vectors @ question.vector
        question_scores = np.maximum.reduceat(cosines, self._starts)
        total = sum(question.weights.values()) or 1.0
        coverage = np.asarray([sum(w for t, w in question.weights.items() if t in terms) / total for terms in self._terms])
        first = policy.weight_question * question_scores + policy.weight_coverage * coverage
        order = [int(i) for i in np.argsort(-first, kind="stable") if keep[i]]
        read = order[: max(policy.shortlist, need)]
        answer_scores, best = self._answers(question, read, answer_weights)
        matches = []
        for i in order:
            extra = policy.weight_answer * answer_scores[i] if i in answer_scores else 0.0
            matches.append(Match(items[i], round(float(first[i] + extra), 4), round(float(question_scores[i]), 4),
                                 round(float(coverage[i]), 4), round(float(answer_scores.get(i, 0.0)), 4), best.get(i)))
        matches.sort(key=lambda m: -m.score)
        return matches

    def _answers(self, question: QuestionView, rows: list[int], weights: np.ndarray | None) -> tuple[dict[int, float], dict[int, tuple[int, int]]]:
        """The reader's best sentence of each pair's Antwoord, read together (its meaning is scaled over all of them)."""
        from qa.answer.answering import DEFAULT_POLICY

        items = self.pairs.items
        reads = [ReadPassage(0, Hit(items[i].answer_passage, items[i].letter, 0.0, None, None), items[i].answer_spans,
                             items[i].answer_vectors, 0.0) for i in rows]
        found = reader.candidates(question, reads)
        scored = reader.scores(found, DEFAULT_POLICY.sentence_weights() if weights is None else weights)
        scores: dict[int, float] = {}
        best: dict[int, tuple[int, int]] = {}
        for candidate, score in zip(found, scored.tolist()):
            row = rows[candidate.passage]
            if row not in scores or score > scores[row]:
                scores[row], best[row] = score, (candidate.start, candidate.end)
        return scores, best


def _asked_by(info: PairInfo, asker: str | None) -> bool:
    """`asker` is part of a member's name or party ("Keijzer", "BBB"), case-insensitive."""
    return not asker or any(asker.lower() in name.lower() for name in info.askers)


def question_view(engine: Engine, question: str) -> QuestionView:
    """The question as the reader sees it: its query vector (cached by the embedder) and its terms' idf."""
    lexical = engine.index.lexical
    return QuestionView.of(question, engine.embedder.embed_query(question)[0], {t: lexical.idf(t) for t in set(tokenize(question))})


def find(engine: Engine, ranked: RankedPairs, question: str | None, filters: Filters = Filters(), asker: str | None = None,
         page: int = 1, per_page: int = limits.PER_PAGE, min_score: float | None = None, panel: bool = False,
         policy: PairPolicy = DEFAULT_PAIR_POLICY) -> limits.Page[Match]:
    """One page of pairs for a question, best first (without a question: every pair, newest first).

    `panel`: only what the chat shows beside an answer (`panel_from`, at most `panel_max`)."""
    if question is None:
        items = [p for p in ranked.pairs.items if filters.accepts(p.letter) and _asked_by(p, asker)]
        items.sort(key=lambda p: (p.letter.date or "", p.letter.id, -p.pair.question_start), reverse=True)
        return limits.paginate([Match(p, 0.0, 0.0, 0.0, 0.0, None) for p in items], page, per_page)
    floor = policy.panel_from if panel else policy.list_from if min_score is None else min_score
    if panel:
        page, per_page = 1, policy.panel_max
    matches = ranked.rank(question_view(engine, question), filters, asker, need=page * per_page, policy=policy,
                          answer_weights=engine.policy.sentence_weights())
    return limits.paginate([m for m in matches if m.score >= floor], page, per_page)
