"""The input rules every shell shares (CLI, JSON API, HTML pages): what a question and its filters may be,
the limits, the document types, the orders and ratings, and pagination.

Each rule has its one definition here; a broken rule raises `InvalidQuery`, which the CLI prints,
the API answers with a 400 and the pages show in Dutch (how the shells show things: qa/core/display.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Generic, Literal, TypeVar, get_args

from qa.core.errors import InvalidQuery

T = TypeVar("T")

MAX_QUESTION = 2000  # characters; a question, a search query, an earlier turn's question
MAX_ANSWER_IN_HISTORY = 10_000  # characters of an earlier answer sent back as context
MAX_K = 50  # passages to retrieve for one question or search
DEFAULT_K = 5
# Earlier turns sent with a question. A follow-up only ever leans on the chain of turns before it
# (qa/answer/engine.py `retrieval_query`), so ten is plenty; the page and chat.js keep the last ten.
MAX_HISTORY_TURNS = 10
PER_PAGE = 20  # letters on one page of the overview
MAX_PER_PAGE = 100
MAX_FILTER_TEXT = 200  # characters of a sender or dossier filter, or a letters search
MAX_COMMENT = 2_000  # characters of a comment on an answer (qa/users/feedback.py)
Rating = Literal["up", "down"]  # Nuttig / Niet nuttig on an answer
RATINGS: tuple[Rating, ...] = get_args(Rating)
Sort = Literal["relevance", "newest", "oldest"]  # the order of search results and of the letters overview
SORTS: tuple[Sort, ...] = get_args(Sort)
MAX_LETTER_ID = 1_000  # characters of a letter id read from a URL (a passage id adds '#n'); real ids are under 40

DocumentType = Literal["brief_regering", "antwoord_kamervragen", "mededeling_kamervragen", "motie"]
DOCUMENT_TYPES: tuple[DocumentType, ...] = get_args(DocumentType)


def check_question(text: str, field: str = "question") -> str:
    """The question without surrounding blanks; empty or longer than MAX_QUESTION is an error."""
    text = text.strip()
    if not text:
        raise InvalidQuery("question_empty", f"{field} is empty", field)
    if len(text) > MAX_QUESTION:
        raise InvalidQuery("question_too_long", f"{field} is longer than {MAX_QUESTION:,} characters", field, len(text))
    return text


def check_length(text: str, limit: int, field: str) -> str:
    if len(text) > limit:
        raise InvalidQuery("text_too_long", f"{field} is longer than {limit:,} characters", field, len(text))
    return text


def parse_rating(value: str) -> Rating:
    for known in RATINGS:
        if value == known:
            return known
    raise InvalidQuery("unknown_value", f"rating: {value!r} is not one of {', '.join(RATINGS)}", "rating", value)


def parse_sort(value: str | None) -> Sort:
    """Blank is relevance (newest first when there is no query to be relevant to)."""
    text = blank_to_none(value) or "relevance"
    for known in SORTS:
        if text == known:
            return known
    raise InvalidQuery("unknown_value", f"sort: {text!r} is not one of {', '.join(SORTS)}", "sort", text)


def check_turns(count: int) -> None:
    if count > MAX_HISTORY_TURNS:
        raise InvalidQuery("too_many_turns", f"history has {count} turns, at most {MAX_HISTORY_TURNS} are allowed", "history", count)


def blank_to_none(value: str | None) -> str | None:
    """HTML forms send empty fields; they mean no filter."""
    return (value or "").strip() or None


def parse_day(value: str | date | None, field: str) -> str | None:
    """An ISO date (YYYY-MM-DD), or None for blank."""
    if isinstance(value, date):
        return value.isoformat()
    text = blank_to_none(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise InvalidQuery("not_a_date", f"{field}: {text!r} is not a date like 2021-05-12", field, text) from None


def check_date_range(date_from: str | None, date_to: str | None) -> None:
    if date_from and date_to and date_from > date_to:
        raise InvalidQuery("dates_reversed", "date_from is after date_to", "date_from", date_from)


def parse_type(value: str | None) -> DocumentType | None:
    text = blank_to_none(value)
    if text is None:
        return None
    for known in DOCUMENT_TYPES:
        if text == known:
            return known
    raise InvalidQuery("unknown_type", f"type: {text!r} is not one of {', '.join(DOCUMENT_TYPES)}", "type", text)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def paginate(items: Sequence[T], page: int, per_page: int = PER_PAGE) -> Page[T]:
    """Page `page` (from 1) of `items`; a page past the end is empty."""
    return Page(list(items[(page - 1) * per_page : page * per_page]), page, per_page, len(items))
