"""Which letters a question, search or listing is about: dates, dossier, sender, type.

Its own small module (rules only, no numpy or FAISS) so the CLI can check filters before deciding
whether to answer locally or ask a running server (`qa ask --url`), without loading the index code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from qa.core import limits
from qa.ingest.ministries import sender_matches

if TYPE_CHECKING:
    from qa.ingest.letter import Letter


@dataclass(frozen=True)
class Filters:
    date_from: str | None = None  # ISO dates, inclusive
    date_to: str | None = None
    dossier: str | None = None
    sender: str | None = None  # the sender's ministry or person, e.g. "defensie", "IenW" (qa.ingest.ministries.sender_matches)
    type: str | None = None

    @classmethod
    def parse(
        cls,
        date_from: str | date | None = None,
        date_to: str | date | None = None,
        dossier: str | None = None,
        sender: str | None = None,
        type: str | None = None,
    ) -> Filters:
        """Filters from what a user typed (CLI options, query parameters, form fields, a JSON body); blank means
        no filter. Raises InvalidQuery for a date that is not YYYY-MM-DD, dates in the wrong order or an unknown type."""
        start, end = limits.parse_day(date_from, "date_from"), limits.parse_day(date_to, "date_to")
        limits.check_date_range(start, end)
        return cls(start, end, limits.blank_to_none(dossier), limits.blank_to_none(sender), limits.parse_type(type))

    def is_empty(self) -> bool:
        return not any(self.__dict__.values())

    def accepts(self, letter: Letter) -> bool:
        if self.date_from and (not letter.date or letter.date < self.date_from):
            return False
        if self.date_to and (not letter.date or letter.date > self.date_to):
            return False
        if self.dossier and dossier_key(letter.dossier) != dossier_key(self.dossier):
            return False
        if self.sender and not sender_matches(self.sender, letter.signer, letter.sender):
            return False
        return not (self.type and letter.type != self.type)


def dossier_key(dossier: str | None) -> str:
    """A dossier number as the filter compares it: "27 925" is "27925"."""
    return (dossier or "").replace(" ", "").lower()
