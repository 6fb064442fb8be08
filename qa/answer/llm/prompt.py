"""The messages a chat model gets: a Dutch system prompt, numbered passages with their letter, date,
sender and section, the conversation so far, and the question (or a Kamervraag to draft an answer to).

Pure: passages and turns in, OpenAI-style messages out. The passage numbers are the reader's passage
order, so `[n]` in the model's answer points at `passages[n - 1]` for the verifier.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from qa.answer.reader import ReadPassage
from qa.core.display import dutch_date

Task = Literal["answer", "concept"]

NO_ANSWER = "De passages beantwoorden deze vraag niet."

SYSTEM_ANSWER = (
    "Je beantwoordt vragen over brieven van de regering aan de Tweede Kamer. Gebruik uitsluitend de genummerde "
    "passages die je krijgt, nooit eigen kennis. Schrijf in het Nederlands, zakelijk en kort: hoogstens vijf zinnen. "
    "Zet direct na elke zin het nummer van de passage waarop die zin steunt, tussen vierkante haken, bijvoorbeeld [2]. "
    "Noem alleen getallen, data, bedragen en namen die letterlijk in die passage staan. "
    "Staat het antwoord niet in de passages, schrijf dan alleen: " + NO_ANSWER
)
SYSTEM_CONCEPT = (
    "Je schrijft een concept-antwoord op een Kamervraag, namens de bewindspersoon, in de formele toon van eerdere "
    "antwoorden van de regering aan de Tweede Kamer (\"Het kabinet ...\", \"Ik ...\"). Gebruik uitsluitend de genummerde "
    "passages die je krijgt, nooit eigen kennis. Schrijf 50 tot 250 woorden in het Nederlands. Zet direct na elke zin "
    "het nummer van de passage waarop die zin steunt, tussen vierkante haken, bijvoorbeeld [2]; dat worden de voetnoten. "
    "Noem alleen getallen, data, bedragen en namen die letterlijk in die passage staan. "
    "Staat het antwoord niet in de passages, schrijf dan alleen: " + NO_ANSWER
)
_MARKER = re.compile(r"\s*\[\d{1,3}\]")


@dataclass(frozen=True)
class PromptBudget:
    """How much of the passages goes into a prompt. Ollama and llama.cpp's server default to a 2,048- to
    4,096-token context. SmolLM2's tokenizer takes 2.4 characters of a Dutch letter per token (1,240 characters:
    522 tokens, measured); 6,000 characters of passages, the prompts and a short history fit 4,096 tokens.
    A smaller context: `QA_LLM_PROMPT_CHARS` (e.g. 2,400 for 2,048 tokens)."""

    max_passage_chars: int = 1_600  # per passage; the index's passages are ~930 characters on average
    max_total_chars: int = 6_000
    history_turns: int = 3  # earlier turns shown to the model (the retrieval already uses the whole history)
    history_answer_chars: int = 600


DEFAULT_BUDGET = PromptBudget()


def passage_block(number: int, passage: ReadPassage, chars: int) -> str:
    """'[n] Brief: title (id) · 12 mei 2021 · sender · § section' and the passage text, cut at `chars`."""
    letter, hit_passage = passage.hit.letter, passage.hit.passage
    meta = " · ".join(filter(None, [
        f"Brief: {letter.title or letter.id} ({letter.id})",
        dutch_date(letter.date) if letter.date else None,
        letter.sender,
        f"§ {hit_passage.section}" if hit_passage.section else None,
    ]))
    text = " ".join(hit_passage.text.split())
    if len(text) > chars:
        text = text[:chars].rsplit(" ", 1)[0] + " …"
    return f"[{number}] {meta}\n{text}"


def _blocks(passages: Sequence[ReadPassage], budget: PromptBudget) -> list[str]:
    """The numbered passages, best first, within the budget (a passage that does not fit is left out, not cut to nothing)."""
    blocks: list[str] = []
    used = 0
    chars = min(budget.max_passage_chars, budget.max_total_chars // 3)  # a small budget still shows three passages
    for number, passage in enumerate(passages, start=1):
        block = passage_block(number, passage, chars)
        if blocks and used + len(block) > budget.max_total_chars:
            break
        blocks.append(block)
        used += len(block)
    return blocks


def passages_text(passages: Sequence[ReadPassage], budget: PromptBudget = DEFAULT_BUDGET) -> str:
    return "\n\n".join(_blocks(passages, budget))


def shown_passages(passages: Sequence[ReadPassage], budget: PromptBudget = DEFAULT_BUDGET) -> int:
    """How many of the passages the prompt holds (the verifier accepts citations of these only)."""
    return len(_blocks(passages, budget))


def hint_text(hints: Sequence[tuple[int, str]]) -> str:
    """The reader's best sentences, each with its passage number: what the answer most likely rests on."""
    if not hints:
        return ""
    quoted = "\n".join(f"{' '.join(sentence.split())} [{number}]" for number, sentence in hints)
    return f"\n\nDeze zinnen uit de passages beantwoorden de vraag waarschijnlijk:\n{quoted}"


def build_messages(question: str, passages: Sequence[ReadPassage], history: Sequence[tuple[str, str]] = (), task: Task = "answer",
                   budget: PromptBudget = DEFAULT_BUDGET, hints: Sequence[tuple[int, str]] = ()) -> list[dict[str, str]]:
    """System prompt, the earlier turns (their citation markers removed: those numbers meant other passages), then
    the passages, the question and the reader's best sentences (`hints`, each with its [n]) in one user message,
    ending on the format asked for.

    The hints are the extractive reader's quotes: a model that builds on them writes what the verifier can back,
    and a strong model is still free to use every passage. (A worked example turn was tried and dropped: SmolLM2-135M
    copied the example's own sentence into 7 of 8 answers.)"""
    messages = [{"role": "system", "content": SYSTEM_CONCEPT if task == "concept" else SYSTEM_ANSWER}]
    for asked, answered in list(history)[-budget.history_turns:] if budget.history_turns else []:
        messages.append({"role": "user", "content": asked})
        text = " ".join(_MARKER.sub("", answered).split())[: budget.history_answer_chars]
        messages.append({"role": "assistant", "content": text or "(geen antwoord)"})
    ask = f"Kamervraag: {question}\n\nSchrijf het concept-antwoord." if task == "concept" else f"Vraag: {question}"
    tail = "\n\nAntwoord, met het nummer van de passage achter elke zin, zoals [1]:"
    messages.append({"role": "user", "content": f"Passages:\n\n{passages_text(passages, budget)}\n\n{ask}{hint_text(hints)}{tail}"})
    return messages


def citation_grammar(passages: int, task: Task = "answer") -> str:
    """A GBNF grammar (llama.cpp's server: the request's `grammar`) that lets the model write only what the verifier
    reads: sentences that each end in a full stop and `[n]` for a passage it was shown, or the one sentence that says
    the passages do not answer. A prompt echoed back ("Vraag: ..."), text without a source and a marker for a passage
    that was not shown cannot be sampled. Within a sentence "." is allowed before a non-space ("1.500", "o.a.")."""
    numbers = " | ".join(f'"{number}"' for number in range(1, max(passages, 1) + 1))
    more = 11 if task == "concept" else 4  # sentences after the first: five for an answer, twelve for a concept
    return "\n".join([
        f'root ::= "{NO_ANSWER}" | zin (" " zin){{0,{more}}}',
        'zin ::= [A-Z0-9\u00C0-\u00DD"(\u2018\u201C] teken{8,} [.!?] " [" nummer "]"',
        'teken ::= [^\\[\\].!?\\n] | [.!?] [^ \\n\\[\\]]',
        f"nummer ::= {numbers}",
    ])
