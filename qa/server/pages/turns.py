"""A chat turn: its state (the shape chat.js keeps in data-turns) and its view, the answer text with [n] links and source cards."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from qa.server.pages.filters import FILTER_FIELDS, filter_chips

_MARKER = re.compile(r"\[(\d+)\]")


def share_href(question: str, filters: dict[str, str], context: list[str]) -> str:
    """The chat page that asks this question again: its filters, and the earlier questions a follow-up leans on (h)."""
    params = [("q", question), *((name, filters[name]) for name in FILTER_FIELDS if filters.get(name)), *(("h", c) for c in context)]
    return "/?" + urlencode(params)


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
