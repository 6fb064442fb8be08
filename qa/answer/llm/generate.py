"""A generated answer, verified sentence by sentence as it streams; the extractive answer when nothing holds.

The flow (`events`): retrieve and read as for an extractive answer (the engine), send the numbered
passages to the chat model (qa/answer/llm/prompt.py), relay its text as it comes, and each time a sentence
is complete check it against the passages it cites (qa/answer/llm/verify.py). A kept sentence is shown
with its citations renumbered in order of appearance, each quoting the passage sentence that backs
it; an unsupported one is removed (or, with `show_unsupported`, marked "niet gevonden in de bron").
When no sentence holds — or the model server cannot be used before one did — the answer is the
extractive one of the same reading, with a notice saying why; if it declines under filters, the reason says
whether they are why, as `Engine.ask` does (`Engine.blame_filters`).

The engine is reached only through `run` (the server's worker thread, or a direct call), so this
module holds no lock and does no I/O but the model server's stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

import numpy as np

from qa.answer.answering import Answer, Citation, CitationError, Reading
from qa.answer.answering import answer as extractive_answer
from qa.answer.engine import Engine, Turn
from qa.answer.llm.client import LLMClient, LLMError
from qa.answer.llm.prompt import DEFAULT_BUDGET, PromptBudget, Task, build_messages, citation_grammar, shown_passages
from qa.answer.llm.verify import DEFAULT_VERIFY, NOT_FOUND, Verdict, VerifyPolicy, markers, split_sentences, strip_markers, verify_sentence
from qa.answer.reader import ReadPassage
from qa.answer.retrieval import Filters
from qa.index.lexical import tokenize

T = TypeVar("T")
Runner = Callable[[Callable[[Engine], T]], Awaitable[T]]
Mode = Literal["extractive", "generative"]

REPEATED = "herhaling van een eerdere zin"
MAX_REPEATS = 3  # repeated sentences in a row after which the model's stream is closed (SmolLM2 loops at temperature 0)
NOTICE_UNSUPPORTED = "Het taalmodel gaf geen zin die de brieven ondersteunen; dit is het letterlijke antwoord uit de brieven."
NOTICE_DECLINED = "Volgens het taalmodel beantwoorden de passages de vraag niet; dit is het letterlijke antwoord uit de brieven."
NOTICE_EMPTY = "Het taalmodel gaf geen antwoord; dit is het letterlijke antwoord uit de brieven."
NOTICE_UNREACHABLE = "Het taalmodel is nu niet te gebruiken; dit is het letterlijke antwoord uit de brieven."
NOTICE_BROKEN_OFF = "Het taalmodel stopte halverwege; alleen de gecontroleerde zinnen tot dan staan hier."


@dataclass(frozen=True)
class Options:
    task: Task = "answer"  # "concept": a concept-antwoord on a Kamervraag (50-250 words, formal)
    show_unsupported: bool = False  # keep unsupported sentences, marked "niet gevonden in de bron", instead of removing them
    hints: bool = True  # give the model the extractive reader's quotes as the sentences most likely to answer (prompt.py)
    verify: VerifyPolicy = DEFAULT_VERIFY
    budget: PromptBudget = DEFAULT_BUDGET


@dataclass(frozen=True)
class Generated:
    """The answer the user gets, and how it came about."""

    answer: Answer  # generated from the kept sentences, or the extractive fallback
    mode: Mode  # which of the two `answer` is
    sentences: tuple[Verdict, ...]  # every sentence the model wrote, checked
    kept: int
    total: int  # sentences that made a claim (not the model's "the passages do not answer", not a repeat)
    fallback: bool
    notice: str | None = None  # in Dutch, for the user: why this is the extractive answer, or that sentences were cut
    error: str | None = None  # the model server's failure, for logs and the API (names the server, never the key)
    model: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Sources:
    reading: Reading


@dataclass(frozen=True)
class Token:
    text: str  # a piece of the model's text as it arrived, not yet checked


@dataclass(frozen=True)
class Checked:
    verdict: Verdict
    index: int  # position among the generated sentences
    shown: str | None  # the sentence as it enters the answer (renumbered markers, or marked); None: removed
    citations: tuple[Citation, ...]  # the citations it adds


@dataclass(frozen=True)
class Finished:
    generated: Generated


Event = Sources | Token | Checked | Finished


class Composer:
    """Kept sentences into an answer: citation numbers by first appearance, one citation per backing quote."""

    def __init__(self, reading: Reading, show_unsupported: bool = False) -> None:
        self.reading = reading
        self.show_unsupported = show_unsupported
        self.parts: list[str] = []
        self.citations: list[Citation] = []
        self.numbers: dict[str, int] = {}
        self._quotes: dict[tuple[str, int, int], Citation] = {}

    def _citation(self, passage: int, start: int, end: int, score: float) -> Citation:
        hit = self.reading.passages[passage].hit
        if not (hit.passage.start <= start < end <= hit.passage.end):
            raise CitationError(f"quote {start}-{end} lies outside passage {hit.passage.id}")
        key = (hit.passage.id, start, end)
        if key in self._quotes:
            return self._quotes[key]
        number = self.numbers.setdefault(hit.passage.id, len(self.numbers) + 1)
        citation = Citation(
            n=number, passage_id=hit.passage.id, letter_id=hit.letter.id, title=hit.letter.title, date=hit.letter.date,
            sender=hit.letter.sender, section=hit.passage.section, page=hit.passage.page, url=hit.letter.url,
            quote=hit.letter.text[start:end], quote_start=start, quote_end=end, score=round(score, 4),
        )
        self._quotes[key] = citation
        return citation

    def add(self, verdict: Verdict) -> tuple[str | None, tuple[Citation, ...]]:
        """The sentence as shown and the citations it brings; (None, ()) when it is removed."""
        if not verdict.kept:
            if self.show_unsupported and not verdict.decline and not verdict.repeat and verdict.text:
                shown = f"{verdict.text} ({NOT_FOUND})"
                self.parts.append(shown)
                return shown, ()
            return None, ()
        cited = [self._citation(s.passage, s.start, s.end, s.coverage) for s in verdict.supports]
        new = tuple(c for c in cited if c not in self.citations)
        self.citations.extend(new)
        numbers = sorted({c.n for c in cited})
        shown = f"{verdict.text} {' '.join(f'[{n}]' for n in numbers)}"
        self.parts.append(shown)
        return shown, new

    def answer(self) -> Answer:
        reading = self.reading
        shown = {hit.passage.id for hit in reading.hits}
        hits = reading.hits + [p.hit for p in reading.passages if p.hit.passage.id in self.numbers and p.hit.passage.id not in shown]
        return Answer(reading.query, " ".join(self.parts), False, list(self.citations), hits)


def prompt_for(question: str, history: Sequence[Turn], reading: Reading, extractive: Answer, options: Options,
               max_prompt_chars: int) -> tuple[list[ReadPassage], list[dict[str, str]]]:
    """The passages the model is shown (within the budget) and its messages, with the extractive quotes as hints."""
    budget = replace(options.budget, max_total_chars=min(options.budget.max_total_chars, max_prompt_chars))
    passages = reading.passages[: shown_passages(reading.passages, budget)]
    shown_ids = [p.hit.passage.id for p in passages]
    hints = [(shown_ids.index(c.passage_id) + 1, c.quote) for c in extractive.citations if c.passage_id in shown_ids] if options.hints else []
    return passages, build_messages(question, passages, [(t.question, t.answer) for t in history], options.task, budget, hints)


def claim_inputs(engine: Engine, text: str) -> tuple[np.ndarray, dict[str, float]]:
    """What the verifier needs of a sentence from the engine: its query vector and its words' idf."""
    vector = engine.embedder.embed_query(text)[0]
    return np.asarray(vector, dtype=np.float32), {term: engine.index.lexical.idf(term) for term in set(tokenize(text))}


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


async def events(question: str, k: int, filters: Filters, history: Sequence[Turn], *, run: Runner, client: LLMClient,
                 options: Options = Options()) -> AsyncGenerator[Event, None]:
    """Sources first, then the model's text as it comes, each sentence's verdict as it completes, and the answer."""
    started = time.perf_counter()
    reading = await run(lambda engine: engine.read(question, k, filters, history, policy=engine.policy))
    timings = {"retrieval": _ms(started)}
    yield Sources(reading)
    # The extractive answer of the same reading: the hints of the prompt, and the fallback (milliseconds, no model run).
    extractive = await run(lambda engine: extractive_answer(reading, engine.policy))
    passages, messages = prompt_for(question, history, reading, extractive, options, client.settings.max_prompt_chars)
    composer = Composer(reading, options.show_unsupported)
    verdicts: list[Verdict] = []
    error: LLMError | None = None
    buffer = ""
    asked = time.perf_counter()

    said: set[str] = set()
    repeats = 0

    async def check(sentence: str) -> Checked:
        nonlocal repeats
        text = strip_markers(sentence).lower()
        if text in said:  # a small model loops: a sentence once is enough
            repeats += 1
            verdict = Verdict(sentence, strip_markers(sentence), markers(sentence), False, REPEATED, repeat=True)
        else:
            said.add(text)
            repeats = 0
            vector, weights = await run(lambda engine: claim_inputs(engine, sentence))
            verdict = verify_sentence(sentence, passages, weights, vector, options.verify, question)
        verdicts.append(verdict)
        shown, citations = composer.add(verdict)
        return Checked(verdict, len(verdicts) - 1, shown, citations)

    try:  # the model is asked for inside the stream, within its deadline
        max_tokens = client.settings.concept_max_tokens if options.task == "concept" else client.settings.max_tokens
        # aclosing: leaving the loop (a looping model, or the user's browser going away) closes the model's stream at
        # once, so the server stops generating, instead of whenever the generator is collected.
        async with aclosing(client.stream(messages, max_tokens, citation_grammar(len(passages), options.task))) as stream:
            async for piece in stream:
                if "first_token" not in timings:
                    timings["first_token"] = _ms(started)
                    timings["model_first_token"] = _ms(asked)
                yield Token(piece)
                buffer += piece
                complete, buffer = split_sentences(buffer, final=False)
                for sentence in complete:
                    yield await check(sentence)
                if repeats >= MAX_REPEATS:
                    break  # the model is looping; what it says next is more of the same
    except LLMError as failure:
        error = failure
    model = client.known_model
    if error is None:  # the last sentence needs no text after it; after a break-off the unfinished one is dropped
        for sentence in split_sentences(buffer, final=True)[0]:
            yield await check(sentence)
    timings["model"] = _ms(asked)

    claims = [v for v in verdicts if not v.decline and not v.repeat]
    kept = sum(v.kept for v in claims)
    if kept:
        notice = NOTICE_BROKEN_OFF if error else None
        result = Generated(composer.answer(), "generative", tuple(verdicts), kept, len(claims), False, notice,
                           str(error) if error else None, model, timings)
    else:
        if error:
            notice = NOTICE_UNREACHABLE
        elif claims:
            notice = NOTICE_UNSUPPORTED
        elif verdicts:
            notice = NOTICE_DECLINED
        else:
            notice = NOTICE_EMPTY
        # Only now, as the answer given: a decline under filters says whether they are why (the engine's one rule),
        # at the cost of a second retrieval only when the fallback declines.
        fallback = await run(lambda engine: engine.blame_filters(extractive, question, k, filters, history, policy=engine.policy))
        result = Generated(fallback, "extractive", tuple(verdicts), 0, len(claims), True, notice, str(error) if error else None, model, timings)
    timings["total"] = _ms(started)
    yield Finished(result)


async def generate(question: str, k: int, filters: Filters, history: Sequence[Turn], *, run: Runner, client: LLMClient,
                   options: Options = Options()) -> Generated:
    """The whole answer at once (the CLI, /api/ask, the benchmark)."""
    async for event in events(question, k, filters, history, run=run, client=client, options=options):
        if isinstance(event, Finished):
            return event.generated
    raise RuntimeError("the answer stream ended without an answer")  # events() always finishes


def direct(engine: Engine) -> Runner:
    """A runner that calls the engine in this thread (the CLI and the benchmark have no server lock)."""

    async def run(work: Callable[[Engine], T]) -> T:
        return work(engine)

    return run
