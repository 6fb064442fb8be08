"""Earlier Kamervragen (`/kamervragen`): pairs ranked for a question, each opening its letter with the pair highlighted."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from qa.answer import kamervragen
from qa.answer.retrieval import Filters
from qa.core import limits
from qa.core.errors import InvalidQuery
from qa.schemas import pair_out
from qa.server.pages.filters import PAGE_FILTERS, FilterQuery, form_choices
from qa.server.pages.rendering import dutch_message, page_href
from qa.server.service import Service


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
            return Redirect(page_href("/kamervragen", query, found.pages))
        context = {
            "pairs": [pair_out(match) for match in found.items], "total": found.total, "page": page, "pages": found.pages,
            "error": error, "form": query,
            "prev_href": page_href("/kamervragen", query, page - 1) if page > 1 else None,
            "next_href": page_href("/kamervragen", query, page + 1) if page < found.pages else None,
            **form_choices(service),
        }
        return Template("kamervragen.html", context=context, status_code=400 if error else 200)
