"""Extractive answers: the sentence that answers, quoted and cited, with how sure we are — or a decline.

No language model writes anything: every sentence of an answer is a verbatim quote of a letter,
so a citation can never claim what its passage does not say. The reader (`qa/answer/reader.py`) scores
the candidate sentences and the confidence; this module turns that into an answer by one
documented policy (`AnswerPolicy`): which sentence leads, what travels with it, when to decline
and how to say why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace

import numpy as np

from qa.answer import confidence as confidence_model
from qa.answer import reader
from qa.answer.reader import Candidate, QuestionView, ReadPassage
from qa.answer.retrieval import Hit
from qa.core.display import MONTH_NAMES
from qa.index.lexical import tokenize

DECLINE = "Ik kan deze vraag niet beantwoorden op basis van de brieven in de index."
_QUESTION_WORDS = {"Wanneer", "Waarom", "Hoeveel", "Hoe", "Wie", "Wat", "Welke", "Welk", "Waar", "Klopt", "Is", "Zijn",
                   "Kan", "Kunt", "Heeft", "Hebben", "Wordt", "Worden", "En", "Maar", "Ook", "Gaat", "Komt", "Moet", "Mag"}
_NAME = re.compile(r"(?<![\w.])([A-ZÀ-Þ][\w&'-]*\w)")
_ADJECTIVE = re.compile(r"(?:se|sche)$")  # "Brusselse", "Chinese": said of a name, not one


@dataclass(frozen=True)
class AnswerPolicy:
    """Every number of answering in one place; `qa eval --set name=value` tries another value.

    The figures in the comments are from `qa eval eval/questions.jsonl` on the shared corpus and
    from `train/train_reader.py` on the Kamervragen pairs (see eval/README.md)."""

    # Passages the reader reads. Of the 33 answerable questions the reader missed with 4, 14 had their
    # answer passage at rank 5-18. Quotes holding the answer on the letters' set (hybrid, 160 questions,
    # cleaned index), with `weight_rank` raised so that a deeper passage must earn its place:
    # 4 passages (rank weight 0.075) 0.794; 5 (0.15) 0.794; 6 (0.2) 0.812; 6 (0.3) 0.806; 7 (0.25) 0.812;
    # 8 (0.3) 0.806. With 6, follow-ups 0.643 -> 0.786 and answerable declined 0.062 -> 0.044.
    passages_read: int = 6
    # When the question asks an amount or a sum and none of those passages states one, read on down
    # the ranking to this depth and add the passages that do: the answer passage of a long Aanhangsel
    # often ranks 5th-8th ("Tot welk bedrag vangt het Rijk de verliezen op ..."; see docs/reader.md), and
    # on the cleaned letters 9th-12th (a motie's clauses outrank it). On the letters' set (cleaned index)
    # depth 8 and 10: quotes 0.787, answerable declined 0.075; 12: 0.794 and 0.069 (old parse: no change).
    fact_reading_depth: int = 12
    # The sentence scorer's weights (features in qa/answer/reader.py). The question's words in the sentence,
    # its meaning read in context, the asked kind of fact, the letter's title/section and the passage's
    # rank. Listwise weights learned on the Kamervragen pairs quoted the answer for 0.40-0.62 of the
    # letters' questions against 0.73 for these (docs/reader.md).
    weight_coverage: float = 0.5
    weight_meaning: float = 1.0
    weight_fact: float = 0.12
    weight_context: float = 0.1
    weight_rank: float = 0.2  # with `passages_read` (above)
    weight_long: float = -0.05
    # At most this many quotes; a further one only when its score is within `extra_quote_margin` of the
    # best (a confirmation, or the rest of a two-part answer). 2 quotes: 0.64, 3: 0.72 on the letters' set.
    max_quotes: int = 3
    extra_quote_margin: float = 0.5
    max_quote_chars: int = 700
    # A quote takes the next sentence when that one completes it ("Dit betekent ...", a colon,
    # or the asked date/amount that the quote itself lacks): 0.66 without, 0.68 with.
    carry_next: bool = True
    # When the question asks a date or an amount and the best quote holds none, the best sentence that
    # does leads instead, when it scores at most this much lower.
    fact_margin: float = 0.5
    # Decline when the question asks a date or an amount and the quote holds none ("Hoeveel kost
    # ...?" answered without an amount is not an answer): on the letters' set 0.10 more of the
    # unanswerable questions declined, 0.02 more of the answerable ones.
    require_asked_fact: bool = True
    # Decline below this confidence. Chosen with the reader's weights on the Kamervragen calibration part
    # (train split, never the test part) for at most 5 % false declines of answerable questions
    # (train/train_reader.py, docs/reader.md).
    # None: the threshold that ships with the reader's weights.
    decline_below: float | None = None
    # Labels shown beside an answer: hoog from `high_from`, middel from `medium_from`, else laag.
    high_from: float = 0.7
    medium_from: float = 0.45
    # A question whose names (capitalised words past its first) no letter in the index contains is
    # declined below this confidence, saying so: "De brieven in de index noemen 'Nexperia' niet." On the
    # letters' set the 11 unanswerable questions declined that way have confidence <= 0.084; the answerable
    # ones with a paraphrased name ("Postgiro", "Veenkoloniën" for "Veenkoloniaal") 0.172 and 0.19. Below 0.2,
    # 2 more of 160 answerable were declined; 0.1-0.17 decline the same unanswerable ones.
    unknown_names_below: float = 0.12
    # A question about a year ("Hoeveel mensen vroegen in 2023 asiel aan?") is not answered from a letter written
    # more than this many years from it whose passage does not name that year (a 1987 estimate of asylum requests).
    # On the letters' set 1, 2 and 5 decline the same question and no answerable one.
    year_gap: int = 2
    # After a decline, the closest passages are shown only when this close (cosine to the question).
    close_passage_cosine: float = 0.84

    def with_values(self, values: Mapping[str, str]) -> AnswerPolicy:
        """A copy with some fields set from text (`name=value` on the command line)."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, object] = {}
        for name, text in values.items():
            if name not in known:
                raise ValueError(f"no answer policy setting {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, name)
            if current is None:
                current = 0.0  # the optional numbers are floats
            try:
                if isinstance(current, bool):
                    if text.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                        raise ValueError(text)
                    changes[name] = text.lower() in {"true", "1", "yes"}
                else:
                    changes[name] = type(current)(text)
            except ValueError as error:
                raise ValueError(f"{name} takes a {type(current).__name__}, not {text!r}") from error
        return replace(self, **changes)  # type: ignore[arg-type]

    def sentence_weights(self) -> np.ndarray:
        weights = dict(coverage=self.weight_coverage, meaning=self.weight_meaning, fact_match=self.weight_fact,
                       context_coverage=self.weight_context, passage_rank=self.weight_rank, long=self.weight_long)
        return np.asarray([weights.get(name, 0.0) for name in reader.FEATURES], dtype=np.float32)

    def label(self, confidence: float) -> str:
        return "hoog" if confidence >= self.high_from else "middel" if confidence >= self.medium_from else "laag"


DEFAULT_POLICY = AnswerPolicy()


class CitationError(RuntimeError):
    """A quote that does not stand in its cited passage: a bug, never shown as an answer."""


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
    score: float  # the sentence scorer's score for the quote's leading sentence


@dataclass(frozen=True)
class Evidence:
    """What the whole retrieval says about the question, computed once by the engine."""

    corpus_lift: float  # best passage cosine minus the question's cosine to the mean passage
    missing_idf: float  # share of the question's idf mass that no read passage holds
    absent_terms: float  # share of it in terms that no letter in the index holds
    unknown_names: tuple[str, ...] = ()  # names in the question that no letter contains


@dataclass(frozen=True)
class Answer:
    query: str  # what retrieval searched for (a follow-up carries its earlier question)
    text: str
    abstained: bool
    citations: list[Citation]
    hits: list[Hit]
    confidence: float = 0.0
    confidence_label: str | None = None  # hoog / middel / laag; None when declined
    decline_reason: str | None = None  # why, in Dutch, when it can say
    close_hits: list[tuple[Hit, float]] = field(default_factory=list)  # after a decline: close passages, with their cosine
    signals: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Reading:
    """Everything answering needs, gathered by the engine in one pass."""

    query: str
    question: QuestionView
    passages: list[ReadPassage]
    evidence: Evidence
    hits: list[Hit]  # what the caller shows (its k)
    embedding_model: str = ""  # whose scores these are: the confidence model is fitted per embedding model


def _decline(reading: Reading, reason: str | None, policy: AnswerPolicy, confidence: float = 0.0,
             signals: dict[str, float] | None = None) -> Answer:
    close = [(p.hit, round(p.cosine, 3)) for p in reading.passages if p.cosine >= policy.close_passage_cosine][:3]
    return Answer(reading.query, DECLINE, True, [], reading.hits, round(confidence, 3), None, reason, close, signals or {})


# A name in more than this share of the passages ("Nederland": 71 of 527, "Kamer") says nothing about what a
# question is about: "Dreigt ASML Nederland te verlaten ...?" names one thing, ASML, which no letter mentions.
COMMON_NAME_SHARE = 0.1


def unknown_names(question: str, frequency: Callable[[str], int], passages: int) -> tuple[str, ...]:
    """The names of a question (capitalised words past its first) when no passage of the index holds any of them.

    One known name is enough to answer ("Edith Schippers" when the letter says "Schippers"); a
    question all of whose names are unknown ("Nexperia", "Lelystad Airport") is about something else.
    A name found everywhere ("Nederland") counts neither way."""
    names = []
    for match in _NAME.finditer(question):
        word = match.group(1)
        if match.start() == 0 or word in _QUESTION_WORDS or len(word) < 3 or _ADJECTIVE.search(word):
            continue
        counts = [frequency(token) for token in tokenize(word)]
        if not counts or any(count > COMMON_NAME_SHARE * passages for count in counts):
            continue
        if any(counts):
            return ()
        names.append(word)
    return tuple(dict.fromkeys(names))


_YEAR = re.compile(r"\b(?:1[89]|20)\d\d\b")
# A year the question asks about follows a word of time ("in 2023", "sinds 1987", "eind 2024"); one that follows a
# name is part of it ("de Vreemdelingenwet 2000", "de Wet op de loonbelasting 1964") and says nothing of when.
_ASKED_YEAR = re.compile(
    r"\b(?:in|sinds|vanaf|tot|tussen|na|voor|vóór|over|per|eind|begin|medio|rond|omstreeks|zomer|winter|voorjaar|najaar|en|t/m)"
    r"\s+((?:1[89]|20)\d\d)\b",
    re.I,
)
_MONTH_YEAR = re.compile(rf"\b({'|'.join(MONTH_NAMES)})\s+((?:1[89]|20)\d\d)\b", re.I)


def other_time(question: str, letter_date: str | None, passage: str, gap: int) -> str | None:
    """The time a question asks about that the passage answering it cannot speak of, or None.

    A year the passage does not name, in a letter written more than `gap` years from it ("Hoeveel mensen
    vroegen in 2023 asiel aan?" from a 1987 estimate); or a month the letter was written before and the
    passage does not name ("Hoeveel tolken zijn in augustus 2021 geëvacueerd?" from a letter of April 2021)."""
    if not letter_date or not letter_date[:4].isdigit():
        return None
    written = int(letter_date[:4])
    years = sorted(set(_ASKED_YEAR.findall(question)))
    if years and not set(years) & set(_YEAR.findall(passage)) and all(abs(written - int(year)) > gap for year in years):
        return years[0]
    months = [(year, MONTH_NAMES.index(month.lower()) + 1, month.lower()) for month, year in _MONTH_YEAR.findall(question)]
    if months:
        year, number, month = min(months)
        if letter_date[:7] < f"{year}-{number:02d}" and month not in passage.lower():
            return f"{month} {year}"
    return None


def _quote_span(reading: Reading, best: Candidate, policy: AnswerPolicy) -> tuple[int, int]:
    """The leading sentence, with the sentence before it when it leans on it and the next when that completes it."""
    read = reading.passages[best.passage]
    text, spans = read.hit.letter.text, read.spans
    first, last = best.sentence, best.sentence
    sentence = text[best.start : best.end]
    if first > 0 and reader.leans_back(sentence):
        previous = text[spans[first - 1][0] : spans[first - 1][1]]
        if reader.can_answer(previous) and best.end - spans[first - 1][0] <= policy.max_quote_chars:
            first -= 1
    if policy.carry_next and last + 1 < len(spans):
        following = text[spans[last + 1][0] : spans[last + 1][1]]
        asks = reading.question.asks
        completes = (
            sentence.rstrip().endswith(":")
            or reader.leans_back(following)
            or (asks and not reading.question.holds(sentence) and reading.question.holds(following))
        )
        if completes and reader.can_answer(following) and spans[last + 1][1] - spans[first][0] <= policy.max_quote_chars:
            last += 1
    return int(spans[first][0]), int(spans[last][1])


_FACT_NAMES = {"time": "datum of termijn", "amount": "aantal of bedrag", "money": "bedrag", "vote": "uitslag van een stemming"}


def _missing_fact(reading: Reading, quote: str) -> str | None:
    """The asked kind of fact ("time", "amount") that the chosen quote lacks, in Dutch, or None."""
    asked = [kind for kind in reading.question.asks if kind in _FACT_NAMES]
    if asked and not reading.question.holds(quote, asked):
        return _FACT_NAMES[asked[0]]
    return None


def _text(reading: Reading, candidate: Candidate, span: tuple[int, int] | None = None) -> str:
    start, end = span or (candidate.start, candidate.end)
    return reading.passages[candidate.passage].hit.letter.text[start:end]


def _fact_first(reading: Reading, found: list[Candidate], scores: np.ndarray, order: np.ndarray, policy: AnswerPolicy) -> np.ndarray:
    """The order of the candidates, with one that holds the asked date or amount first when the best quote lacks it."""
    best = found[int(order[0])]
    if not _missing_fact(reading, _text(reading, best, _quote_span(reading, best, policy))):
        return order
    floor = float(scores[order[0]]) - policy.fact_margin
    lead = next((p for p in order[1:] if scores[p] >= floor and not _missing_fact(reading, _text(reading, found[int(p)]))), None)
    return order if lead is None else np.asarray([lead, *[p for p in order if p != lead]])


def rank(reading: Reading, found: list[Candidate], policy: AnswerPolicy = DEFAULT_POLICY) -> tuple[np.ndarray, np.ndarray]:
    """The candidates' scores and their order, best first (training the confidence model ranks the same way)."""
    scores = reader.scores(found, policy.sentence_weights())
    return scores, _fact_first(reading, found, scores, np.argsort(-scores, kind="stable"), policy)


Quote = tuple[Candidate, tuple[int, int], float]  # a candidate, the span quoted for it, its score


def _join_clause(chosen: list[Quote], k: int, clause: Candidate, clause_score: float, policy: AnswerPolicy) -> list[Quote]:
    """A motie's clause whose quote runs on (to the end of the dictum) into quote `k`: quote `k` starts at the
    clause when that stays short enough, else the clause is quoted alone beside it. Either way the motie
    reads in document order, its considerations before its request (issue 15)."""
    lead, (start, end), score = chosen[k]
    if lead.passage == clause.passage and clause.start < start and end - clause.start <= policy.max_quote_chars:
        return [*chosen[:k], (lead, (clause.start, end), score), *chosen[k + 1 :]]
    at = k if clause.core_end <= start else k + 1
    return [*chosen[:at], (clause, (clause.core_start, clause.core_end), clause_score), *chosen[at:]]


def _join_touching(reading: Reading, chosen: list[Quote]) -> list[Quote]:
    """A quote that goes on where the one before it in the answer ends, in the same passage, joins it: one quote
    "... in juli 2021 voorzien. Uiterlijk 11 september dient dit te zijn afgerond. [1]", not two with the same [1]."""
    joined: list[Quote] = []
    for quote in chosen:
        candidate, (start, end), _ = quote
        if joined:
            before, (before_start, before_end), before_score = joined[-1]
            text = reading.passages[candidate.passage].hit.letter.text
            if before.passage == candidate.passage and before_end <= start and not text[before_end:start].strip():
                joined[-1] = (before, (before_start, end), before_score)
                continue
        joined.append(quote)
    return joined


def answer(reading: Reading, policy: AnswerPolicy = DEFAULT_POLICY, model: confidence_model.ReaderModel | None = None) -> Answer:
    """Compose a cited extractive answer from what the engine read, or decline with a reason."""
    model = model or confidence_model.model_for(reading.embedding_model)
    evidence = reading.evidence
    if not reading.passages:
        return _decline(reading, "Geen enkele passage past bij de vraag.", policy)
    found = reader.candidates(reading.question, reading.passages)
    if not found:
        return _decline(reading, "De gevonden passages bevatten geen zin die de vraag beantwoordt.", policy)
    scores, order = rank(reading, found, policy)
    best = found[int(order[0])]
    lead_span = _quote_span(reading, best, policy)
    missing = _missing_fact(reading, _text(reading, best, lead_span))
    margin = float(scores[order[0]] - scores[order[1]]) if len(order) > 1 else 0.0
    features = confidence_model.confidence_features(
        best, float(scores[order[0]]), margin, max(p.cosine for p in reading.passages), evidence.corpus_lift,
        evidence.missing_idf, evidence.absent_terms,
    )
    confidence = model.confidence(features)
    signals = {name: round(float(value), 4) for name, value in zip(confidence_model.CONFIDENCE_FEATURES, features) if name != "bias"}
    if evidence.unknown_names and confidence < policy.unknown_names_below:
        names = ", ".join(f"'{name}'" for name in evidence.unknown_names)
        return _decline(reading, f"De brieven in de index noemen {names} niet.", policy, confidence, signals)
    if policy.require_asked_fact and missing:
        return _decline(reading, f"De gevonden passages noemen geen {missing} bij deze vraag.", policy)
    lead = reading.passages[best.passage].hit
    year = other_time(reading.question.text, lead.letter.date, lead.passage.text, policy.year_gap)
    if year:
        return _decline(reading, f"De gevonden brieven gaan over een andere tijd dan {year}.", policy, confidence, signals)
    if confidence < (model.decline_below if policy.decline_below is None else policy.decline_below):
        return _decline(reading, "De gevonden passages beantwoorden deze vraag niet duidelijk genoeg.", policy, confidence, signals)

    chosen: list[Quote] = [(best, lead_span, float(scores[order[0]]))]
    for position in order[1:]:
        if len(chosen) == policy.max_quotes or scores[position] < scores[order[0]] - policy.extra_quote_margin:
            break
        candidate = found[int(position)]
        if reading.question.asks_sum and _missing_fact(reading, _text(reading, candidate)):
            continue  # a further quote without the asked amount only repeats the topic
        letter_id = reading.passages[candidate.passage].hit.letter.id
        overlaps = [k for k, (c, span, _) in enumerate(chosen)
                    if reading.passages[c.passage].hit.letter.id == letter_id and span[0] < candidate.end and candidate.start < span[1]]
        if not overlaps:
            chosen.append((candidate, _quote_span(reading, candidate, policy), float(scores[position])))
        elif not any(span[0] < candidate.core_end and candidate.core_start < span[1] for _, span, _ in chosen):
            chosen = _join_clause(chosen, overlaps[0], candidate, float(scores[position]), policy)

    citations: list[Citation] = []
    numbers: dict[str, int] = {}
    parts: list[str] = []
    for candidate, (start, end), score in _join_touching(reading, chosen):
        hit = reading.passages[candidate.passage].hit
        quote = hit.letter.text[start:end]
        if not (hit.passage.start <= start and end <= hit.passage.end):
            raise CitationError(f"quote {start}-{end} lies outside passage {hit.passage.id}")
        number = numbers.setdefault(hit.passage.id, len(numbers) + 1)
        citations.append(Citation(
            n=number, passage_id=hit.passage.id, letter_id=hit.letter.id, title=hit.letter.title, date=hit.letter.date,
            sender=hit.letter.sender, section=hit.passage.section, page=hit.passage.page, url=hit.letter.url,
            quote=quote, quote_start=start, quote_end=end, score=round(score, 4),
        ))
        parts.append(f"{' '.join(quote.split())} [{number}]")
    shown = {hit.passage.id for hit in reading.hits}
    hits = reading.hits + [p.hit for p in reading.passages if p.hit.passage.id in numbers and p.hit.passage.id not in shown]
    return Answer(reading.query, " ".join(parts), False, citations, hits, round(confidence, 3),
                  policy.label(confidence), None, [], signals)

