"""Facet counts: how many results of each document type, ministry and year, for the search view, the
letters overview and the JSON API. The one place that says what a letter's ministry and year are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from qa.index import Index
from qa.letters import Letter

_OFFICE = re.compile(r"(?i:minister|staatssecretaris)\s+(?:van|voor)\s+(?:de\s+)?(.+?)(?=\s*\(|,|\s+mede\b|\s+en\s+van\b|$)")
_PARENS = re.compile(r"\(([^)]+)\)")
MAX_SENDER = 300  # characters of a sender read for its ministry; real ones are under 150


def ministry(sender: str | None) -> str | None:
    """'Minister van Defensie' -> 'Defensie'; 'Minister De Jonge (Binnenlandse Zaken ...)' -> 'Binnenlandse Zaken ...'.

    Whitespace is collapsed and the sender cut to MAX_SENDER first: `_OFFICE`'s lazy group retries its
    lookaheads over every run of spaces, which made "Minister van x" + 30,000 spaces + "y" take 8.8 s on
    the event loop for every page that lists senders (issue 12). With runs of one space it is linear."""
    if not sender:
        return None
    sender = " ".join(sender[: MAX_SENDER * 4].split())[:MAX_SENDER]
    if office := _OFFICE.search(sender):
        return office.group(1).strip()
    if parens := _PARENS.search(sender):
        return parens.group(1).split(" – ")[0].strip()
    return None


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
        if name := ministry(letter.sender):
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
