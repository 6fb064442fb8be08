"""The HTML pages: the chat (`/`), the letters overview (`/letters`) and one letter (`/letters/{id}`).

Everything renders on the server, so the pages work without JavaScript (the chat form posts back
and gets the answer rendered); web/static/chat.js only adds streaming and keeps the conversation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import msgspec
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template import TemplateConfig

from qa import rules
from qa.answering import Answer, Citation
from qa.chunking import Passage
from qa.engine import Turn
from qa.errors import InvalidQuery
from qa.letters import Letter
from qa.retrieval import Filters, Hit, matching_letters
from qa.rules import dutch_date, type_label, web_url
from qa.schemas import letter_href
from qa.server.service import Service

EXAMPLES = [
    "Wanneer moet de afbouw van Resolute Support afgerond zijn?",
    "Hoeveel minder ruwe materialen wil het kabinet in 2030 verbruiken?",
    "Welke taken heeft de Inspectie Leefomgeving en Transport?",
]
_MARKER = re.compile(r"\[(\d+)\]")
_OFFICE = re.compile(r"(?i:minister|staatssecretaris)\s+(?:van|voor)\s+(?:de\s+)?(.+?)(?=\s*\(|,|\s+mede\b|\s+en\s+van\b|$)")
_PARENS = re.compile(r"\(([^)]+)\)")
MAX_SENDER = 300  # characters of a sender read for its ministry; real ones are under 150


# --- helpers shared with the templates -----------------------------------------------------


def ministry(sender: str | None) -> str | None:
    """'Minister van Defensie' -> 'Defensie'; 'Minister De Jonge (Binnenlandse Zaken ...)' -> 'Binnenlandse Zaken ...'.

    Whitespace is collapsed and the sender cut to MAX_SENDER first: `_OFFICE`'s lazy group retries its
    lookaheads over every run of spaces, which made "Minister van x" + 30,000 spaces + "y" take 8.8 s on
    the event loop for every page that lists senders (issue 12). With runs of one space it is linear."""
    if not sender:
        return None
    sender = " ".join(sender[: MAX_SENDER * 4].split())[:MAX_SENDER]
    if office := _OFFICE.search(sender):
        return office.group(1).strip()
    if parens := _PARENS.search(sender):
        return parens.group(1).split(" – ")[0].strip()
    return None


_FIELD_LABELS = {"date_from": "Vanaf", "date_to": "Tot en met", "type": "Soort"}
_MESSAGES: dict[str, str] = {  # the rules of qa/rules.py, as the pages (and chat.js) say them
    "question_empty": "Typ eerst een vraag.",
    "question_too_long": f"Uw vraag is te lang: maximaal {rules.MAX_QUESTION:,} tekens.".replace(",", "."),
    "not_a_date": "{label}: '{value}' is geen datum (JJJJ-MM-DD).",
    "dates_reversed": "De begindatum ligt na de einddatum.",
    "unknown_type": "{label}: '{value}' is geen bekende soort brief.",
    "too_many_turns": f"Het gesprek is te lang (meer dan {rules.MAX_HISTORY_TURNS} vragen). Begin een nieuw gesprek.",
    "unknown_value": "{label}: '{value}' is geen geldige waarde.",
    "text_too_long": "{label} is te lang.",
}


def dutch_message(error: InvalidQuery) -> str:
    """The Dutch sentence for a broken rule, naming the form field where that helps."""
    label = _FIELD_LABELS.get((error.field or "").removeprefix("filters."), error.field or "")
    return _MESSAGES[error.code].format(label=label, value=error.value)


def script_messages() -> dict[str, str]:
    """The messages chat.js shows for an API error's `code` (those that need no field or value)."""
    return {code: text for code, text in _MESSAGES.items() if "{" not in text}


def template_globals() -> dict[str, Any]:
    return {
        "letter_href": letter_href, "dutch_date": dutch_date, "type_label": type_label, "safe_url": web_url,
        "max_question": rules.MAX_QUESTION, "history_turns": rules.MAX_HISTORY_TURNS,
        "script_messages": json.dumps(script_messages(), ensure_ascii=False),
    }


def template_config(web_dir: Path) -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja over web/templates, autoescaped, with the helpers above as globals."""
    environment = Environment(
        loader=FileSystemLoader(web_dir / "templates"), autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True
    )
    environment.globals.update(template_globals())
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


# --- the chat ------------------------------------------------------------------------------


@dataclass
class Card:
    """A source: a cited passage (with its quote) or, when we abstain, a closest passage."""

    n: int | None
    letter_id: str
    title: str
    date: str | None
    sender: str | None
    section: str | None
    page: int
    url: str | None
    excerpt: str
    href: str


@dataclass
class TurnView:
    question: str
    answer: str = ""
    abstained: bool = False
    segments: list[tuple[str, Card | None]] = field(default_factory=list)  # answer text with [n] links
    sources: list[Card] = field(default_factory=list)
    related: list[Card] = field(default_factory=list)
    confidence: float = 0.0
    confidence_label: str | None = None
    decline_reason: str | None = None


def _citation_card(citation: Citation) -> Card:
    return Card(
        citation.n, citation.letter_id, citation.title or citation.letter_id, citation.date, citation.sender,
        citation.section, citation.page, web_url(citation.url), citation.quote,
        letter_href(citation.letter_id, citation.passage_id, citation.quote_start, citation.quote_end),
    )


def _hit_card(hit: Hit) -> Card:
    text = " ".join(hit.passage.text.split())
    return Card(
        None, hit.letter.id, hit.letter.title or hit.letter.id, hit.letter.date, hit.letter.sender, hit.passage.section,
        hit.passage.page, web_url(hit.letter.url), text[:300] + ("…" if len(text) > 300 else ""), letter_href(hit.letter.id, hit.passage.id),
    )


def turn_view(question: str, answer: Answer) -> TurnView:
    """The i-th [n] marker in the text belongs to the i-th citation, so each links to its own quote."""
    cards = [_citation_card(citation) for citation in answer.citations]
    segments: list[tuple[str, Card | None]] = []
    position = 0
    for i, marker in enumerate(_MARKER.finditer(answer.text)):
        n = int(marker.group(1))
        card = cards[i] if i < len(cards) and cards[i].n == n else next((c for c in cards if c.n == n), None)
        segments += [(answer.text[position : marker.start()], None), (marker.group(0), card)]
        position = marker.end()
    segments.append((answer.text[position:], None))
    sources = list({card.n: card for card in reversed(cards)}.values())[::-1]
    related = [_hit_card(hit) for hit, _ in answer.close_hits] if answer.abstained else []
    return TurnView(question, answer.text, answer.abstained, segments, sorted(sources, key=lambda c: c.n or 0), related,
                    answer.confidence, answer.confidence_label, answer.decline_reason)


@dataclass
class AskForm:
    """The chat form as posted without JavaScript; `history` is the conversation so far, as JSON."""

    question: str = ""
    example: str = ""
    history: str = ""
    date_from: str = ""
    date_to: str = ""
    sender: str = ""
    type: str = ""


def _history(raw: str) -> list[Turn]:
    """The conversation from the hidden field; something unreadable starts afresh rather than failing the question."""
    try:
        turns = msgspec.json.decode(raw or "[]", type=list[Turn])
    except msgspec.DecodeError:  # ValidationError included
        return []
    return [turn for turn in turns if turn.question.strip()][-rules.MAX_HISTORY_TURNS :]


def _choices(service: Service) -> dict[str, Any]:
    ministries = sorted({name for sender in service.senders if (name := ministry(sender))})
    return {"ministries": ministries, "types": [(value, type_label(value)) for value in service.types]}


class ChatController(Controller):
    include_in_schema = False

    def _page(self, service: Service, **context: Any) -> dict[str, Any]:
        return {"info": service.info, "examples": EXAMPLES, "turns": [], "form": AskForm(), "history_json": "[]", "error": None, **_choices(service), **context}

    @get("/", name="chat")
    async def chat(self, service: NamedDependency[Service]) -> Template:
        return Template("chat.html", context=self._page(service))

    @post("/", status_code=200)
    async def ask(self, service: NamedDependency[Service], data: URLEncodedBody[AskForm]) -> Template:
        """The chat without JavaScript: the answer rendered into the page, the conversation in a hidden field."""
        history = _history(data.history)
        previous = [TurnView(turn.question, turn.answer) for turn in history]
        try:
            question = rules.check_question(data.example or data.question)
            filters = Filters.parse(data.date_from, data.date_to, None, data.sender, data.type)
        except InvalidQuery as error:
            context = self._page(service, turns=previous, form=data, history_json=data.history or "[]", error=dutch_message(error))
            return Template("chat.html", context=context, status_code=400)
        answer, _ = await service.run(lambda engine: engine.ask(question, rules.DEFAULT_K, filters, history))
        turns = [*previous, turn_view(question, answer)]
        history_json = json.dumps([{"question": t.question, "answer": t.answer} for t in turns][-rules.MAX_HISTORY_TURNS :], ensure_ascii=False)
        form = AskForm(date_from=data.date_from, date_to=data.date_to, sender=data.sender, type=data.type)
        return Template("chat.html", context=self._page(service, turns=turns, form=form, history_json=history_json))


# --- letters -------------------------------------------------------------------------------


@dataclass
class Segment:
    text: str
    level: int  # 0 plain, 1 in the cited passage, 2 in the quoted span
    ids: list[str] = field(default_factory=list)  # anchors that start here
    page: int | None = None  # a page of the printed letter starts here


@dataclass
class Paragraph:
    segments: list[Segment]
    heading: bool  # a section heading of the letter ("Veiligheidssituatie")


def letter_paragraphs(
    letter: Letter, passage: Passage | None, span: tuple[int, int] | None, headings: frozenset[str] = frozenset()
) -> list[Paragraph]:
    """The letter text as paragraphs of segments, marked where the passage and the quote lie."""
    text = letter.text
    p_start, p_end = (passage.start, passage.end) if passage else (-1, -1)
    q_start, q_end = span or (-1, -1)
    page_at = {start: number for number, start in enumerate(letter.page_starts, start=1) if number > 1}
    cuts = {p_start, p_end, q_start, q_end, *page_at}
    paragraphs: list[Paragraph] = []
    seen: set[str] = set()
    position = 0
    for block in text.split("\n\n"):
        start, end = position, position + len(block)
        position = end + 2
        bounds = sorted({start, end, *(cut for cut in cuts if start < cut < end)})
        segments = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            level = 2 if q_start <= a and b <= q_end else 1 if p_start <= a and b <= p_end else 0
            ids = []
            for anchor, wanted in (("passage", level >= 1), ("quote", level == 2)):
                if wanted and anchor not in seen:
                    seen.add(anchor)
                    ids.append(anchor)
            segments.append(Segment(text[a:b], level, ids, page_at.get(a)))
        if segments and any(segment.text.strip() for segment in segments):
            paragraphs.append(Paragraph(segments, block.strip() in headings))
    return paragraphs


class LetterPages(Controller):
    path = "/letters"
    include_in_schema = False

    @get("/", name="letters")
    async def letters(
        self,
        service: NamedDependency[Service],
        q: Annotated[str, QueryParameter(max_length=200)] = "",
        date_from: Annotated[str, QueryParameter(max_length=20)] = "",
        date_to: Annotated[str, QueryParameter(max_length=20)] = "",
        sender: Annotated[str, QueryParameter(max_length=200)] = "",
        doc_type: Annotated[str, QueryParameter(name="type", max_length=60)] = "",
        page: Annotated[int, QueryParameter(ge=1)] = 1,
    ) -> Template:
        error = None
        try:
            filters = Filters.parse(date_from, date_to, None, sender, doc_type)
        except InvalidQuery as problem:
            error, filters = dutch_message(problem), Filters()
        shown = rules.paginate(matching_letters(service.engine.index.letters, filters, q), page)
        query = {"q": q, "date_from": date_from, "date_to": date_to, "sender": sender, "type": doc_type}
        query = {key: value for key, value in query.items() if value}
        context = {
            "letters": shown.items, "total": shown.total, "page": page, "pages": shown.pages, "error": error,
            "form": query, "passages": {letter_id: len(rows) for letter_id, rows in service.engine.index.letter_passages.items()},
            "prev_href": f"/letters?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
            "next_href": f"/letters?{urlencode({**query, 'page': page + 1})}" if page < shown.pages else None,
            **_choices(service),
        }
        return Template("letters.html", context=context, status_code=400 if error else 200)

    @get("/{letter_id:path}", name="letter")
    async def letter(
        self,
        service: NamedDependency[Service],
        letter_id: FromPath[str],
        passage: Annotated[str | None, QueryParameter(max_length=rules.MAX_LETTER_ID + 20)] = None,
        start: Annotated[int | None, QueryParameter(ge=0)] = None,
        end: Annotated[int | None, QueryParameter(ge=0)] = None,
    ) -> Template:
        """The cited passage is marked, and the quote within it; the fragment (#quote, #passage) scrolls there."""
        index = service.engine.index
        letter_id = letter_id.removeprefix("/")  # a path parameter, so an id with "/" (%2F) is one id
        letter = index.letters.get(letter_id)
        if letter is None:
            raise NotFoundException(f"Er is geen brief met kenmerk {quote(letter_id[:rules.MAX_LETTER_ID], safe='/')!r} in de index.")
        passages = index.passages_of(letter_id)
        span = (start, end) if start is not None and end is not None and start < end <= len(letter.text) else None
        chosen = next((p for p in passages if p.id == passage), None)
        if chosen is None and span:
            chosen = next((p for p in passages if p.start <= span[0] and span[1] <= p.end), None)
        if chosen and span and not (chosen.start <= span[0] and span[1] <= chosen.end):
            span = None  # a quote is always inside its passage; anything else is a stale link
        sections: dict[str, Passage] = {}
        for item in passages:
            if item.section:
                sections.setdefault(item.section, item)
        context = {
            "letter": letter, "passage": chosen, "quote": letter.text[span[0] : span[1]] if span else None,
            "paragraphs": letter_paragraphs(letter, chosen, span, frozenset(sections)), "sections": list(sections.values()),
        }
        return Template("letter.html", context=context)


CONTROLLERS = [ChatController, LetterPages]
