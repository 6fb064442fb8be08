"""The search view (`/zoeken`): ranked passages beside the chat, the query's words marked, with facets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Template

from qa.answer.engine import Engine
from qa.answer.retrieval import CANDIDATES, Filters, Hit, sort_hits, word_matches
from qa.core import limits
from qa.core.display import dutch_date, type_label
from qa.index import facets
from qa.schemas import letter_href
from qa.server.pages.filters import PAGE_FILTERS, FilterQuery, facet_links, filters_or_error, form_choices, removable_chips, sort_links
from qa.server.pages.highlight import excerpt
from qa.server.service import Service


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


def result_view(hit: Hit, query: str) -> ResultView:
    letter, passage = hit.letter, hit.passage
    return ResultView(letter.title or letter.id, letter_href(letter.id, passage.id), dutch_date(letter.date), type_label(letter.type),
                      letter.sender, passage.section, passage.page, letter.id, excerpt(passage.text, query))


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
        filters, order, error = filters_or_error(query)
        text = q.strip()
        view = SearchView([], 0, facets.count([]), False)
        if text and not error:
            view, _ = await service.run(lambda engine: search_view(engine, text, filters))
        context = {
            "form": query, "error": error, "results": [result_view(hit, text) for hit in sort_hits(view.hits, order)], "searched": bool(text) and not error,
            "matches": view.matches, "closest_only": view.closest_only,
            "facets": facet_links("/zoeken", query, view.facets), "chips": removable_chips("/zoeken", query),
            "sorts": sort_links("/zoeken", query, order),
            "ask_href": "/?" + urlencode({"q": text}) if text else "/", **form_choices(service),
        }
        return Template("search.html", context=context, status_code=400 if error else 200)
