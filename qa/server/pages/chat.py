"""The chat (`/`, and `/?q=…` share links).

Everything renders on the server, so the pages work without JavaScript: the chat form posts back and gets
the answer rendered, earlier turns travel in a hidden field as references the server rebuilds from the
index, and a share link is answered here. web/static/chat.js adds streaming, a stop button, chips, previews
and copying; it renders the same markup from the same turn state (`data-turns`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Template

from qa.answer.engine import Turn
from qa.answer.retrieval import Filters
from qa.core import limits
from qa.core.errors import InvalidQuery
from qa.schemas import answer_out
from qa.server.pages.filters import FILTER_FIELDS, PAGE_FILTERS, FilterQuery, filter_chips, form_choices
from qa.server.pages.history import past_json, past_state, read_history
from qa.server.pages.rendering import dutch_message
from qa.server.pages.turns import turn_state, turn_view
from qa.server.service import Service

EXAMPLES = [
    "Wanneer moet de afbouw van Resolute Support afgerond zijn?",
    "Hoeveel minder ruwe materialen wil het kabinet in 2030 verbruiken?",
    "Welke taken heeft de Inspectie Leefomgeving en Transport?",
]


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


class ChatController(Controller):
    include_in_schema = False
    dependencies = PAGE_FILTERS

    def _page(self, service: Service, states: list[dict[str, Any]], form: AskForm, error: str | None = None) -> dict[str, Any]:
        history_json = json.dumps([past_json(state) for state in states][-limits.MAX_HISTORY_TURNS :], ensure_ascii=False)
        return {"info": service.info, "examples": EXAMPLES, "turns": [turn_view(state) for state in states], "form": form,
                "chips": filter_chips(form.filters()), "history_json": history_json, "turns_json": json.dumps(states, ensure_ascii=False),
                "error": error, **form_choices(service)}

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
        past = read_history(data.history)
        states = [past_state(service.engine.index, turn) for turn in past]
        answered = [state for state in states if not state.get("error")]
        context = [*answered[-1]["context"], answered[-1]["question"]] if answered else []
        history = [Turn(state["question"], state["answer"]) for state in answered]
        return await self._answer(service, states, data, data.example or data.question, history, context)
