"""The HTML pages: the chat (`/`), the letters overview (`/letters`) and one letter (`/letters/{id}`).

Everything renders on the server, so the pages work without JavaScript (the chat form posts back
and gets the answer rendered); web/static/chat.js only adds streaming and keeps the conversation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any
from pathlib import Path
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

from qa.answering import Answer, Citation
from qa.chunking import Passage
from qa.engine import Turn
from qa.letters import Letter
from qa.retrieval import Filters, Hit
from qa.server.api import MAX_QUESTION, PER_PAGE, TurnIn, filtered_letters, make_filters
from qa.server.service import Service

EXAMPLES = [
    "Wanneer moet de afbouw van Resolute Support afgerond zijn?",
    "Hoeveel minder ruwe materialen wil het kabinet in 2030 verbruiken?",
    "Welke taken heeft de Inspectie Leefomgeving en Transport?",
]
TYPE_LABELS = {"brief_regering": "Brief van de regering", "antwoord_kamervragen": "Antwoorden op Kamervragen", "motie": "Motie"}
MONTHS = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december"]
HISTORY_TURNS = 10
_MARKER = re.compile(r"\[(\d+)\]")
_OFFICE = re.compile(r"(?i:minister|staatssecretaris)\s+(?:van|voor)\s+(?:de\s+)?(.+?)(?=\s*\(|,|\s+mede\b|\s+en\s+van\b|$)")
_PARENS = re.compile(r"\(([^)]+)\)")


# --- helpers shared with the templates -----------------------------------------------------


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


def dutch_date(iso: str | None) -> str:
    try:
        day = date.fromisoformat(iso or "")
    except ValueError:
        return iso or "datum onbekend"
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def type_label(value: str | None) -> str:
    return TYPE_LABELS.get(value or "", value or "onbekend")


def ministry(sender: str | None) -> str | None:
    """'Minister van Defensie' -> 'Defensie'; 'Minister De Jonge (Binnenlandse Zaken ...)' -> 'Binnenlandse Zaken ...'."""
    if not sender:
        return None
    if office := _OFFICE.search(sender):
        return office.group(1).strip()
    if parens := _PARENS.search(sender):
        return parens.group(1).split(" – ")[0].strip()
    return None


def safe_url(url: str | None) -> str | None:
    """Only web links leave the site: a letter's url field never becomes a javascript: link."""
    return url if url and url.lower().startswith(("https://", "http://")) else None


def template_globals() -> dict[str, Any]:
    return {
        "letter_href": letter_href, "dutch_date": dutch_date, "type_label": type_label, "safe_url": safe_url,
        "max_question": MAX_QUESTION,
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


def _citation_card(citation: Citation) -> Card:
    return Card(
        citation.n, citation.letter_id, citation.title or citation.letter_id, citation.date, citation.sender,
        citation.section, citation.page, safe_url(citation.url), citation.quote,
        letter_href(citation.letter_id, citation.passage_id, citation.quote_start, citation.quote_end),
    )


def _hit_card(hit: Hit) -> Card:
    text = " ".join(hit.passage.text.split())
    return Card(
        None, hit.letter.id, hit.letter.title or hit.letter.id, hit.letter.date, hit.letter.sender, hit.passage.section,
        hit.passage.page, safe_url(hit.letter.url), text[:300] + ("…" if len(text) > 300 else ""), letter_href(hit.letter.id, hit.passage.id),
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
    related = [_hit_card(hit) for hit in answer.hits[:3]] if answer.abstained else []
    return TurnView(question, answer.text, answer.abstained, segments, sorted(sources, key=lambda c: c.n or 0), related)


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


def parse_form_filters(date_from: str | None, date_to: str | None, sender: str | None, doc_type: str | None) -> Filters:
    """Filters from a form; raises ValueError with a Dutch message the page shows."""
    for label, value in (("Vanaf", date_from), ("Tot en met", date_to)):
        if value and value.strip():
            try:
                date.fromisoformat(value.strip())
            except ValueError as error:
                raise ValueError(f"{label}: '{value}' is geen datum (JJJJ-MM-DD).") from error
    filters = make_filters((date_from or "").strip(), (date_to or "").strip(), None, sender, doc_type)
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise ValueError("De begindatum ligt na de einddatum.")
    return filters


def _history(raw: str) -> list[Turn]:
    try:
        turns = msgspec.json.decode(raw or "[]", type=list[TurnIn])
    except msgspec.DecodeError:
        return []
    return [Turn(turn.question, turn.answer) for turn in turns][-HISTORY_TURNS:]


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
        question = (data.example or data.question).strip()
        previous = [TurnView(turn.question, turn.answer) for turn in history]
        error = None
        if not question:
            error = "Typ eerst een vraag."
        elif len(question) > MAX_QUESTION:
            error = f"Uw vraag is te lang: maximaal {MAX_QUESTION:,} tekens.".replace(",", ".")
        else:
            try:
                filters = parse_form_filters(data.date_from, data.date_to, data.sender, data.type)
            except ValueError as problem:
                error = str(problem)
        if error:
            context = self._page(service, turns=previous, form=data, history_json=data.history or "[]", error=error)
            return Template("chat.html", context=context, status_code=400)
        answer, _ = await service.run(lambda engine: engine.ask(question, 5, filters, history))
        turns = [*previous, turn_view(question, answer)]
        history_json = json.dumps([{"question": t.question, "answer": t.answer} for t in turns][-HISTORY_TURNS:], ensure_ascii=False)
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
            filters = parse_form_filters(date_from, date_to, sender, doc_type)
        except ValueError as problem:
            error, filters = str(problem), Filters()
        found = filtered_letters(service.engine.index.letters, filters, q)
        pages = max(1, -(-len(found) // PER_PAGE))
        shown = found[(page - 1) * PER_PAGE : page * PER_PAGE]
        query = {"q": q, "date_from": date_from, "date_to": date_to, "sender": sender, "type": doc_type}
        query = {key: value for key, value in query.items() if value}
        context = {
            "letters": shown, "total": len(found), "page": page, "pages": pages, "error": error,
            "form": query, "passages": {letter_id: len(rows) for letter_id, rows in service.engine.index.letter_passages.items()},
            "prev_href": f"/letters?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
            "next_href": f"/letters?{urlencode({**query, 'page': page + 1})}" if page < pages else None,
            **_choices(service),
        }
        return Template("letters.html", context=context, status_code=400 if error else 200)

    @get("/{letter_id:str}", name="letter")
    async def letter(
        self,
        service: NamedDependency[Service],
        letter_id: FromPath[str],
        passage: Annotated[str | None, QueryParameter(max_length=300)] = None,
        start: Annotated[int | None, QueryParameter(ge=0)] = None,
        end: Annotated[int | None, QueryParameter(ge=0)] = None,
    ) -> Template:
        """The cited passage is marked, and the quote within it; the fragment (#quote, #passage) scrolls there."""
        index = service.engine.index
        letter = index.letters.get(letter_id)
        if letter is None:
            raise NotFoundException(f"Er is geen brief met kenmerk {letter_id!r} in de index.")
        passages = [index.passages[row] for row in index.letter_passages.get(letter_id, [])]
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
