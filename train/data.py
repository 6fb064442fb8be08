"""The training data recipe shared by train/train_embedder.py and train/train_reader.py, from real text only.

- The Kamervragen pairs (train/kamervragen.py), split once by the SHA-1 of the stripped question:
  first hex digit 0-7 *fit* (trained on), 8-b *calibration* (dev: thresholds and early choices),
  c-f *test* (reported only, never trained or tuned on).
- The letters' own "Vraag n / Antwoord n" pairs (qa/answer/kamervragen.py) of the shared corpus, except in the
  letters that a test-part question of eval/questions.jsonl is about: the Kamer's question and the
  government's answer, and the sibling answers of the same letter as hard negatives.
- eval/questions.jsonl is never trained on; it is split by the same kind of hash into a dev part (tuned
  on) and a test part (reported): `qa.answer.evaluation.question_part`.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kamervragen import Pair, read_pairs

from qa.answer.evaluation import question_part
from qa.answer.kamervragen import letter_pairs
from qa.ingest.letter import Letter

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "eval" / "questions.jsonl"
LONG_ANSWER = 150  # characters: a "Ja." is shared by many questions and cannot be found by what it says
SEED = 20261207


def digit(text: str) -> str:
    return hashlib.sha1(text.strip().encode("utf-8")).hexdigest()[0]


def part(question: str) -> str:
    """fit / calibration / test, by the question's SHA-1 (the split every script of the project uses)."""
    first = digit(question)
    return "test" if first in "cdef" else "calibration" if first in "89ab" else "fit"


def kamervragen(name: str, long_only: bool = False) -> list[Pair]:
    pairs = [p for p in read_pairs() if part(p.question) == name]
    return [p for p in pairs if len(p.answer) >= LONG_ANSWER] if long_only else pairs


def test_letters(path: Path = QUESTIONS) -> set[str]:
    """Letters that a test-part question of the question set is about: their Vraag/Antwoord pairs are not trained on."""
    letters = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("doc_id") and question_part(record["question"]) == "test":
                letters.add(record["doc_id"])
    return letters


@dataclass(frozen=True)
class LetterPair:
    """A Vraag of a letter, its Antwoord, and the letter's other Antwoorden (same topic, another question)."""

    letter_id: str
    question: str
    answer: str
    siblings: tuple[str, ...]


def letter_training_pairs(letters: list[Letter], exclude: set[str]) -> Iterator[LetterPair]:
    for letter in letters:
        if letter.id in exclude:
            continue
        pairs = letter_pairs(letter)
        answers = {(p.answer_start, p.answer_end): p.answer(letter) for p in pairs}
        for pair in pairs:
            if len(pair.answer(letter)) < LONG_ANSWER // 3:
                continue
            siblings = tuple(text for span, text in answers.items() if span != (pair.answer_start, pair.answer_end))
            yield LetterPair(letter.id, " ".join(pair.question(letter).split()), pair.answer(letter), siblings)


def rng() -> random.Random:
    return random.Random(SEED)
