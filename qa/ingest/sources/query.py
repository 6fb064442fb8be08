"""What a source is asked for and what it lists: the shapes both sources share (a module of its own so
`tk` and `sru` need not import the package that imports them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from qa.ingest.sources.http import FetchError

TYPES = {  # what users may type -> the type names of the index
    "brief_regering": "brief_regering", "letters": "brief_regering", "brief": "brief_regering",
    "antwoord_kamervragen": "antwoord_kamervragen", "answers": "antwoord_kamervragen", "kamervragen": "antwoord_kamervragen",
    "motie": "motie", "moties": "motie",
}
DEFAULT_TYPES = ("brief_regering", "antwoord_kamervragen", "motie")


@dataclass(frozen=True)
class Query:
    dossier: str | None = None
    since: str | None = None  # letter date, YYYY-MM-DD
    until: str | None = None
    types: tuple[str, ...] = DEFAULT_TYPES
    ministry: str | None = None
    modified_since: str | None = None  # ISO datetime; only what changed since (for `qa update`)

    def wants(self, record: dict[str, Any]) -> bool:
        """The client-side check of what a server filter may not express exactly."""
        if record.get("type") not in self.types:
            return False
        if self.ministry:
            haystack = f"{record.get('sender') or ''} {record.get('title') or ''}".lower()
            if self.ministry.lower() not in haystack:
                return False
        day = str(record.get("date") or "")
        return not (day and ((self.since and day < self.since) or (self.until and day > self.until)))


@dataclass
class Candidate:
    record: dict[str, Any]  # the sidecar record without `file`: id, dossier, ..., version
    url: str  # the file to download
    suffix: str  # ".xml" or ".pdf"


class Source(Protocol):
    total: int | None

    def candidates(self, query: Query) -> Iterator[Candidate | FetchError]: ...
