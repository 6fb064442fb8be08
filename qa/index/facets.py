"""Facet counts: how many results of each document type, ministry and year, for the search view, the
letters overview and the JSON API. The one place that says what a letter's ministry and year are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from qa.index.protocol import Store as Index
from qa.ingest.letter import Letter
from qa.ingest.ministries import first_signer, ministry_label


def ministry(sender: str | None) -> str | None:
    """'Minister van Defensie' -> 'Defensie'; 'Minister De Jonge (Binnenlandse Zaken en Koninkrijksrelaties)' ->
    'Binnenlandse Zaken en Koninkrijksrelaties (BZK)': the register's label of the first signer's ministry
    (qa/ingest/ministries.py; linear on any sender, issue 12). A letter's own is `letter_ministry` (its type, title and year help)."""
    return ministry_label(first_signer(sender))


def letter_ministry(letter: Letter) -> str | None:
    """The facet value of a letter: the label of its sender's ministry in the register."""
    return ministry_label(letter.signer)


def year(letter: Letter) -> str | None:
    return letter.date[:4] if letter.date and letter.date[:4].isdigit() else None


@dataclass(frozen=True)
class Facets:
    """(value, count) pairs: types and ministries most frequent first, years newest first. Letters without a
    known type, ministry or date are simply not counted under that facet."""

    type: list[tuple[str, int]]
    ministry: list[tuple[str, int]]
    year: list[tuple[str, int]]
    total: int  # how many were counted (letters, or passages when one letter can count more than once)


def count(letters: Iterable[Letter]) -> Facets:
    """Count the letters given, once per appearance: pass each matching letter for letter counts, each
    passage's letter for passage counts."""
    types: Counter[str] = Counter()
    ministries: Counter[str] = Counter()
    years: Counter[str] = Counter()
    total = 0
    for letter in letters:
        total += 1
        if letter.type:
            types[letter.type] += 1
        if name := letter_ministry(letter):
            ministries[name] += 1
        if when := year(letter):
            years[when] += 1

    def by_count(counter: Counter[str]) -> list[tuple[str, int]]:
        return sorted(counter.items(), key=lambda item: (-item[1], item[0]))

    return Facets(by_count(types), by_count(ministries), sorted(years.items(), reverse=True), total)


def year_range(value: str) -> tuple[str, str]:
    """A year facet as the date filters it stands for: '2021' -> ('2021-01-01', '2021-12-31')."""
    return f"{value}-01-01", f"{value}-12-31"


def of_passages(index: Index, rows: Iterable[int]) -> Facets:
    """Counts of passages (by their letter's type, ministry and year), e.g. of `retrieval.word_matches`."""
    return count(index.letters[index.passages[row].letter_id] for row in rows)
