"""The core API that the CLI and the web app share: an index and its model, loaded once."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import faiss
import numpy as np

from qa.answer.answering import DEFAULT_POLICY, Answer, AnswerPolicy, Evidence, Reading, answer, unknown_names
from qa.answer.reader import BLOCK_HEADING, QuestionView, ReadPassage, block_numbers
from qa.answer.retrieval import Filters, Hit, Mode, search
from qa.embed.embedding import Embedder, TextEmbedder
from qa.index import stores as store
from qa.index.lexical import tokenize

FILTERED_OUT = "Binnen de gekozen filters beantwoorden de brieven deze vraag niet; zonder filters wel."
# A follow-up starts like one ("En ...") or points back ("dat", "daarover"); "het" and "er" are too
# common as article and filler to count as pointing back.
_CONTINUATION = re.compile(r"^(en|maar|ook|dus|of)\b", re.I)
_ANAPHOR = re.compile(
    r"\b(dat|dit|die|deze|daar\w*|hier(van|over|mee|door|na|voor|bij|in|uit|op|aan)|ervan|erover|ermee|erna|erdoor|hij|zij|ze|hem|hun|zo'n|dezelfde|datzelfde)\b",
    re.I,
)
# A short question with a pointing word leans on the turn before; one opening with "En"/"Maar" does so
# up to twice this length ("En op welke dag ging de nota zelf naar de Kamer?" has 11 words).
FOLLOW_UP_WORDS = 10
# In a follow-up, the earlier question's words help the reader this much less than the follow-up's own:
# they found the passages, but the sentence must answer what is asked now.
CONTEXT_TERM_WEIGHT = 0.3


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str = ""


class Engine:
    def __init__(self, index: store.Store, embedder: TextEmbedder, policy: AnswerPolicy = DEFAULT_POLICY) -> None:
        # One question at a time: FAISS's OpenMP threads cost more than they save there
        # (the "1 thread" columns of docs/benchmarks.md, section Scale, from `python bench/scale.py`).
        faiss.omp_set_num_threads(1)
        self.index = index
        self.embedder = embedder
        self.policy = policy  # how answers are composed; a call may bring its own
        self._mean_vector: np.ndarray | None = None

    @classmethod
    def open(cls, where: Path | store.Location, model: str | None = None) -> Engine:
        """Load the index (a local folder or any store) and the model it was built with (asking for another one is an error)."""
        index = store.load(store.Location("local", where) if isinstance(where, Path) else where)
        if model and model != index.model:
            raise store.IndexStateError(
                f"{index.location} was built with model {index.model!r}; it cannot be searched with {model!r}. "
                f"Rebuild it with `qa index build --model {model}`."
            )
        return cls(index, Embedder(index.model, backend=index.backend))

    def search(self, query: str, k: int = 5, filters: Filters = Filters(), mode: Mode = "hybrid") -> list[Hit]:
        return search(self.index, self.embedder, query, k, filters, mode)

    def ask(
        self, question: str, k: int = 5, filters: Filters = Filters(), history: Sequence[Turn] = (), mode: Mode = "hybrid",
        policy: AnswerPolicy | None = None,
    ) -> Answer:
        """Answer a question; a follow-up borrows the earlier question's words to retrieve, not to choose the quote."""
        policy = policy or self.policy
        result = answer(self.read(question, k, filters, history, mode, policy), policy)
        return self.blame_filters(result, question, k, filters, history, mode, policy)

    def blame_filters(self, result: Answer, question: str, k: int, filters: Filters, history: Sequence[Turn] = (),
                      mode: Mode = "hybrid", policy: AnswerPolicy | None = None) -> Answer:
        """A decline within filters says whether they are why: asked again without them, would the letters answer?

        Every answer that can decline goes through here (`ask`, and the generated answer's extractive fallback in
        qa/answer/llm/generate.py), so a decline is attributed the same way whichever path gave it."""
        if not result.abstained or filters.is_empty():
            return result
        policy = policy or self.policy
        unfiltered = answer(self.read(question, k, Filters(), history, mode, policy), policy)
        if unfiltered.abstained:
            return result  # no letter answers it: the reason stands, filters or not
        return replace(result, decline_reason=FILTERED_OUT)

    def read(
        self, question: str, k: int = 5, filters: Filters = Filters(), history: Sequence[Turn] = (), mode: Mode = "hybrid",
        policy: AnswerPolicy = DEFAULT_POLICY,
    ) -> Reading:
        """Retrieve and gather what the reader needs, once: vectors, term weights, stored sentence spans."""
        query = retrieval_query(question, history)
        hits = self.search(query, k=max(k, policy.passages_read, policy.fact_reading_depth), filters=filters, mode=mode)
        return self.gather(question, query, hits, k, filters, policy)

    def gather(self, question: str, query: str, hits: Sequence[Hit], k: int = 5, filters: Filters = Filters(),
               policy: AnswerPolicy = DEFAULT_POLICY) -> Reading:
        """The reader's inputs for ranked hits (`read` without the search; training reads with some hits left out)."""
        query_vector = self.embedder.embed_query(query)[0]
        lexical = self.index.lexical
        weights = {term: lexical.idf(term) for term in set(tokenize(question))}
        question_vector = query_vector
        if query != question:  # a follow-up: its own words lead, the earlier ones only help
            own = self.embedder.embed_query(question)[0]
            question_vector = own + 0.5 * query_vector
            question_vector = question_vector / (np.linalg.norm(question_vector) or 1.0)
            for term in set(tokenize(query)) - set(weights):
                weights[term] = CONTEXT_TERM_WEIGHT * lexical.idf(term)
        view = QuestionView.of(question, question_vector, weights)
        passages = self._read_passages(_passages_to_read(view, hits, policy), view.vector)
        read_terms = {term for p in passages for term in tokenize(" ".join(filter(None, [p.hit.letter.title, p.hit.passage.section, p.hit.passage.text])))}
        total = sum(weights.values()) or 1.0
        evidence = Evidence(
            corpus_lift=(max((p.cosine for p in passages), default=0.0) - float(self.mean_vector() @ view.vector)),
            missing_idf=sum(w for t, w in weights.items() if t not in read_terms) / total,
            absent_terms=sum(w for t, w in weights.items() if lexical.frequency(t) == 0) / total,
            unknown_names=unknown_names(question, lexical.frequency, lexical.size),
        )
        return Reading(query, view, passages, evidence, list(hits[:k]), self.embedder.name)

    def _read_passages(self, hits: Sequence[Hit], vector: np.ndarray) -> list[ReadPassage]:
        """The top passages, and for a "Vraag N" that a passage ends with, the passage holding its "Antwoord N"."""
        rows = [self.index.rows[hit.passage.id] for hit in hits]
        extra: list[tuple[int, Hit]] = []
        for rank, hit in enumerate(hits):
            for number in _unanswered_questions(hit.passage.text):
                row = self._answer_row(hit, number)
                if row is not None and row not in rows:
                    rows.append(row)
                    passage = self.index.passages[row]
                    extra.append((rank, Hit(passage, hit.letter, hit.score, None, hit.lexical_score)))
        ranked = [*enumerate(hits), *extra]
        cosines = self.index.passage_vectors(rows) @ vector
        read = []
        for (rank, hit), cosine, (spans, vectors) in zip(ranked, cosines, self.index.sentences_of(rows)):
            # The cores are the chunker's, like the stored spans (an index of another chunker version is refused).
            cores = np.asarray(hit.passage.sentence_cores(), dtype=np.int64).reshape(-1, 2)
            read.append(ReadPassage(rank, hit, np.asarray(spans), vectors, float(cosine), cores if len(cores) == len(spans) else None))
        return read

    def _answer_row(self, hit: Hit, number: str) -> int | None:
        for row in self.index.letter_passages.get(hit.letter.id, []):
            passage = self.index.passages[row]
            if passage.start > hit.passage.start and number in _block_numbers(passage.text, "antwoord"):
                return row
        return None

    def mean_vector(self) -> np.ndarray:
        """The corpus's mean passage vector: a question about nothing in the corpus is about as close to it as to its best passage."""
        if self._mean_vector is None:
            self._mean_vector = self.index.mean_vector()
        return self._mean_vector


def _passages_to_read(question: QuestionView, hits: Sequence[Hit], policy: AnswerPolicy) -> list[Hit]:
    """The top passages, and further down, those stating the amount asked for when the top ones state none."""
    top = list(hits[: policy.passages_read])
    if not question.asks_sum:
        return top
    def states(hit: Hit) -> bool:
        return question.holds(hit.passage.text, question.sum_kinds)
    if any(states(hit) for hit in top):
        return top
    return top + [hit for hit in hits[policy.passages_read : policy.fact_reading_depth] if states(hit)]


def _unanswered_questions(text: str) -> list[str]:
    """Numbers of the "Vraag N" blocks in a passage whose "Antwoord N" is not in it."""
    answered = _block_numbers(text, "antwoord")
    return [number for number in _block_numbers(text, "vraag") if number not in answered]


def _block_numbers(text: str, kind: str) -> list[str]:
    """The numbers of a text's "Vraag N" or "Antwoord N" headings, in order."""
    return [number for m in BLOCK_HEADING.finditer(text) if m.group(1).lower() == kind for number in block_numbers(m.group(2))]


def retrieval_query(question: str, history: Sequence[Turn]) -> str:
    """A short question leaning on an earlier turn ("En wanneer is dat afgerond?") gets that turn's question,
    itself with its context when it was a follow-up too, so a third "En waarom?" still knows the topic."""
    if not history:
        return question
    words = len(question.split())
    if (_CONTINUATION.search(question) and words <= 2 * FOLLOW_UP_WORDS) or (words <= FOLLOW_UP_WORDS and _ANAPHOR.search(question)):
        return f"{retrieval_query(history[-1].question, history[:-1])} {question}"
    return question
