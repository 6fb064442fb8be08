"""The JSON API: ask (whole or streamed as Server-Sent Events), search, letters, feedback, health.

Request bodies are msgspec Structs whose `Meta` constraints Litestar enforces (400 with the
field and the rule) and documents in the OpenAPI schema at /api/docs.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, closing, contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio
import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from msgspec import Meta

from qa.answer import kamervragen
from qa.answer.engine import Engine, Turn
from qa.answer.llm import generate as llm_answers
from qa.answer.llm.client import LLMClient
from qa.answer.retrieval import Filters, Hit, matching_letters, sort_hits, word_matches
from qa.core import limits
from qa.core.errors import InvalidQuery
from qa.index import facets
from qa.schemas import (
    AnswerOut,
    Facets,
    GenerationOut,
    LetterMeta,
    LetterOut,
    PairOut,
    PassageOut,
    WatchOut,
    answer_out,
    citation_out,
    facets_out,
    generation_out,
    letter_meta,
    letter_out,
    pair_out,
    passage_out,
    watch_out,
)
from qa.server import security
from qa.server.reloader import Reloader, ReloadError
from qa.server.service import Service
from qa.server.settings import Settings
from qa.users import db as userdb
from qa.users import feedback, watches

log = logging.getLogger("qa.server")

_TYPES = ", ".join(limits.DOCUMENT_TYPES)
_DATE_SCHEMA = {"format": "date"}
_TYPE_SCHEMA = {"enum": list(limits.DOCUMENT_TYPES)}
RELOAD_WAIT_SECONDS = 30.0  # with --workers N: how long a reload waits for the other workers (they poll every second)


def _documented(description: str, checked: dict[str, object], examples: list[str] | None = None) -> Meta:
    """A field whose rule qa/core/limits.py checks (one message for API, pages and CLI); the schema still shows it."""
    return Meta(extra_json_schema={"description": description, "examples": examples or [], "extra": checked})


Question = Annotated[str, _documented(
    "The question, in Dutch.", {"minLength": 1, "maxLength": limits.MAX_QUESTION}, ["Wanneer moet de afbouw van Resolute Support afgerond zijn?"]
)]
ShortText = Annotated[str, Meta(max_length=limits.MAX_FILTER_TEXT)]
Day = Annotated[str, _documented("YYYY-MM-DD", _DATE_SCHEMA)]


class FiltersIn(msgspec.Struct, forbid_unknown_fields=True):
    """Only passages of letters that match all given filters."""

    date_from: Day | None = None
    date_to: Day | None = None
    dossier: ShortText | None = None
    sender: Annotated[str, Meta(max_length=limits.MAX_FILTER_TEXT, description="Part of the sender, e.g. 'Defensie'.")] | None = None
    type: Annotated[str, _documented(_TYPES, _TYPE_SCHEMA)] | None = None


class TurnIn(msgspec.Struct, forbid_unknown_fields=True):
    """An earlier turn of the conversation: a follow-up question borrows its words to retrieve."""

    question: Annotated[str, Meta(max_length=limits.MAX_QUESTION)]
    answer: Annotated[str, Meta(max_length=limits.MAX_ANSWER_IN_HISTORY)] = ""


def parse_filters(given: FiltersIn) -> Filters:
    try:
        return Filters.parse(given.date_from, given.date_to, given.dossier, given.sender, given.type)
    except InvalidQuery as error:
        raise InvalidQuery(error.code, f"filters.{error}", f"filters.{error.field}", error.value) from None


class AskIn(msgspec.Struct, forbid_unknown_fields=True):
    question: Question
    k: Annotated[int, Meta(ge=1, le=limits.MAX_K, description="Passages to retrieve and answer from.")] = limits.DEFAULT_K
    filters: FiltersIn = msgspec.field(default_factory=FiltersIn)
    history: Annotated[list[TurnIn], Meta(max_length=limits.MAX_HISTORY_TURNS, description="Earlier turns, oldest first.")] = []
    mode: Annotated[Literal["extractive", "generative"], Meta(
        description="extractive: verbatim quotes; generative: written by the configured chat model, every sentence checked. "
                    "Default: generative when the server has a chat model, else extractive.")] | None = None
    task: Annotated[Literal["answer", "concept"], Meta(
        description="generative only: answer (a short answer) or concept (a draft answer of 50-250 words to a Kamervraag).")] = "answer"
    show_unsupported: Annotated[bool, Meta(
        description="generative only: keep unsupported sentences, marked 'niet gevonden in de bron', instead of removing them.")] = False

    def __post_init__(self) -> None:
        self.question = limits.check_question(self.question)
        self.query_filters()  # checked here, not in FiltersIn: Litestar reports errors of nested __post_init__ as a 500

    def query_filters(self) -> Filters:
        return parse_filters(self.filters)

    def turns(self) -> list[Turn]:
        return [Turn(turn.question, turn.answer) for turn in self.history if turn.question.strip()]


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


class AskOut(AnswerOut, kw_only=True):
    query: str  # what was retrieved with: the question, or a follow-up with its context
    mode: Literal["extractive", "generative"]  # which kind `answer` is (always sent: omit_defaults would drop "extractive")
    notice: str | None = None  # in Dutch: why a generative answer fell back to the extractive one, or was cut short
    generation: GenerationOut | None = None  # generative requests: the model and every sentence's check


class SearchOut(msgspec.Struct):
    results: list[PassageOut]
    matches: int  # passages that hold at least one word of the query, within the filters
    facets: Facets  # those passages by type, ministry and year: what each filter would narrow them to


SortParameter = Annotated[limits.Sort, QueryParameter(description="relevance (default), newest or oldest letter first.")]


class LetterPage(msgspec.Struct):
    letters: list[LetterMeta]
    page: int
    per_page: int
    total: int
    pages: int
    facets: Facets  # over all `total` letters that match, not just this page


class KamervragenPage(msgspec.Struct):
    pairs: list[PairOut]
    page: int
    per_page: int
    total: int  # pairs that match (score at least min_score) and pass the filters
    pages: int


class Health(msgspec.Struct):
    status: Literal["ok"]
    ready: bool
    model: str
    letters: int
    passages: int
    built_at: str
    dimension: int
    date_range: list[str] | None
    types: dict[str, int]
    generation: str | None = None  # the index generation being served
    reload_error: str | None = None  # why the last reload failed (the index above is still served)
    feedback: int | None = 0  # feedback stored beside the index (null when its database cannot be read)
    llm: LLMHealth | None = None  # the chat model, when one is configured


class LLMHealth(msgspec.Struct):
    reachable: bool
    model: str | None
    detail: str | None = None


class ReloadOut(msgspec.Struct):
    reloaded: bool  # false: CURRENT still points to the generation being served
    generation: str | None
    letters: int
    passages: int
    seconds: float
    workers: int = 1  # with --workers N: how many serve this generation now (all of them, or the reload failed)


def provide_filters(
    date_from: Annotated[str | None, QueryParameter(description="Letters from this date on (YYYY-MM-DD).", schema_extra=_DATE_SCHEMA)] = None,
    date_to: Annotated[str | None, QueryParameter(description="Letters up to this date (YYYY-MM-DD).", schema_extra=_DATE_SCHEMA)] = None,
    dossier: Annotated[str | None, QueryParameter(max_length=60, description="Kamerstuk dossier, e.g. 27925.")] = None,
    sender: Annotated[str | None, QueryParameter(max_length=limits.MAX_FILTER_TEXT, description="Part of the sender, e.g. Defensie.")] = None,
    doc_type: Annotated[str | None, QueryParameter(name="type", description=_TYPES, schema_extra=_TYPE_SCHEMA)] = None,
) -> Filters:
    return Filters.parse(date_from, date_to, dossier, sender, doc_type)


def _sse(event: str, payload: Any) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=event, data=json.dumps(payload, ensure_ascii=False))


def answer_pieces(text: str, words: int = 4) -> list[str]:
    """The answer in small pieces that never split a citation marker like [1]."""
    tokens = re.findall(r"\S+\s*", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


FILTERS = {"filters": Provide(provide_filters, sync_to_thread=False)}


def _wants_llm(data: AskIn, llm: LLMClient | None) -> bool:
    if data.mode == "generative" and llm is None:
        raise ClientException("generative answers need a chat model: start qa serve with --llm-url URL (or set QA_LLM_URL)", status_code=400)
    return llm is not None and data.mode != "extractive"


def _options(data: AskIn) -> llm_answers.Options:
    return llm_answers.Options(task=data.task, show_unsupported=data.show_unsupported)


def _runner(service: Service) -> llm_answers.Runner:
    async def run(work: Any) -> Any:
        return (await service.run(work))[0]

    return run


def generated_out(generated: llm_answers.Generated, timings: dict[str, float]) -> AskOut:
    answer = generated.answer
    return AskOut(**msgspec.structs.asdict(answer_out(answer, {**generated.timings_ms, **timings})), query=answer.query,
                  mode=generated.mode, notice=generated.notice, generation=generation_out(generated))


class AskController(Controller):
    path = "/api"
    tags = ["answers"]
    dependencies = FILTERS

    @post("/ask", status_code=200, summary="Answer a question with cited quotes")
    async def ask(self, data: JSONBody[AskIn], service: NamedDependency[Service], llm: NamedDependency[LLMClient | None]) -> AskOut:
        """Every sentence of an answer is a verbatim quote of a letter, cited as [n]. When the letters do not
        answer the question, `abstained` is true and `passages` still holds the closest passages.
        In `generative` mode a chat model writes the answer and only sentences backed by the passage they cite are kept."""
        started = time.perf_counter()
        if _wants_llm(data, llm):
            assert llm is not None
            generated = await llm_answers.generate(data.question, data.k, data.query_filters(), data.turns(), run=_runner(service),
                                                   client=llm, options=_options(data))
            if generated.error:
                log.warning("chat model: %s", generated.error)
            return generated_out(generated, {"total": round((time.perf_counter() - started) * 1000, 2)})
        answer, timings = await service.run(lambda engine: engine.ask(data.question, data.k, data.query_filters(), data.turns()))
        timings["total"] = round((time.perf_counter() - started) * 1000, 2)
        return AskOut(**msgspec.structs.asdict(answer_out(answer, timings)), query=answer.query, mode="extractive")

    @post("/ask/stream", status_code=200, media_type="text/event-stream", summary="The same answer as Server-Sent Events")
    async def ask_stream(self, data: JSONBody[AskIn], service: NamedDependency[Service], llm: NamedDependency[LLMClient | None]) -> ServerSentEvent:
        """Events, each with JSON data: `start` ({question, mode}), `sources` ({abstained, citations, passages, query,
        confidence, confidence_label, decline_reason, close_passages}),
        `delta` ({text}: the next piece of the answer), and last `done` ({answer, abstained, timings_ms}) or
        `error` ({detail}). Generative: `token` ({text}: the model's text as it comes, not yet checked) and
        `sentence` ({index, kept, text, reason, citations}) as each sentence is checked, then `done` with the whole AskOut."""
        if _wants_llm(data, llm):
            assert llm is not None
            return ServerSentEvent(self._generated_events(data, service, llm))

        async def events() -> AsyncIterator[ServerSentEventMessage]:
            started = time.perf_counter()
            yield _sse("start", {"question": data.question})
            try:
                answer, timings = await service.run(
                    lambda engine: engine.ask(data.question, data.k, data.query_filters(), data.turns())
                )
            except Exception:
                log.exception("streamed answer failed")
                yield _sse("error", {"detail": "Internal error: the server could not answer this question."})
                return
            full = msgspec.to_builtins(answer_out(answer))
            sources = {key: value for key, value in full.items() if key not in ("answer", "timings_ms")}
            yield _sse("sources", {**sources, "abstained": answer.abstained, "query": answer.query})
            for piece in answer_pieces(answer.text):
                yield _sse("delta", {"text": piece})
            timings["total"] = round((time.perf_counter() - started) * 1000, 2)
            yield _sse("done", {"answer": answer.text, "abstained": answer.abstained, "timings_ms": timings})

        return ServerSentEvent(events())

    @staticmethod
    async def _generated_events(data: AskIn, service: Service, llm: LLMClient) -> AsyncIterator[ServerSentEventMessage]:
        started = time.perf_counter()
        yield _sse("start", {"question": data.question, "mode": "generative"})
        try:
            # aclosing: a browser that goes away (the stop button) closes the model's stream too, at once.
            stream = llm_answers.events(data.question, data.k, data.query_filters(), data.turns(), run=_runner(service), client=llm,
                                        options=_options(data))
            async with aclosing(stream):
                async for event in stream:
                    if isinstance(event, llm_answers.Sources):
                        hits = [passage_out(hit) for hit in event.reading.hits]
                        yield _sse("sources", {"abstained": False, "citations": [], "passages": msgspec.to_builtins(hits),
                                               "query": event.reading.query, "mode": "generative"})
                    elif isinstance(event, llm_answers.Token):
                        yield _sse("token", {"text": event.text})
                    elif isinstance(event, llm_answers.Checked):
                        yield _sse("sentence", {"index": event.index, "kept": event.verdict.kept, "text": event.shown,
                                                "reason": event.verdict.reason, "citations": [msgspec.to_builtins(citation_out(c)) for c in event.citations]})
                    elif isinstance(event, llm_answers.Finished):
                        if event.generated.error:
                            log.warning("chat model: %s", event.generated.error)
                        out = generated_out(event.generated, {"total": round((time.perf_counter() - started) * 1000, 2)})
                        yield _sse("done", msgspec.to_builtins(out))
        except Exception:
            log.exception("generated answer failed")
            yield _sse("error", {"detail": "Internal error: the server could not answer this question."})

    @get("/search", summary="The passages that best match a query, without an answer")
    async def search(
        self,
        service: NamedDependency[Service],
        filters: NamedDependency[Filters],
        q: Annotated[str, QueryParameter(description="The query.", schema_extra={"minLength": 1, "maxLength": limits.MAX_QUESTION})],
        k: Annotated[int, QueryParameter(ge=1, le=limits.MAX_K)] = limits.DEFAULT_K,
        mode: FromQuery[Literal["hybrid", "dense", "lexical"]] = "hybrid",
        sort: SortParameter = "relevance",
    ) -> SearchOut:
        """The best `k` passages, then ordered as `sort` asks. `facets` counts the `matches`, the passages that hold a
        word of the query, by type, ministry and year."""
        query = limits.check_question(q, "q")

        def run(engine: Engine) -> tuple[list[Hit], int, facets.Facets]:
            rows = word_matches(engine.index, query, filters)
            return engine.search(query, k=k, filters=filters, mode=mode), len(rows), facets.of_passages(engine.index, rows)

        (hits, matches, counted), _ = await service.run(run)
        return SearchOut([passage_out(hit) for hit in sort_hits(hits, sort)], matches, facets_out(counted))


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


FEEDBACK_UNAVAILABLE = "feedback cannot be stored: the server's data folder is not writable or its database is damaged (see the server log)"


@contextmanager
def user_data(data_dir: Path, unavailable: str, what: str, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection to the users' database (qa/users/db.py) for one request. Whatever SQLite or the folder refuses
    (read-only, damaged, locked past the busy timeout) is one log line and a 503 saying `unavailable`, never a 500;
    errors of the request itself (a 404) pass through. Call it off the event loop: it may wait for a lock."""
    try:
        with closing(userdb.connect(data_dir, readonly=readonly)) as connection:
            yield connection
    except (userdb.UserDataError, sqlite3.Error) as error:
        log.error("%s: %s", what, error)
        raise HTTPException(unavailable, status_code=503) from error



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


def stored_feedback(data_dir: Path) -> int | None:
    """How much feedback there is, without creating or migrating anything; None when it cannot be read."""
    if not userdb.exists(data_dir):
        return 0
    try:
        with closing(userdb.connect(data_dir, readonly=True)) as connection:
            return feedback.count(connection)["total"]
    except (userdb.UserDataError, sqlite3.Error) as error:
        log.warning("feedback count unavailable: %s", error)
        return None


class HealthController(Controller):
    path = "/api/health"
    tags = ["service"]

    @get("/", summary="Which index is loaded, whether the service is ready, and whether its chat model answers")
    async def health(self, service: NamedDependency[Service], reloader: NamedDependency[Reloader], settings: NamedDependency[Settings],
                     llm: NamedDependency[LLMClient | None]) -> Health:
        info = service.info
        checked = await llm.health() if llm else None
        return Health(
            feedback=await anyio.to_thread.run_sync(stored_feedback, settings.index_dir),  # SQLite: off the event loop
            generation=service.engine.index.generation, reload_error=reloader.last_error,
            status="ok", ready=True, model=str(info["model"]), letters=int(info["letters"]),  # type: ignore[call-overload]
            passages=int(info["passages"]), built_at=str(info["built_at"]), dimension=int(info["dimension"]),  # type: ignore[call-overload]
            date_range=info["date_range"], types=info["types"],  # type: ignore[arg-type]
            llm=LLMHealth(checked.reachable, checked.model, checked.detail) if checked else None,
        )


class WatchIn(msgspec.Struct, forbid_unknown_fields=True):
    """A question to follow: a hit is recorded when a newly indexed letter answers it this surely."""

    question: Question
    threshold: Annotated[float, Meta(ge=0, le=1, description="The reader's confidence a hit needs (default 0.6).")] | None = None
    filters: FiltersIn = msgspec.field(default_factory=FiltersIn)

    def __post_init__(self) -> None:
        self.question = limits.check_question(self.question)
        parse_filters(self.filters)


class WatchList(msgspec.Struct):
    watches: list[WatchOut]


WATCHES_UNAVAILABLE = "saved questions cannot be stored: the server's data folder is not writable or its database is damaged (see the server log)"
WATCHES_UNREADABLE = "saved questions cannot be read: the server's database cannot be opened or is damaged (see the server log)"
Token = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class WatchController(Controller):
    path = "/api/watches"
    tags = ["watches"]

    @post("/", status_code=201, summary="Follow a question: alert when a new letter answers it", sync_to_thread=True)
    def add(self, data: JSONBody[WatchIn], service: NamedDependency[Service], settings: NamedDependency[Settings]) -> WatchOut:
        """Only letters indexed from now on can fire it. Keep `token`: the feed (`feed_url`) and the page (`page_url`)
        are at URLs made of it, and it deletes the watch. 503 when the data folder is read-only."""
        index = service.engine.index
        with user_data(settings.index_dir, WATCHES_UNAVAILABLE, "saved question not stored") as connection:
            return watch_out(watches.add(connection, index, data.question, data.threshold, parse_filters(data.filters)))

    @get("/", summary="Every saved question (needs the admin key)", sync_to_thread=True)
    def all(self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]) -> WatchList:
        """Listing every saved question hands out every token: `Authorization: Bearer $QA_ADMIN_KEY` (401 without
        it, 403 when the server has no key)."""
        security.admin_guard(settings)(request, None)  # type: ignore[arg-type]
        if not userdb.exists(settings.index_dir):
            return WatchList([])
        with user_data(settings.index_dir, WATCHES_UNREADABLE, "saved questions unreadable", readonly=True) as connection:
            return WatchList([watch_out(watch) for watch in watches.watches(connection)])

    @get("/{token:str}", summary="A saved question and its hits, newest first", sync_to_thread=True)
    def one(self, token: FromPath[Token], settings: NamedDependency[Settings]) -> WatchOut:
        """Read without writing: a read-only data folder serves it too."""
        return watch_out(*_watch_and_hits(settings, token))

    @delete("/{token:str}", status_code=204, summary="Stop following a question (its hits go too)", sync_to_thread=True)
    def remove(self, token: FromPath[Token], settings: NamedDependency[Settings]) -> None:
        _watch_and_hits(settings, token)
        with user_data(settings.index_dir, WATCHES_UNAVAILABLE, "saved question not removed") as connection:
            watches.remove(connection, token)


def _watch_and_hits(settings: Settings, token: str) -> tuple[watches.Watch, list[watches.WatchHit]]:
    """The watch of a token, or a 404 that does not say whether the folder or the token is wrong."""
    try:
        return watches.open_watch(settings.index_dir, token)
    except watches.WatchNotFound:
        raise NotFoundException("no saved question with this token") from None
    except userdb.UserDataError as error:
        log.error("saved questions unreadable: %s", error)
        raise HTTPException(WATCHES_UNREADABLE, status_code=503) from error


class AdminController(Controller):
    path = "/api/admin"
    tags = ["service"]

    @post("/reload", status_code=200, summary="Load the index again after `qa index build/add` (needs the admin key)")
    async def reload(self, reloader: NamedDependency[Reloader], settings: NamedDependency[Settings]) -> ReloadOut:
        """Send the key of $QA_ADMIN_KEY as `Authorization: Bearer KEY`. 403 when the server has no key; 409 when
        the index on disk cannot be loaded (the service keeps answering from the index it has).
        The key is checked by the guard `qa.server.security.admin_guard`, which the app puts on this controller."""
        try:
            reloaded, seconds = await reloader.reload()
        except ReloadError as error:
            raise ClientException(f"reload failed, still serving the previous index: {error}", status_code=409) from error
        index = reloader.service.engine.index
        workers = 1
        if settings.workers > 1:
            # This request reached one worker; the others watch CURRENT every WORKER_WATCH_SECONDS. Answer when
            # all serve the new generation, so "reloaded" is true for every worker (issue 12), or say it is not.
            workers = await reloader.workers_serving(index.generation, settings.workers, RELOAD_WAIT_SECONDS)
            if workers < settings.workers:
                raise ClientException(
                    f"reload incomplete: {workers} of {settings.workers} workers serve {index.generation} after "
                    f"{RELOAD_WAIT_SECONDS:.0f} s; see the server log", status_code=409)
        return ReloadOut(reloaded, index.generation, len(index.letters), len(index.passages), round(seconds, 3), workers)


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


CONTROLLERS = [AskController, LetterController, FeedbackController, KamervragenController, WatchController, HealthController]  # AdminController: behind the admin guard
