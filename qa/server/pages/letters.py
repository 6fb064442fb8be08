"""The letters overview (`/letters`) and one letter (`/letters/{id}`), the cited passage and quote marked."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from qa.answer.retrieval import matching_letters
from qa.core import limits
from qa.index import facets
from qa.ingest.chunking import Passage
from qa.server.errors import PageNotFound
from qa.server.pages.filters import PAGE_FILTERS, FilterQuery, facet_links, filters_or_error, form_choices, removable_chips, sort_links
from qa.server.pages.highlight import letter_paragraphs
from qa.server.pages.rendering import back_link, page_href
from qa.server.service import Service


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
        filters, order, error = filters_or_error(query)
        found, _ = await service.run(lambda engine: matching_letters(engine.index, filters, q, order))
        shown = limits.paginate(found, page)
        if page > shown.pages:  # a page past the last one (an old link, a hand-made URL): the last page there is
            return Redirect(page_href("/letters", query, shown.pages))
        context = {
            "letters": shown.items, "total": shown.total, "page": page, "pages": shown.pages, "error": error,
            "form": query, "passages": {letter_id: len(rows) for letter_id, rows in service.engine.index.letter_passages.items()},
            "prev_href": page_href("/letters", query, page - 1) if page > 1 else None,
            "next_href": page_href("/letters", query, page + 1) if page < shown.pages else None,
            "facets": facet_links("/letters", query, facets.count(found)), "chips": removable_chips("/letters", query),
            "sorts": sort_links("/letters", query, order),
            **form_choices(service),
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
