"""The HTML pages: the chat (`/`, and `/?q=…` share links), the letters overview (`/letters`) and one letter (`/letters/{id}`).

Everything renders on the server, so the pages work without JavaScript: the chat form posts back and gets
the answer rendered, earlier turns travel in a hidden field as references the server rebuilds from the
index, and a share link is answered here. web/static/chat.js adds streaming, a stop button, chips, previews
and copying; it renders the same markup from the same turn state (`data-turns`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import anyio
import msgspec
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template import TemplateConfig

from qa.answer.answering import Citation
from qa.answer.engine import Engine, Turn
from qa.answer.retrieval import CANDIDATES, Filters, Hit, matching_letters, sort_hits, word_matches
from qa.core import display, limits
from qa.core.display import dutch_date, type_label, web_url
from qa.core.errors import InvalidQuery
from qa.index import facets
from qa.index.lexical import term_spans
from qa.ingest.chunking import Passage
from qa.ingest.cleaning import footnotes
from qa.ingest.letter import Letter
from qa.schemas import answer_out, citation_out, letter_href
from qa.server import security
from qa.server.errors import PageNotFound, PageUnavailable
from qa.server.service import Service
from qa.server.settings import Settings

EXAMPLES = [
    "Wanneer moet de afbouw van Resolute Support afgerond zijn?",
    "Hoeveel minder ruwe materialen wil het kabinet in 2030 verbruiken?",
    "Welke taken heeft de Inspectie Leefomgeving en Transport?",
]
_MARKER = re.compile(r"\[(\d+)\]")
WATCHES_UNREADABLE = "De gevolgde vragen zijn nu niet te lezen: de server kan zijn gegevens niet openen. Probeer het later opnieuw."
log = logging.getLogger("qa.server")


# --- helpers shared with the templates -----------------------------------------------------


_FIELD_LABELS = {"date_from": "Vanaf", "date_to": "Tot en met", "type": "Soort", "sort": "Volgorde", "comment": "De toelichting"}
_MESSAGES: dict[str, str] = {  # the rules of qa/core/limits.py, as the pages (and chat.js) say them
    "question_empty": "Typ eerst een vraag.",
    "question_too_long": f"Uw vraag is te lang: maximaal {limits.MAX_QUESTION:,} tekens.".replace(",", "."),
    "not_a_date": "{label}: '{value}' is geen datum (JJJJ-MM-DD).",
    "dates_reversed": "De begindatum ligt na de einddatum.",
    "unknown_type": "{label}: '{value}' is geen bekende soort brief.",
    "too_many_turns": f"Het gesprek is te lang (meer dan {limits.MAX_HISTORY_TURNS} vragen). Begin een nieuw gesprek.",
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


_BACK = re.compile(r"/(\?[^#\s]*)?(#[A-Za-z0-9-]+)?")  # a chat page (with its question) to return to from a letter


def with_back(href: str, back: str | None) -> str:
    """A letter link that carries where it was opened from (`terug`), so the letter page links back to the answer."""
    if not back:
        return href
    path, hash_, fragment = href.partition("#")
    return f"{path}{'&' if '?' in path else '?'}{urlencode({'terug': back})}{hash_}{fragment}"


def back_link(terug: str | None) -> str | None:
    """`terug` when it is a chat page of this site (never another site, never a script)."""
    return terug if terug and _BACK.fullmatch(terug) else None


def template_globals() -> dict[str, Any]:
    return {
        "letter_href": letter_href, "dutch_date": dutch_date, "type_label": type_label, "safe_url": web_url, "with_back": with_back,
        "max_question": limits.MAX_QUESTION, "history_turns": limits.MAX_HISTORY_TURNS,
        "script_messages": json.dumps(script_messages(), ensure_ascii=False), "months_json": json.dumps(display.MONTH_NAMES),
    }


def template_config(web_dir: Path) -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja over web/templates, autoescaped, with the helpers above as globals."""
    environment = Environment(
        loader=FileSystemLoader(web_dir / "templates"), autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True
    )
    environment.globals.update(template_globals())
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


# --- the chat ------------------------------------------------------------------------------

FILTER_FIELDS = ("date_from", "date_to", "sender", "type")  # the chat's filters, in the order chips and links show them
_CHIP_PREFIX = {"date_from": "Vanaf ", "date_to": "Tot en met ", "sender": "Ministerie: ", "type": "Soort: "}


def filter_chips(filters: dict[str, str]) -> list[tuple[str, str]]:
    """(field, Dutch label) of each active filter: 'Vanaf 1 januari 2021', 'Soort: Motie van Kamerleden'."""
    chips = []
    for name in FILTER_FIELDS:
        if value := filters.get(name):
            shown = dutch_date(value) if name.startswith("date") else type_label(value) if name == "type" else value
            chips.append((name, _CHIP_PREFIX[name] + shown))
    return chips


def share_href(question: str, filters: dict[str, str], context: list[str]) -> str:
    """The chat page that asks this question again: its filters, and the earlier questions a follow-up leans on (h)."""
    params = [("q", question), *((name, filters[name]) for name in FILTER_FIELDS if filters.get(name)), *(("h", c) for c in context)]
    return "/?" + urlencode(params)


class PastTurn(msgspec.Struct):
    """An earlier turn as the no-JS form carries it: the passages it cited by reference (n, passage id, quote
    offsets), so the page rebuilds its source cards from the index instead of trusting text from the client."""

    question: str
    answer: str = ""
    abstained: bool = False
    filters: dict[str, str] = {}
    context: list[str] = []  # the earlier questions it leaned on, for its share link
    cites: list[tuple[int, str, int, int]] = []


@dataclass
class Source:
    """One cited passage with every quote of it that the answer uses (a passage keeps one number)."""

    n: int
    citation: dict[str, Any]  # the first citation (CitationOut as JSON): title, date, type, links
    quotes: list[tuple[str, str]]  # (quote, its href)


@dataclass
class TurnView:
    """A turn as the page shows it; `state` is the same turn as chat.js keeps it (data-turns)."""

    state: dict[str, Any]
    segments: list[tuple[str, dict[str, Any] | None]]  # answer text with [n] links
    sources: list[Source]
    related: list[dict[str, Any]]
    chips: list[tuple[str, str]]
    share: str
    unfiltered: str  # the same question without its filters: offered when it declined within them

    def __getattr__(self, name: str) -> Any:  # turn.question, turn.answer, ... as in the state
        try:
            return self.__dict__["state"][name]
        except KeyError:
            raise AttributeError(name) from None


def turn_state(question: str, answer: dict[str, Any], filters: dict[str, str], context: list[str]) -> dict[str, Any]:
    """A turn in chat.js's shape, from an AnswerOut as JSON (the API's own fields)."""
    return {
        "question": question, "answer": answer["answer"], "abstained": answer["abstained"], "citations": answer["citations"],
        "close": answer.get("close_passages", []), "reason": answer.get("decline_reason"), "label": answer.get("confidence_label"),
        "confidence": answer.get("confidence", 0.0), "filters": filters, "context": context, "done": True,
    }


def turn_view(state: dict[str, Any]) -> TurnView:
    """The i-th [n] marker in the text belongs to the i-th citation, so each links to its own quote."""
    citations: list[dict[str, Any]] = state["citations"]
    segments: list[tuple[str, dict[str, Any] | None]] = []
    position = 0
    for i, marker in enumerate(_MARKER.finditer(state["answer"])):
        n = int(marker.group(1))
        cited = citations[i] if i < len(citations) and citations[i]["n"] == n else next((c for c in citations if c["n"] == n), None)
        segments += [(state["answer"][position : marker.start()], None), (marker.group(0), cited)]
        position = marker.end()
    segments.append((state["answer"][position:], None))
    sources: dict[int, Source] = {}
    for citation in citations:
        source = sources.setdefault(citation["n"], Source(citation["n"], citation, []))
        if citation["quote"] not in (quote for quote, _ in source.quotes):
            source.quotes.append((citation["quote"], citation["href"]))
    related = state["close"] if state["abstained"] else []
    filters = state.get("filters") or {}
    context = state.get("context") or []
    return TurnView(state, segments, sorted(sources.values(), key=lambda s: s.n), related, filter_chips(filters),
                    share_href(state["question"], filters, context), share_href(state["question"], {}, context))


def _past_state(index: Any, turn: PastTurn) -> dict[str, Any]:
    """An earlier turn's state, its citations rebuilt from the index; a reference the index no longer holds is dropped."""
    citations = []
    for n, passage_id, start, end in turn.cites[: limits.MAX_K * 4]:
        letter = index.letters.get(passage_id.rpartition("#")[0])
        passage = next((p for p in index.passages_of(letter.id) if p.id == passage_id), None) if letter else None
        if letter is None or passage is None or not (passage.start <= start < end <= passage.end):
            continue
        citation = Citation(n, passage_id, letter.id, letter.title, letter.date, letter.sender, passage.section, passage.page,
                            letter.url, letter.text[start:end], start, end, 0.0)
        citations.append(msgspec.to_builtins(citation_out(citation, letter)))
    filters = {name: value[: limits.MAX_FILTER_TEXT] for name, value in turn.filters.items() if name in FILTER_FIELDS and value}
    answer = {"answer": turn.answer[: limits.MAX_ANSWER_IN_HISTORY], "abstained": turn.abstained, "citations": citations}
    return turn_state(turn.question, answer, filters, [c[: limits.MAX_QUESTION] for c in turn.context][-limits.MAX_HISTORY_TURNS :])


def _past_json(state: dict[str, Any]) -> dict[str, Any]:
    """What the no-JS form sends back of a turn: its text, filters and citation references."""
    cites = [(c["n"], c["passage_id"], c["quote_start"], c["quote_end"]) for c in state["citations"]]
    return {"question": state["question"], "answer": state["answer"], "abstained": state["abstained"], "filters": state["filters"],
            "context": state["context"], "cites": cites}


def _page_href(path: str, query: dict[str, str], page: int) -> str:
    """A link to page `page` of a paged list (the first page has no page number)."""
    return f"{path}?{urlencode({**query, 'page': page})}" if page > 1 else f"{path}?{urlencode(query)}".rstrip("?")


@dataclass(frozen=True)
class FilterQuery:
    """A page's filter fields as typed in its query string: validated later by `_filters_or_error`, so a page
    can say in Dutch which rule was broken, and handed back to the form, chips and links as they were."""

    date_from: str = ""
    date_to: str = ""
    sender: str = ""
    type: str = ""
    sort: str = ""

    def query(self, **more: str) -> dict[str, str]:
        """The non-blank fields (and `more`), stripped: what links to this page carry."""
        fields = {"date_from": self.date_from, "date_to": self.date_to, "sender": self.sender, "type": self.type, "sort": self.sort}
        return {key: value.strip() for key, value in {**more, **fields}.items() if value.strip()}


def provide_filter_query(
    date_from: Annotated[str, QueryParameter(max_length=20)] = "",
    date_to: Annotated[str, QueryParameter(max_length=20)] = "",
    sender: Annotated[str, QueryParameter(max_length=limits.MAX_FILTER_TEXT)] = "",
    doc_type: Annotated[str, QueryParameter(name="type", max_length=60)] = "",
    sort: Annotated[str, QueryParameter(max_length=20)] = "",
) -> FilterQuery:
    return FilterQuery(date_from, date_to, sender, doc_type, sort)


PAGE_FILTERS = {"page_filters": Provide(provide_filter_query, sync_to_thread=False)}


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

    def filters(self) -> dict[str, str]:
        return {name: value for name in FILTER_FIELDS if (value := getattr(self, name).strip())}


def _history(raw: str) -> list[PastTurn]:
    """The conversation from the hidden field; something unreadable starts afresh rather than failing the question."""
    try:
        turns = msgspec.json.decode(raw or "[]", type=list[PastTurn])
    except msgspec.DecodeError:  # ValidationError included
        return []
    return [turn for turn in turns if turn.question.strip()][-limits.MAX_HISTORY_TURNS :]


def _choices(service: Service) -> dict[str, Any]:
    return {"ministries": service.ministries, "types": [(value, type_label(value)) for value in service.types]}


class ChatController(Controller):
    include_in_schema = False
    dependencies = PAGE_FILTERS

    def _page(self, service: Service, states: list[dict[str, Any]], form: AskForm, error: str | None = None) -> dict[str, Any]:
        history_json = json.dumps([_past_json(state) for state in states][-limits.MAX_HISTORY_TURNS :], ensure_ascii=False)
        return {"info": service.info, "examples": EXAMPLES, "turns": [turn_view(state) for state in states], "form": form,
                "chips": filter_chips(form.filters()), "history_json": history_json, "turns_json": json.dumps(states, ensure_ascii=False),
                "error": error, **_choices(service)}

    async def _answer(self, service: Service, states: list[dict[str, Any]], data: AskForm, question: str,
                      history: list[Turn], context: list[str], status: int = 200) -> Template:
        """Ask, and render the page with the new turn after `states`; a broken rule renders the form with the Dutch message."""
        try:
            question = limits.check_question(question)
            filters = Filters.parse(data.date_from, data.date_to, None, data.sender, data.type)
        except InvalidQuery as error:
            return Template("chat.html", context=self._page(service, states, data, dutch_message(error)), status_code=400)
        answer, _ = await service.run(lambda engine: engine.ask(question, limits.DEFAULT_K, filters, history))
        follow_up = answer.query != question  # the engine read the earlier questions with it
        state = turn_state(question, msgspec.to_builtins(answer_out(answer)), data.filters(), context if follow_up else [])
        form = AskForm(date_from=data.date_from, date_to=data.date_to, sender=data.sender, type=data.type)
        return Template("chat.html", context=self._page(service, [*states, state], form), status_code=status)

    @get("/", name="chat")
    async def chat(
        self,
        service: NamedDependency[Service],
        page_filters: NamedDependency[FilterQuery],
        q: Annotated[str, QueryParameter(max_length=limits.MAX_QUESTION * 2)] = "",
        h: Annotated[list[str] | None, QueryParameter(max_items=limits.MAX_HISTORY_TURNS)] = None,
    ) -> Template:
        """`/?q=…` (a share link) asks on the server, so the link works without JavaScript; `h` are the earlier
        questions a follow-up leans on."""
        chosen = page_filters
        form = AskForm(question=q, date_from=chosen.date_from, date_to=chosen.date_to, sender=chosen.sender, type=chosen.type)
        if not q:
            return Template("chat.html", context=self._page(service, [], form))
        context = [text[: limits.MAX_QUESTION] for text in h or [] if text.strip()]
        return await self._answer(service, [], form, q, [Turn(text) for text in context], context)

    @post("/", status_code=200)
    async def ask(self, service: NamedDependency[Service], data: URLEncodedBody[AskForm]) -> Template:
        """The chat without JavaScript: the answer rendered into the page, the conversation in a hidden field."""
        past = _history(data.history)
        states = [_past_state(service.engine.index, turn) for turn in past]
        answered = [state for state in states if not state.get("error")]
        context = [*answered[-1]["context"], answered[-1]["question"]] if answered else []
        history = [Turn(state["question"], state["answer"]) for state in answered]
        return await self._answer(service, states, data, data.example or data.question, history, context)


# --- letters -------------------------------------------------------------------------------


@dataclass
class Segment:
    text: str
    level: int  # 0 plain, 1 in the cited passage, 2 in the quoted span
    ids: list[str] = field(default_factory=list)  # anchors that start here
    page: int | None = None  # a page of the printed letter starts here
    link: str | None = None  # a footnote marker ("¹") links to its note


@dataclass
class Paragraph:
    segments: list[Segment]
    heading: bool  # a section heading of the letter ("Veiligheidssituatie")
    note: bool = False  # a footnote, under the letter; its marker links back to where it is cited


def letter_paragraphs(
    letter: Letter, passage: Passage | None, span: tuple[int, int] | None, headings: frozenset[str] = frozenset()
) -> list[Paragraph]:
    """The letter text as paragraphs of segments, marked where the passage and the quote lie."""
    text = letter.text
    p_start, p_end = (passage.start, passage.end) if passage else (-1, -1)
    q_start, q_end = span or (-1, -1)
    page_at = {start: number for number, start in enumerate(letter.page_starts, start=1) if number > 1}
    notes = footnotes(text)
    note_at = {note.start: f"noot-{note.number}" for note in notes}  # the note paragraph's anchor
    marker_at = {marker: (marker + len(str(note.number)), f"#noot-{note.number}") for note in notes for marker in note.markers}
    # The body's first marker of each note is its anchor ("verwijzing-N"), and the note's own number links back to it.
    cited_at = {note.markers[0]: f"verwijzing-{note.number}" for note in notes if note.markers}
    marker_at |= {note.start: (note.start + len(str(note.number)), f"#verwijzing-{note.number}") for note in notes if note.markers}
    note_spans = [(note.start, note.end) for note in notes]
    cuts = {p_start, p_end, q_start, q_end, *page_at, *note_at, *marker_at, *(end for end, _ in marker_at.values())}
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
            if a in note_at:
                ids.append(note_at[a])
            if a in cited_at:
                ids.append(cited_at[a])
            link = marker_at[a][1] if a in marker_at and marker_at[a][0] == b else None
            segments.append(Segment(text[a:b], level, ids, page_at.get(a), link))
        if segments and any(segment.text.strip() for segment in segments):
            is_note = any(note_start <= start < note_end for note_start, note_end in note_spans)
            paragraphs.append(Paragraph(segments, block.strip() in headings, is_note))
    return paragraphs


# --- facets, chips and the search view -----------------------------------------------------


@dataclass
class FacetLink:
    label: str
    count: int
    href: str  # this page with the facet's filter added (or removed, when active)
    active: bool


@dataclass
class Chip:
    label: str
    remove_href: str


SORT_LABELS = {"relevance": "Relevantie", "newest": "Nieuwste eerst", "oldest": "Oudste eerst"}


def _href(path: str, query: dict[str, str], **changes: str | None) -> str:
    """`path` with the query, changed; None or "" drops a key, and any change starts again at page 1."""
    merged = {key: value for key, value in {**query, **changes}.items() if value and key != "page"}
    return f"{path}?{urlencode(merged)}" if merged else path


def facet_links(path: str, query: dict[str, str], counted: facets.Facets) -> dict[str, list[FacetLink]]:
    """Each facet value as a link that filters by it (or, when it is the active filter, removes it)."""
    years = [(value, n, facets.year_range(value)) for value, n in counted.year]
    return {
        "type": [FacetLink(type_label(value), n, _href(path, query, type=None if query.get("type") == value else value), query.get("type") == value)
                 for value, n in counted.type],
        "ministry": [FacetLink(value, n, _href(path, query, sender=None if query.get("sender") == value else value), query.get("sender") == value)
                     for value, n in counted.ministry],
        "year": [FacetLink(value, n, _href(path, query, date_from=None, date_to=None) if active else _href(path, query, date_from=start, date_to=end), active)
                 for value, n, (start, end) in years
                 for active in [(query.get("date_from"), query.get("date_to")) == (start, end)]],
    }


def removable_chips(path: str, query: dict[str, str]) -> list[Chip]:
    """The active filters, labelled as the chat labels them (`filter_chips`), each with a link that removes it;
    a date range that is exactly one year (a year facet) is one chip."""
    start, end = query.get("date_from"), query.get("date_to")
    chips = []
    rest = query
    if start and (start, end) == facets.year_range(start[:4]):
        chips.append(Chip(f"Jaar {start[:4]}", _href(path, query, date_from=None, date_to=None)))
        rest = {key: value for key, value in query.items() if key not in ("date_from", "date_to")}
    return chips + [Chip(label, _href(path, query, **{name: None})) for name, label in filter_chips(rest)]


@dataclass
class ResultView:
    """A ranked passage as the search view shows it: its letter, where it stands, and an excerpt with the query's words marked."""

    title: str
    href: str
    date_label: str
    type_label: str
    sender: str | None
    section: str | None
    page: int
    letter_id: str
    excerpt: list[tuple[str, bool]]  # (text, is a word of the query)


EXCERPT_CHARS = 420  # about four lines of the results column; a passage is ~930 characters
EXCERPT_LEAD = 120  # characters shown before the first marked word


def excerpt(text: str, query: str) -> list[tuple[str, bool]]:
    """A window of `text` around the first word of `query` (or its start), cut at spaces, the query's words marked."""
    text = " ".join(text.split())
    spans = term_spans(text, query)
    start = 0
    if len(text) > EXCERPT_CHARS:
        start = max(0, min(spans[0][0] - EXCERPT_LEAD, len(text) - EXCERPT_CHARS)) if spans else 0
        if start:
            start = text.find(" ", start) + 1 or start
    end = min(len(text), start + EXCERPT_CHARS)
    if end < len(text):
        end = text.rfind(" ", start, end) if text.rfind(" ", start, end) > start else end
    pieces: list[tuple[str, bool]] = [("…", False)] if start else []
    position = start
    for a, b in spans:
        if a < start or b > end:
            continue
        pieces += [(text[position:a], False), (text[a:b], True)]
        position = b
    pieces.append((text[position:end], False))
    if end < len(text):
        pieces.append(("…", False))
    return [piece for piece in pieces if piece[0]]


def result_view(hit: Hit, query: str) -> ResultView:
    letter, passage = hit.letter, hit.passage
    return ResultView(letter.title or letter.id, letter_href(letter.id, passage.id), dutch_date(letter.date), type_label(letter.type),
                      letter.sender, passage.section, passage.page, letter.id, excerpt(passage.text, query))


def _filters_or_error(query: dict[str, str]) -> tuple[Filters, limits.Sort, str | None]:
    """The page's filters and order, or none and the Dutch message of the rule the query broke."""
    try:
        filters = Filters.parse(query.get("date_from"), query.get("date_to"), None, query.get("sender"), query.get("type"))
        return filters, limits.parse_sort(query.get("sort")), None
    except InvalidQuery as problem:
        return Filters(), "relevance", dutch_message(problem)


SEARCH_RESULTS = limits.MAX_K  # passages the search view lists (and can re-sort); its facets count all that match


@dataclass
class SearchView:
    hits: list[Hit]
    matches: int  # passages holding a word of the query, within the filters (what the facets count)
    facets: facets.Facets
    closest_only: bool  # no passage holds the words: the hits are the closest in meaning


def search_view(engine: Engine, text: str, filters: Filters) -> SearchView:
    """The passages that hold the query's words, in hybrid order, with facets over all of them; when none does,
    the closest passages in meaning (and no facets: there is nothing to narrow)."""
    rows = word_matches(engine.index, text, filters)
    if not rows:
        return SearchView(engine.search(text, k=limits.DEFAULT_K, filters=filters), 0, facets.count([]), True)
    # Deep enough that when at most SEARCH_RESULTS passages hold the words, every one is listed: a BM25 hit of rank
    # r <= 50 fuses to >= 0.7/111, which only dense hits of rank < 98 beat, so it ranks within the first ~150.
    ranked = engine.search(text, k=3 * CANDIDATES, filters=filters)
    holding = [hit for hit in ranked if hit.lexical_score]
    return SearchView(holding[:SEARCH_RESULTS], len(rows), facets.of_passages(engine.index, rows), False)


class SearchPage(Controller):
    path = "/zoeken"
    include_in_schema = False
    dependencies = PAGE_FILTERS

    @get("/", name="search")
    async def search(
        self,
        service: NamedDependency[Service],
        page_filters: NamedDependency[FilterQuery],
        q: Annotated[str, QueryParameter(max_length=limits.MAX_QUESTION)] = "",
    ) -> Template:
        """Ranked passages, beside the chat: the query's words marked, facets to narrow by type, ministry and year."""
        query = page_filters.query(q=q)
        filters, order, error = _filters_or_error(query)
        text = q.strip()
        view = SearchView([], 0, facets.count([]), False)
        if text and not error:
            view, _ = await service.run(lambda engine: search_view(engine, text, filters))
        context = {
            "form": query, "error": error, "results": [result_view(hit, text) for hit in sort_hits(view.hits, order)], "searched": bool(text) and not error,
            "matches": view.matches, "closest_only": view.closest_only,
            "facets": facet_links("/zoeken", query, view.facets), "chips": removable_chips("/zoeken", query),
            "sorts": [(value, label, _href("/zoeken", query, sort=None if value == "relevance" else value), value == order)
                      for value, label in SORT_LABELS.items()],
            "ask_href": "/?" + urlencode({"q": text}) if text else "/", **_choices(service),
        }
        return Template("search.html", context=context, status_code=400 if error else 200)


class LetterPages(Controller):
    path = "/letters"
    include_in_schema = False
    dependencies = PAGE_FILTERS

    @get("/", name="letters")
    async def letters(
        self,
        service: NamedDependency[Service],
        page_filters: NamedDependency[FilterQuery],
        q: Annotated[str, QueryParameter(max_length=limits.MAX_FILTER_TEXT)] = "",
        page: Annotated[int, QueryParameter(ge=1)] = 1,
    ) -> Template | Redirect:
        """Full text: the letters that hold every word of `q` (or match it in id or title), sortable, with facet counts."""
        query = page_filters.query(q=q)
        filters, order, error = _filters_or_error(query)
        found, _ = await service.run(lambda engine: matching_letters(engine.index, filters, q, order))
        shown = limits.paginate(found, page)
        if page > shown.pages:  # a page past the last one (an old link, a hand-made URL): the last page there is
            return Redirect(_page_href("/letters", query, shown.pages))
        context = {
            "letters": shown.items, "total": shown.total, "page": page, "pages": shown.pages, "error": error,
            "form": query, "passages": {letter_id: len(rows) for letter_id, rows in service.engine.index.letter_passages.items()},
            "prev_href": _page_href("/letters", query, page - 1) if page > 1 else None,
            "next_href": _page_href("/letters", query, page + 1) if page < shown.pages else None,
            "facets": facet_links("/letters", query, facets.count(found)), "chips": removable_chips("/letters", query),
            "sorts": [(value, label, _href("/letters", query, sort=None if value == "relevance" else value), value == order)
                      for value, label in SORT_LABELS.items()],
            **_choices(service),
        }
        return Template("letters.html", context=context, status_code=400 if error else 200)

    @get("/{letter_id:path}", name="letter")
    async def letter(
        self,
        service: NamedDependency[Service],
        letter_id: FromPath[str],
        passage: Annotated[str | None, QueryParameter(max_length=limits.MAX_LETTER_ID + 20)] = None,
        start: Annotated[int | None, QueryParameter(ge=0)] = None,
        end: Annotated[int | None, QueryParameter(ge=0)] = None,
        terug: Annotated[str | None, QueryParameter(max_length=limits.MAX_QUESTION * 4)] = None,
    ) -> Template:
        """The cited passage is marked, and the quote within it; the fragment (#quote, #passage) scrolls there."""
        index = service.engine.index
        letter_id = letter_id.removeprefix("/")  # a path parameter, so an id with "/" (%2F) is one id
        letter = index.letters.get(letter_id)
        if letter is None:
            raise PageNotFound(f"Er is geen brief met kenmerk {quote(letter_id[:limits.MAX_LETTER_ID], safe='/')!r} in de index.")
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
            "back": back_link(terug),
        }
        return Template("letter.html", context=context)


# --- earlier Kamervragen --------------------------------------------------------------------


class KamervragenPages(Controller):
    path = "/kamervragen"
    include_in_schema = False
    dependencies = PAGE_FILTERS

    @get("/", name="kamervragen")
    async def kamervragen(
        self,
        service: NamedDependency[Service],
        page_filters: NamedDependency[FilterQuery],
        q: Annotated[str, QueryParameter(max_length=limits.MAX_QUESTION + 100)] = "",
        asker: Annotated[str, QueryParameter(max_length=200)] = "",
        page: Annotated[int, QueryParameter(ge=1)] = 1,
    ) -> Template | Redirect:
        """Pairs ranked for a question (without one: all, newest first); each opens its letter with the pair highlighted."""
        from qa.answer import kamervragen
        from qa.schemas import pair_out

        error = None
        try:
            question = limits.check_question(q, "q") if q.strip() else None
            filters = Filters.parse(page_filters.date_from, page_filters.date_to, None, page_filters.sender, None)
        except InvalidQuery as problem:
            error, question, filters = dutch_message(problem), None, Filters()
        ranked = service.kamervragen
        found, _ = await service.run(lambda engine: kamervragen.find(engine, ranked, question, filters, limits.blank_to_none(asker), page))
        query = FilterQuery(page_filters.date_from, page_filters.date_to, page_filters.sender).query(q=q, asker=asker)
        if page > found.pages:  # past the last page (an old link): the last page there is, as the letters overview does
            return Redirect(_page_href("/kamervragen", query, found.pages))
        context = {
            "pairs": [pair_out(match) for match in found.items], "total": found.total, "page": page, "pages": found.pages,
            "error": error, "form": query,
            "prev_href": _page_href("/kamervragen", query, page - 1) if page > 1 else None,
            "next_href": _page_href("/kamervragen", query, page + 1) if page < found.pages else None,
            **_choices(service),
        }
        return Template("kamervragen.html", context=context, status_code=400 if error else 200)


# --- saved questions: a page and an Atom feed per watch, at URLs made of its token -----------------


class WatchPages(Controller):
    path = "/watches"
    include_in_schema = False

    @staticmethod
    async def _load(settings: Settings, token: str) -> tuple[Any, list[Any]]:
        """The watch and its hits, read in a thread (SQLite may wait for another process's write) without writing,
        so a read-only data folder serves them; a database that cannot be read is a 503 page in Dutch."""
        from qa.users import db as userdb
        from qa.users import watches

        try:
            return await anyio.to_thread.run_sync(watches.open_watch, settings.index_dir, token)
        except watches.WatchNotFound:
            raise PageNotFound("Er is geen gevolgde vraag met deze link. Misschien is hij verwijderd of verkeerd overgenomen.") from None
        except userdb.UserDataError as error:
            log.error("saved questions unreadable: %s", error)
            raise PageUnavailable(WATCHES_UNREADABLE) from error

    @get("/{token:str}", name="watch")
    async def watch(self, settings: NamedDependency[Settings], token: FromPath[Annotated[str, msgspec.Meta(max_length=100)]]) -> Template:
        """The hits of one saved question, newest first, with its feed's address."""
        from qa.schemas import watch_hit_out
        from qa.users import watches

        watch, found = await self._load(settings, token)
        context = {"watch": watch, "hits": [watch_hit_out(hit) for hit in found], "feed": watches.feed_path(watch.token)}
        return Template("watch.html", context=context)

    @get("/{token:str}/feed.atom", name="watch_feed", media_type="application/atom+xml")
    async def feed(self, request: Request[Any, Any, Any], settings: NamedDependency[Settings],
                   token: FromPath[Annotated[str, msgspec.Meta(max_length=100)]]) -> Response[bytes]:
        """Atom (RFC 4287): feed readers and mail-to-RSS services poll it; links are absolute, on the configured base URL."""
        from qa.users import watches

        watch, found = await self._load(settings, token)
        base = security.public_base_url(request, settings)
        body = watches.atom_feed(watch, found, base, lambda hit: letter_href(hit.letter_id, hit.passage_id, hit.quote_start, hit.quote_end))
        return Response(body, media_type="application/atom+xml; charset=utf-8")


CONTROLLERS = [ChatController, SearchPage, LetterPages, KamervragenPages, WatchPages]
