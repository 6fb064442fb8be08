"""Letters: the overview (full text, filters, facets, a page at a time) and one letter with its text."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter

from qa.answer.retrieval import Filters, matching_letters
from qa.core import limits
from qa.index import facets
from qa.schemas import Facets, LetterMeta, LetterOut, facets_out, letter_meta, letter_out
from qa.server.api.fields import FILTERS, SortParameter
from qa.server.service import Service


class LetterPage(msgspec.Struct):
    letters: list[LetterMeta]
    page: int
    per_page: int
    total: int
    pages: int
    facets: Facets  # over all `total` letters that match, not just this page


class LetterController(Controller):
    path = "/api/letters"
    tags = ["letters"]
    dependencies = FILTERS

    @get("/", summary="Letters that hold the words of `q` (full text) or match the filters, with facet counts, a page at a time")
    async def letters(
        self,
        service: NamedDependency[Service],
        filters: NamedDependency[Filters],
        q: Annotated[str | None, QueryParameter(max_length=limits.MAX_FILTER_TEXT, description="Words the letter's text holds (all of them), or part of its id or title.")] = None,
        page: Annotated[int, QueryParameter(ge=1)] = 1,
        per_page: Annotated[int, QueryParameter(ge=1, le=limits.MAX_PER_PAGE)] = limits.PER_PAGE,
        sort: SortParameter = "relevance",
    ) -> LetterPage:
        index = service.engine.index
        found, _ = await service.run(lambda engine: matching_letters(engine.index, filters, q, sort))  # BM25 over every passage: off the event loop
        shown = limits.paginate(found, page, per_page)
        return LetterPage(
            letters=[letter_meta(letter, len(index.passages_of(letter.id))) for letter in shown.items],
            page=shown.page, per_page=shown.per_page, total=shown.total, pages=shown.pages, facets=facets_out(facets.count(found)),
        )

    @get("/{letter_id:path}", summary="One letter: metadata, cleaned text and where its passages lie", sync_to_thread=False)
    def letter(self, service: NamedDependency[Service], letter_id: FromPath[str]) -> LetterOut:
        """The id may contain "/" (sent as %2F): the parameter is a path, so such a letter can be opened."""
        index = service.engine.index
        letter_id = letter_id.removeprefix("/")
        letter = index.letters.get(letter_id)
        if letter is None:
            raise NotFoundException(f"no letter with id {quote(letter_id[:limits.MAX_LETTER_ID], safe='/')!r}")  # as in a URL: no markup
        return letter_out(letter, index.passages_of(letter_id))
