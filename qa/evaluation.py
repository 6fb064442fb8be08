"""Retrieval and answering quality on a question set: recall@k, MRR and how often we decline.

A hit is a passage of the expected letter that contains the answer span, compared after
normalising case, punctuation and hyphenation, so OCR line breaks do not decide the score.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa.engine import Engine
from qa.errors import QAError
from qa.retrieval import Mode


@dataclass(frozen=True)
class Question:
    question: str
    doc_id: str | None
    answer_span: str | None
    answerable: bool


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
            questions.append(
                Question(str(record["question"]), record.get("doc_id"), record.get("answer_span"), bool(record.get("answerable", True)))
            )
        except (ValueError, KeyError, TypeError) as error:
            raise QAError(f"{path}:{number}: not a question record ({error})") from error
    return questions


def evaluate(engine: Engine, questions: list[Question], mode: Mode = "hybrid", k: int = 10,
             on_result: Callable[[Question, int | None], None] | None = None) -> dict[str, float]:
    """Recall@1/5/10 and MRR over answerable questions; decline rates over both kinds."""
    ranks: list[int | None] = []
    declined_unanswerable = declined_answerable = cited_correct = quoted_span = 0
    answerable = [q for q in questions if q.answerable and q.doc_id and q.answer_span]
    unanswerable = [q for q in questions if not q.answerable]
    for question in answerable:
        span = normalise(question.answer_span or "")
        hits = engine.search(question.question, k=k, mode=mode)
        rank = next(
            (i + 1 for i, hit in enumerate(hits) if hit.letter.id == question.doc_id and span in normalise(hit.passage.text)),
            None,
        )
        ranks.append(rank)
        if on_result:
            on_result(question, rank)
        if mode == "hybrid":
            result = engine.ask(question.question)
            declined_answerable += result.abstained
            cited_correct += any(c.letter_id == question.doc_id for c in result.citations)
            quoted_span += any(c.letter_id == question.doc_id and span in normalise(c.quote) for c in result.citations)
    if mode == "hybrid":
        for question in unanswerable:
            declined_unanswerable += engine.ask(question.question).abstained
    n = len(ranks) or 1
    report = {
        "questions": float(len(answerable)),
        "recall@1": sum(r is not None and r <= 1 for r in ranks) / n,
        "recall@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "recall@10": sum(r is not None and r <= 10 for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
    }
    if mode == "hybrid":
        report |= {
            "answer_cites_right_letter": cited_correct / n,
            "answer_quotes_the_span": quoted_span / n,
            "declined_answerable": declined_answerable / n,
            "declined_unanswerable": declined_unanswerable / (len(unanswerable) or 1),
            "unanswerable_questions": float(len(unanswerable)),
        }
    return report
