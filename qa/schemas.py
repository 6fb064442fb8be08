"""JSON shapes of answers, passages and letters, shared by the CLI and the web API.

msgspec Structs, so Litestar validates and documents them (OpenAPI) without a second model.
"""

from __future__ import annotations

from typing import Any

import msgspec

from qa.answering import Answer, Citation
from qa.chunking import Passage
from qa.letters import Letter
from qa.retrieval import Hit


class PassageOut(msgspec.Struct):
    """A retrieved passage with its letter's metadata."""

    passage_id: str
    letter_id: str
    title: str | None
    date: str | None
    sender: str | None
    section: str | None
    page: int
    url: str | None
    text: str
    score: float


class AnswerOut(msgspec.Struct, omit_defaults=True):
    answer: str
    abstained: bool
    citations: list[Citation]  # the core dataclass: one quoted sentence, `[n]` in the answer points here
    passages: list[PassageOut]
    timings_ms: dict[str, float] = {}


class LetterMeta(msgspec.Struct):
    id: str
    title: str | None
    date: str | None
    dossier: str | None
    number: str | None
    sender: str | None
    type: str | None
    url: str | None
    passages: int


class PassageSpan(msgspec.Struct):
    """Where a passage lies in the letter text."""

    passage_id: str
    start: int
    end: int
    section: str | None
    page: int


class LetterOut(LetterMeta):
    text: str
    page_starts: list[int]
    chunks: list[PassageSpan]


def passage_out(hit: Hit) -> PassageOut:
    passage, letter = hit.passage, hit.letter
    return PassageOut(
        passage_id=passage.id, letter_id=letter.id, title=letter.title, date=letter.date, sender=letter.sender,
        section=passage.section, page=passage.page, url=letter.url, text=passage.text, score=round(hit.score, 5),
    )


def answer_out(answer: Answer, timings_ms: dict[str, float] | None = None) -> AnswerOut:
    return AnswerOut(
        answer=answer.text,
        abstained=answer.abstained,
        citations=answer.citations,
        passages=[passage_out(hit) for hit in answer.hits],
        timings_ms=timings_ms or {},
    )


def letter_meta(letter: Letter, passages: int) -> LetterMeta:
    return LetterMeta(
        id=letter.id, title=letter.title, date=letter.date, dossier=letter.dossier, number=letter.number,
        sender=letter.sender, type=letter.type, url=letter.url, passages=passages,
    )


def letter_out(letter: Letter, passages: list[Passage]) -> LetterOut:
    meta = letter_meta(letter, len(passages))
    return LetterOut(
        **msgspec.structs.asdict(meta),
        text=letter.text,
        page_starts=list(letter.page_starts),
        chunks=[PassageSpan(p.id, p.start, p.end, p.section, p.page) for p in passages],
    )


def to_json(value: msgspec.Struct) -> dict[str, Any]:
    """Plain dicts and lists, for `json.dumps` in the CLI."""
    return msgspec.to_builtins(value)
