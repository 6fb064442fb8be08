"""Feedback: a thumbs up or down and a comment on an answer, stored beside the index."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from msgspec import Meta

from qa.core import limits
from qa.server.api.fields import Question
from qa.server.api.userdata import user_data
from qa.server.service import Service
from qa.server.settings import Settings
from qa.users import feedback


class CitedIn(msgspec.Struct, forbid_unknown_fields=True):
    """A citation of the rated answer, as the answer gave it (`n`, `letter_id`, `passage_id`, `quote`)."""

    n: Annotated[int, Meta(ge=1)]
    letter_id: Annotated[str, Meta(min_length=1, max_length=limits.MAX_LETTER_ID)]
    passage_id: Annotated[str, Meta(min_length=1, max_length=limits.MAX_LETTER_ID + 20)]
    quote: Annotated[str, Meta(max_length=limits.MAX_ANSWER_IN_HISTORY)] = ""


class FeedbackIn(msgspec.Struct, forbid_unknown_fields=True):
    """Thumbs up ("up", Nuttig) or down ("down", Niet nuttig) on an answer, with what was asked and answered; the server adds the time and generation."""

    rating: Annotated[limits.Rating, Meta(description="up (Nuttig) or down (Niet nuttig).")]
    question: Question
    answer: Annotated[str, Meta(max_length=limits.MAX_ANSWER_IN_HISTORY, description="The answer as shown, with its [n] markers.")]
    comment: Annotated[str, Meta(max_length=limits.MAX_COMMENT, description="What was wrong or right, optional.")] | None = None
    abstained: bool = False
    citations: Annotated[list[CitedIn], Meta(max_length=feedback.MAX_CITATIONS)] = []

    def __post_init__(self) -> None:
        self.question = limits.check_question(self.question)

    def record(self, generation: str | None) -> feedback.Feedback:
        cited = [feedback.Cited(c.n, c.letter_id, c.passage_id, c.quote) for c in self.citations]
        return feedback.new(self.rating, self.question, self.answer, self.comment, self.abstained, cited, generation)


class FeedbackOut(msgspec.Struct):
    id: int
    created_at: str
    generation: str | None


FEEDBACK_UNAVAILABLE = "feedback cannot be stored: the server's data folder is not writable or its database is damaged (see the server log)"


class FeedbackController(Controller):
    path = "/api/feedback"
    tags = ["feedback"]

    @post("/", status_code=201, sync_to_thread=True, summary="Store a thumbs up or down and a comment on an answer")
    def give(self, data: JSONBody[FeedbackIn], service: NamedDependency[Service], settings: NamedDependency[Settings]) -> FeedbackOut:
        """Kept in `qa.sqlite3` in the index folder with the time and the index generation being served;
        `qa feedback list|export` reads it. 503 when the folder is read-only (nothing is stored, nothing breaks)."""
        record = data.record(service.engine.index.generation)
        with user_data(settings.index_dir, FEEDBACK_UNAVAILABLE, "feedback not stored") as connection:
            stored = feedback.save(connection, record)
        return FeedbackOut(int(stored.id or 0), stored.created_at, stored.generation)
