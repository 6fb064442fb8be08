"""Earlier Kamervragen with their answers, ranked for a question."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from qa.answer import kamervragen
from qa.answer.retrieval import Filters
from qa.core import limits
from qa.schemas import PairOut, pair_out
from qa.server.api.fields import FILTERS
from qa.server.service import Service


class KamervragenPage(msgspec.Struct):
    pairs: list[PairOut]
    page: int
    per_page: int
    total: int  # pairs that match (score at least min_score) and pass the filters
    pages: int


class KamervragenController(Controller):
    path = "/api/kamervragen"
    tags = ["kamervragen"]
    dependencies = FILTERS

    @get("/", summary="Earlier Kamervragen with their answers, ranked for a question")
    async def kamervragen(
        self,
        service: NamedDependency[Service],
        filters: NamedDependency[Filters],
        q: Annotated[str | None, QueryParameter(description="The question; without it every pair, newest first.",
                                                schema_extra={"maxLength": limits.MAX_QUESTION})] = None,
        asker: Annotated[str | None, QueryParameter(max_length=limits.MAX_FILTER_TEXT, description="Part of an asking member's name or party.")] = None,
        min_score: Annotated[float | None, QueryParameter(ge=-10, le=10, description="Leave out pairs scoring below this (default: PairPolicy.list_from).")] = None,
        panel: Annotated[bool, QueryParameter(description="Only the good matches the chat shows beside an answer.")] = False,
        page: Annotated[int, QueryParameter(ge=1)] = 1,
        per_page: Annotated[int, QueryParameter(ge=1, le=limits.MAX_PER_PAGE)] = limits.PER_PAGE,
    ) -> KamervragenPage:
        """Each pair quotes the Vraag and the Antwoord verbatim, with their offsets in the letter; `href` opens the
        letter with both highlighted. Ranked by how well the earlier question matches and its answer answers."""
        question = limits.check_question(q, "q") if q is not None else None
        ranked = service.kamervragen
        found, _ = await service.run(lambda engine: kamervragen.find(
            engine, ranked, question, filters, limits.blank_to_none(asker), page, per_page, min_score, panel))
        return KamervragenPage([pair_out(match) for match in found.items], found.page, found.per_page, found.total, found.pages)
