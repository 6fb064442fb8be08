"""The conversation the no-JS chat form carries in a hidden field: earlier turns by reference, rebuilt from the index."""

from __future__ import annotations

from typing import Any

import msgspec

from qa.answer.answering import Citation
from qa.core import limits
from qa.schemas import citation_out
from qa.server.pages.filters import FILTER_FIELDS
from qa.server.pages.turns import turn_state


class PastTurn(msgspec.Struct):
    """An earlier turn as the no-JS form carries it: the passages it cited by reference (n, passage id, quote
    offsets), so the page rebuilds its source cards from the index instead of trusting text from the client."""

    question: str
    answer: str = ""
    abstained: bool = False
    filters: dict[str, str] = {}
    context: list[str] = []  # the earlier questions it leaned on, for its share link
    cites: list[tuple[int, str, int, int]] = []


def past_state(index: Any, turn: PastTurn) -> dict[str, Any]:
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


def past_json(state: dict[str, Any]) -> dict[str, Any]:
    """What the no-JS form sends back of a turn: its text, filters and citation references."""
    cites = [(c["n"], c["passage_id"], c["quote_start"], c["quote_end"]) for c in state["citations"]]
    return {"question": state["question"], "answer": state["answer"], "abstained": state["abstained"], "filters": state["filters"],
            "context": state["context"], "cites": cites}


def read_history(raw: str) -> list[PastTurn]:
    """The conversation from the hidden field; something unreadable starts afresh rather than failing the question."""
    try:
        turns = msgspec.json.decode(raw or "[]", type=list[PastTurn])
    except msgspec.DecodeError:  # ValidationError included
        return []
    return [turn for turn in turns if turn.question.strip()][-limits.MAX_HISTORY_TURNS :]
