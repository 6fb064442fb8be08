"""JSON shapes of answers, passages and letters, shared by the CLI and the web API.

msgspec Structs, so Litestar validates and documents them (OpenAPI) without a second model.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import msgspec

from qa.answer.answering import Answer, Citation
from qa.answer.kamervragen import Match
from qa.answer.retrieval import Hit
from qa.core.display import dutch_date, type_label, web_url
from qa.index import facets as facet_counts
from qa.ingest.chunking import Passage
from qa.ingest.cleaning import footnotes
from qa.ingest.letter import Letter
from qa.ingest.ministries import Signer, first_signer
from qa.users.watches import Watch, WatchHit, feed_path, page_path

if TYPE_CHECKING:  # the chat model's client loads only when it is used
    from qa.answer.llm.generate import Generated


def letter_href(letter_id: str, passage_id: str | None = None, start: int | None = None, end: int | None = None) -> str:
    """The letter page at a passage (and a quote in it), scrolled there by the fragment."""
    params: dict[str, Any] = {}
    if passage_id:
        params["passage"] = passage_id
    if start is not None and end is not None:
        params.update(start=start, end=end)
    url = f"/letters/{quote(letter_id, safe='')}"
    if params:
        url += "?" + urlencode(params) + ("#quote" if "start" in params else "#passage")
    return url


class PassageOut(msgspec.Struct):
    """A retrieved passage with its letter's metadata; `url` only when it is a web link, `href` the letter page
    at this passage, `date_label` the date as a Dutch reader writes it."""

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
    href: str
    date_label: str
    type: str | None = None  # the letter's document type (brief_regering, antwoord_kamervragen, motie, ...)
    type_label: str = ""  # that type as the pages show it ("Motie van Kamerleden")
    ministry: str | None = None  # the sender's ministry, official name (qa/ingest/ministries.py)
    ministry_abbreviation: str | None = None
    role: str | None = None  # minister, staatssecretaris, minister-president, Kamerlid, Kamerleden
    person: str | None = None


class CitationOut(msgspec.Struct):
    """One quoted sentence; `[n]` in the answer points here. `quote_start`/`quote_end`: offsets in the letter text."""

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
    quote_start: int
    quote_end: int
    score: float
    href: str  # the letter page at this quote
    date_label: str
    type: str | None = None  # the cited letter's document type
    type_label: str = ""  # that type as the pages show it: a motie is the Kamer's, not the government's
    ministry: str | None = None  # the sender's ministry, official name; what the source card shows with person and role
    ministry_abbreviation: str | None = None
    role: str | None = None
    person: str | None = None


class AnswerOut(msgspec.Struct, omit_defaults=True):
    answer: str
    abstained: bool
    citations: list[CitationOut]
    passages: list[PassageOut]
    confidence: float = 0.0  # the reader's calibrated probability that the first quote answers the question
    confidence_label: str | None = None  # hoog / middel / laag; none when declined
    decline_reason: str | None = None  # why it declined, in Dutch, when it can say
    close_passages: list[PassageOut] = []  # after a decline: passages close to the question (score: cosine)
    timings_ms: dict[str, float] = {}


class SentenceOut(msgspec.Struct, omit_defaults=True):
    """One sentence the chat model wrote, and what the check found."""

    text: str
    kept: bool
    cited: list[int]  # the passage numbers the model wrote (the prompt's numbering, not the answer's)
    reason: str | None = None
    coverage: float | None = None
    meaning: float | None = None


class GenerationOut(msgspec.Struct, omit_defaults=True):
    model: str | None
    kept: int
    total: int
    fallback: bool
    sentences: list[SentenceOut]
    error: str | None = None


def generation_out(generated: Generated) -> GenerationOut:
    sentences = [
        SentenceOut(v.text, v.kept, list(v.cited), v.reason, v.scores.get("coverage"), v.scores.get("meaning")) for v in generated.sentences
    ]
    return GenerationOut(generated.model, generated.kept, generated.total, generated.fallback, sentences, generated.error)


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
    ministry: str | None = None
    ministry_abbreviation: str | None = None
    role: str | None = None
    person: str | None = None
    co_senders: list[str] = []  # "mede namens" and joint signers, e.g. "Minister van Sociale Zaken en Werkgelegenheid"


class PassageSpan(msgspec.Struct):
    """Where a passage lies in the letter text."""

    passage_id: str
    start: int
    end: int
    section: str | None
    page: int


class FootnoteSpan(msgspec.Struct):
    """A footnote: its paragraph in the letter text and the markers in the body that point to it."""

    number: int
    start: int
    end: int
    markers: list[int]


class LetterOut(LetterMeta, kw_only=True):
    text: str
    page_starts: list[int]
    passage_spans: list[PassageSpan]  # where each of its `passages` lies in `text`
    footnotes: list[FootnoteSpan] = []


class FacetValue(msgspec.Struct):
    """One value of a facet: `value` is what to filter with (`type=`, `sender=`, or the year's `date_from`/`date_to`)."""

    value: str
    label: str
    count: int


class Facets(msgspec.Struct):
    """How many results have each document type, ministry and year (types and ministries most first, years newest first)."""

    type: list[FacetValue]
    ministry: list[FacetValue]
    year: list[FacetValue]


def facets_out(counted: facet_counts.Facets) -> Facets:
    return Facets(
        type=[FacetValue(value, type_label(value), n) for value, n in counted.type],
        ministry=[FacetValue(value, value, n) for value, n in counted.ministry],
        year=[FacetValue(value, value, n) for value, n in counted.year],
    )


def signer_fields(signer: Signer | None) -> dict[str, str | None]:
    """The register's reading of a sender, as the wire carries it (PassageOut, CitationOut, LetterMeta)."""
    ministry = signer.ministry if signer else None
    return {"ministry": ministry.name if ministry else None, "ministry_abbreviation": ministry.abbreviation if ministry else None,
            "role": signer.role if signer else None, "person": signer.person if signer else None}


def passage_out(hit: Hit, score: float | None = None) -> PassageOut:
    passage, letter = hit.passage, hit.letter
    return PassageOut(
        passage_id=passage.id, letter_id=letter.id, title=letter.title, date=letter.date, sender=letter.sender,
        section=passage.section, page=passage.page, url=web_url(letter.url), text=passage.text, score=round(hit.score if score is None else score, 5),
        href=letter_href(letter.id, passage.id), date_label=dutch_date(letter.date), type=letter.type, type_label=type_label(letter.type), **signer_fields(letter.signer),
    )


def citation_out(citation: Citation, letter: Letter | None = None) -> CitationOut:
    """The answer's Citation as the wire carries it: every field under its own name (CitationOut starts with them, in
    order; only `url` is kept to web links), then the links and labels. `letter`: the cited letter, for its type and
    its signers (a motie's indieners are named in its title); without it the sender is read alone (a Citation carries
    only what the answer needs)."""
    kind = letter.type if letter else None
    signer = letter.signer if letter is not None else first_signer(citation.sender)
    fields: dict[str, Any] = {
        **dataclasses.asdict(citation), "url": web_url(citation.url),
        "href": letter_href(citation.letter_id, citation.passage_id, citation.quote_start, citation.quote_end),
        "date_label": dutch_date(citation.date), "type": kind, "type_label": type_label(kind) if kind else "", **signer_fields(signer),
    }
    return CitationOut(**fields)


def answer_out(answer: Answer, timings_ms: dict[str, float] | None = None) -> AnswerOut:
    letters = {hit.letter.id: hit.letter for hit in answer.hits}  # every cited passage is among the hits
    return AnswerOut(
        answer=answer.text,
        abstained=answer.abstained,
        citations=[citation_out(citation, letters.get(citation.letter_id)) for citation in answer.citations],
        passages=[passage_out(hit) for hit in answer.hits],
        confidence=answer.confidence,
        confidence_label=answer.confidence_label,
        decline_reason=answer.decline_reason,
        close_passages=[passage_out(hit, cosine) for hit, cosine in answer.close_hits],
        timings_ms=timings_ms or {},
    )


def letter_meta(letter: Letter, passages: int) -> LetterMeta:
    return LetterMeta(
        id=letter.id, title=letter.title, date=letter.date, dossier=letter.dossier, number=letter.number,
        sender=letter.sender, type=letter.type, url=letter.url, passages=passages, **signer_fields(letter.signer),
        co_senders=[signer.description for signer in letter.signers[1:]],
    )


def letter_out(letter: Letter, passages: list[Passage]) -> LetterOut:
    meta = letter_meta(letter, len(passages))
    return LetterOut(
        **msgspec.structs.asdict(meta),
        text=letter.text,
        page_starts=list(letter.page_starts),
        passage_spans=[PassageSpan(p.id, p.start, p.end, p.section, p.page) for p in passages],
        footnotes=[FootnoteSpan(note.number, note.start, note.end, list(note.markers)) for note in footnotes(letter.text)],
    )


def to_json(value: msgspec.Struct) -> dict[str, Any]:
    """Plain dicts and lists, for `json.dumps` in the CLI."""
    return msgspec.to_builtins(value)


class PairOut(msgspec.Struct):
    """An earlier Kamervraag and its answer, both verbatim spans of the letter (`*_start`/`*_end`: offsets in its text)."""

    id: str
    letter_id: str
    title: str | None
    date: str | None  # the answer's date
    date_label: str
    asked_on: str | None  # when the questions were sent in
    askers: list[str]  # the members who asked, with their party
    minister: str | None  # who answered (the letter's sender)
    url: str | None  # the official publication
    label: str  # "Vraag 3" (or "Vraag 3, 4 en 5")
    question: str
    question_start: int
    question_end: int
    answer_label: str
    answer: str
    answer_start: int
    answer_end: int
    best_start: int | None  # the answer's sentence the reader found best for the question
    best_end: int | None
    score: float
    question_score: float
    answer_score: float
    href: str  # the letter page with this Vraag and Antwoord highlighted
    answer_href: str  # ... with only the answer highlighted


def pair_out(match: Match) -> PairOut:
    info = match.info
    pair, letter = info.pair, info.letter
    best = match.best_sentence
    return PairOut(
        id=pair.id, letter_id=letter.id, title=letter.title, date=letter.date, date_label=dutch_date(letter.date),
        asked_on=info.asked_on, askers=list(info.askers), minister=letter.sender, url=web_url(letter.url), label=pair.label,
        question=pair.question(letter), question_start=pair.question_start, question_end=pair.question_end,
        answer_label=pair.answer_label, answer=pair.answer(letter), answer_start=pair.answer_start, answer_end=pair.answer_end,
        best_start=best[0] if best else None, best_end=best[1] if best else None, score=match.score,
        question_score=match.question_score, answer_score=match.answer_score,
        href=letter_href(letter.id, None, pair.question_start, pair.answer_end),
        answer_href=letter_href(letter.id, None, pair.answer_start, pair.answer_end),
    )


class WatchHitOut(msgspec.Struct):
    """A new letter that answered a saved question: the reader's answer from it, its first quote and how sure."""

    id: int
    letter_id: str
    passage_id: str
    title: str | None
    date: str | None
    date_label: str
    url: str | None
    answer: str  # verbatim quotes with [n], from this letter only
    quote: str
    quote_start: int
    quote_end: int
    confidence: float
    found_at: str
    href: str  # the letter page at the quote


class WatchOut(msgspec.Struct):
    """A saved question. `token` is its secret: whoever has it can read its feed and delete it."""

    id: int
    token: str
    question: str
    threshold: float
    filters: dict[str, str]
    created_at: str
    checked_at: str | None
    hit_count: int
    feed_url: str
    page_url: str
    hits: list[WatchHitOut] = []


def watch_hit_out(hit: WatchHit) -> WatchHitOut:
    return WatchHitOut(
        id=hit.id, letter_id=hit.letter_id, passage_id=hit.passage_id, title=hit.title, date=hit.date, date_label=dutch_date(hit.date),
        url=web_url(hit.url), answer=hit.answer, quote=hit.quote, quote_start=hit.quote_start, quote_end=hit.quote_end,
        confidence=hit.confidence, found_at=hit.found_at, href=letter_href(hit.letter_id, hit.passage_id, hit.quote_start, hit.quote_end),
    )


def watch_out(watch: Watch, hits: list[WatchHit] | None = None) -> WatchOut:
    return WatchOut(
        id=watch.id, token=watch.token, question=watch.question, threshold=watch.threshold,
        filters={name: value for name, value in watch.filters.__dict__.items() if value}, created_at=watch.created_at,
        checked_at=watch.checked_at, hit_count=watch.hits, feed_url=feed_path(watch.token), page_url=page_path(watch.token),
        hits=[watch_hit_out(hit) for hit in hits or []],
    )
