"""Retrieval and answering quality on a question set: recall@k, MRR, quotes that hold the answer, declines.

A hit is a passage of the expected letter that contains the answer span, compared after
normalising case, punctuation and hyphenation, so OCR line breaks do not decide the score.
Follow-ups (records with a `history`) are asked after their first question and compared with the
same question spelled out (`standalone`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa.answer.answering import DEFAULT_POLICY, Answer, AnswerPolicy
from qa.answer.engine import Engine, Turn
from qa.answer.retrieval import Mode
from qa.core.errors import QAError


@dataclass(frozen=True)
class Question:
    question: str
    doc_id: str | None
    answer_span: str | None
    answerable: bool
    history: tuple[str, ...] = ()
    standalone: str | None = None  # a follow-up with its topic spelled out
    unanswerable_kind: str | None = None  # off_corpus / near_topic
    # Other sentences of the same letter that state the same answer in other words (`also_spans`): the
    # lunch letter says "Per 2022 ... alleen bij verplichte arbovoorzieningen" twice, once in each wording.
    also_spans: tuple[str, ...] = ()

    @property
    def is_follow_up(self) -> bool:
        return bool(self.history)


def normalise(text: str) -> str:
    text = re.sub(r"-\s*\n\s*", "", text)
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).replace("_", " ").split())


def read_questions(path: Path) -> list[Question]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            history = record.get("history") or []
            questions.append(Question(
                str(record["question"]), record.get("doc_id"), record.get("answer_span"), bool(record.get("answerable", True)),
                tuple(str(h) for h in history), record.get("standalone"), record.get("unanswerable_kind"),
                tuple(str(span) for span in record.get("also_spans") or ()),
            ))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise QAError(f"{path}:{number}: not a question record ({error})") from error
    return questions


def question_part(question: str) -> str:
    """The question set's fixed split by the SHA-1 of the question: "dev" (first hex digit 0-7; tune on it) or
    "test" (8-f; only report it). Follow-ups go by their own text, like every record."""
    return "dev" if hashlib.sha1(question.strip().encode("utf-8")).hexdigest()[0] in "01234567" else "test"


def quotes_span(result: Answer, question: Question) -> bool:
    spans = [normalise(span) for span in (question.answer_span or "", *question.also_spans)]
    return any(c.letter_id == question.doc_id and any(span in normalise(c.quote) for span in spans) for c in result.citations)


def evaluate(engine: Engine, questions: list[Question], mode: Mode = "hybrid", k: int = 10,
             policy: AnswerPolicy = DEFAULT_POLICY,
             on_result: Callable[[Question, int | None, Answer | None], None] | None = None) -> dict[str, float]:
    """Recall@1/5/10 and MRR over answerable questions; answer quality and declines over all kinds."""
    ranks: list[int | None] = []
    answerable = [q for q in questions if q.answerable and q.doc_id and q.answer_span and not q.is_follow_up]
    unanswerable = [q for q in questions if not q.answerable]
    follow_ups = [q for q in questions if q.is_follow_up and q.answerable]
    declined_answerable = cited_correct = quoted = 0
    for question in answerable:
        span = normalise(question.answer_span or "")
        hits = engine.search(question.question, k=k, mode=mode)
        rank = next(
            (i + 1 for i, hit in enumerate(hits) if hit.letter.id == question.doc_id and span in normalise(hit.passage.text)),
            None,
        )
        ranks.append(rank)
        result = engine.ask(question.question, policy=policy) if mode == "hybrid" else None
        if result is not None:
            declined_answerable += result.abstained
            cited_correct += any(c.letter_id == question.doc_id for c in result.citations)
            quoted += quotes_span(result, question)
        if on_result:
            on_result(question, rank, result)
    n = len(ranks) or 1
    report = {
        "questions": float(len(answerable)),
        "recall@1": sum(r is not None and r <= 1 for r in ranks) / n,
        "recall@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "recall@10": sum(r is not None and r <= 10 for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
    }
    if mode != "hybrid":
        return report
    declined: dict[str, int] = {}
    for question in unanswerable:
        result = engine.ask(question.question, policy=policy)
        kind = question.unanswerable_kind or "unanswerable"
        declined[kind] = declined.get(kind, 0) + result.abstained
        if on_result:
            on_result(question, None, result)
    follow_up_quoted = standalone_quoted = 0
    for question in follow_ups:
        history = [Turn(previous) for previous in question.history]
        result = engine.ask(question.question, history=history, policy=policy)
        follow_up_quoted += quotes_span(result, question)
        if question.standalone:
            standalone_quoted += quotes_span(engine.ask(question.standalone, policy=policy), question)
        if on_result:
            on_result(question, None, result)
    report |= {
        "answer_cites_right_letter": cited_correct / n,
        "answer_quotes_the_span": quoted / n,
        "declined_answerable": declined_answerable / n,
        "declined_unanswerable": sum(declined.values()) / (len(unanswerable) or 1),
        "unanswerable_questions": float(len(unanswerable)),
    }
    for kind, count in sorted(declined.items()):
        if kind != "unanswerable":
            report[f"declined_{kind}"] = count / sum((q.unanswerable_kind or "unanswerable") == kind for q in unanswerable)
    if follow_ups:
        report |= {
            "follow_ups": float(len(follow_ups)),
            "follow_up_quotes_the_span": follow_up_quoted / len(follow_ups),
            "standalone_quotes_the_span": standalone_quoted / len(follow_ups),
        }
    return report
