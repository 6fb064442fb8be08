"""Answers: ask (whole, or streamed as Server-Sent Events) and search, without an answer."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from msgspec import Meta

from qa.answer.engine import Engine, Turn
from qa.answer.llm import generate as llm_answers
from qa.answer.llm.client import LLMClient
from qa.answer.retrieval import Filters, Hit, sort_hits, word_matches
from qa.core import limits
from qa.index import facets
from qa.schemas import AnswerOut, Facets, GenerationOut, PassageOut, answer_out, citation_out, facets_out, generation_out, passage_out
from qa.server.api.fields import FILTERS, FiltersIn, Question, SortParameter, parse_filters
from qa.server.service import Service

log = logging.getLogger("qa.server")


class TurnIn(msgspec.Struct, forbid_unknown_fields=True):
    """An earlier turn of the conversation: a follow-up question borrows its words to retrieve."""

    question: Annotated[str, Meta(max_length=limits.MAX_QUESTION)]
    answer: Annotated[str, Meta(max_length=limits.MAX_ANSWER_IN_HISTORY)] = ""


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


class AskOut(AnswerOut, kw_only=True):
    query: str  # what was retrieved with: the question, or a follow-up with its context
    mode: Literal["extractive", "generative"]  # which kind `answer` is (always sent: omit_defaults would drop "extractive")
    notice: str | None = None  # in Dutch: why a generative answer fell back to the extractive one, or was cut short
    generation: GenerationOut | None = None  # generative requests: the model and every sentence's check


class SearchOut(msgspec.Struct):
    results: list[PassageOut]
    matches: int  # passages that hold at least one word of the query, within the filters
    facets: Facets  # those passages by type, ministry and year: what each filter would narrow them to


def _sse(event: str, payload: Any) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=event, data=json.dumps(payload, ensure_ascii=False))


def answer_pieces(text: str, words: int = 4) -> list[str]:
    """The answer in small pieces that never split a citation marker like [1]."""
    tokens = re.findall(r"\S+\s*", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


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
