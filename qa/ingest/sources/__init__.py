"""Fetching letters from the official sources into a letters folder (`qa fetch`, `qa update`).

Two sources, one shape: a source lists `Candidate`s (a sidecar record plus where its file is);
`fetch()` skips what the folder already holds in that version, downloads the rest politely,
checks that each file is a letter we can read, and stores it atomically.

- `tk` (default): the Tweede Kamer open-data OData API. It types documents exactly as we do
  (Brief regering, Antwoord schriftelijke vragen, Motie), links them to dossiers and signatories
  (ministry filter), marks every change with `GewijzigdOp` (what `qa update` asks for), lists new
  letters days before they are published officially, and serves the same KOOP XML when there is one.
- `sru`: the KOOP SRU search of officiële publicaties: only what is officially published, always
  with XML; type and ministry are read from the record's title and metadata.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from qa.core.errors import InvalidQuery, LetterError
from qa.ingest.formats import read_markup
from qa.ingest.sources.http import FetchError, PoliteClient
from qa.ingest.sources.query import DEFAULT_TYPES, TYPES, Candidate, Query, Source
from qa.ingest.sources.store import LetterStore, folder_lock, read_state, write_state

SOURCES = ("tk", "sru")
DEFAULT_SOURCE = "tk"
TK_URL = "https://gegevensmagazijn.tweedekamer.nl/OData/v4/2.0/"
SRU_URL = "https://repository.overheid.nl/sru"
__all__ = [
    "DEFAULT_TYPES", "TYPES", "Candidate", "Query", "Source", "Summary",
    "fetch", "folder_lock", "letters_to_index", "make_source", "parse_types", "remember", "update_query",
]

UPDATE_OVERLAP = timedelta(days=1)  # ask again for a day before the last run: clocks and indexing lag differ


@dataclass
class Summary:
    listed: int = 0
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: int = 0  # already present in this version, or not asked for
    failed: list[str] = field(default_factory=list)
    requests: int = 0

    def line(self) -> str:
        return (f"{self.listed} listed: added {len(self.added)}, replaced {len(self.replaced)}, "
                f"skipped {self.skipped}, failed {len(self.failed)} ({self.requests} requests)")


def parse_types(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if not values:
        return DEFAULT_TYPES
    try:
        return tuple(dict.fromkeys(TYPES[value.strip().lower()] for value in values))
    except KeyError as error:
        raise InvalidQuery("unknown_value", f"unknown type {error.args[0]!r}; use letters, answers or moties", "type", error.args[0]) from None


def base_url(source: str, given: str | None = None) -> str:
    """An explicit URL, else $QA_TK_URL / $QA_SRU_URL, else the public service."""
    env, default = ("QA_TK_URL", TK_URL) if source == "tk" else ("QA_SRU_URL", SRU_URL)
    return given or os.environ.get(env) or default


def make_source(source: str, client: PoliteClient, url: str | None = None) -> Source:
    """The source, with the client kept to its host: redirects and next-page links elsewhere are refused."""
    if source not in SOURCES:
        raise InvalidQuery("unknown_value", f"unknown source {source!r}; use {' or '.join(SOURCES)}", "source", source)
    base = base_url(source, url)
    client.allow(base)
    if source == "tk":
        from qa.ingest.sources.tk import TweedeKamer

        return TweedeKamer(client, base)
    from qa.ingest.sources.sru import Sru

    return Sru(client, base)


def check_file(letter_id: str, data: bytes, suffix: str) -> None:
    """Refuse what `qa index build` could not read, before it lands in the folder."""
    if suffix == ".pdf":
        if not data.lstrip()[:5] == b"%PDF-":
            raise LetterError(f"{letter_id}: not a PDF")
        return
    text, _ = read_markup(Path(f"{letter_id}{suffix}"), data)
    if not text.strip():
        raise LetterError(f"{letter_id}: no text in the {suffix.lstrip('.').upper()}")


def fetch(
    folder: Path, source: Source, client: PoliteClient, query: Query,
    progress: Callable[[int | None], Any] | None = None, log: Callable[[str], None] | None = None,
) -> Summary:
    """Download what the folder lacks; one failed letter is reported and the run goes on.

    Whatever a hostile server makes a parser raise is that letter's failure (or, in the listing,
    where the listing stopped), so the letters after it are still fetched and the state is written."""
    store = LetterStore(folder)
    summary = Summary()
    bar = None
    try:
        for item in _guarded(source.candidates(query)):
            if bar is None and progress is not None:
                bar = progress(source.total)
            if bar is not None:
                bar.update(1)
            if isinstance(item, FetchError):
                summary.failed.append(str(item))
                continue
            summary.listed += 1
            letter_id = str(item.record["id"])
            if not query.wants(item.record) or store.has(letter_id, item.record.get("version")):
                summary.skipped += 1
                continue
            try:
                data = client.get(item.url).content
                check_file(letter_id, data, item.suffix)
            except (FetchError, LetterError) as error:
                summary.failed.append(f"{letter_id}: {error}" if letter_id not in str(error) else str(error))
                continue
            except Exception as error:  # noqa: BLE001 - see the docstring
                summary.failed.append(f"{letter_id}: unreadable ({type(error).__name__}: {error})")
                continue
            record = {**item.record, "fetched_at": _now()}
            (summary.replaced if store.put(record, data, item.suffix) else summary.added).append(letter_id)
            if log:
                log(f"{'replaced' if letter_id in summary.replaced else 'added'} {letter_id}")
    finally:
        if bar is not None:
            bar.close()
        store.compact()
        summary.requests = client.requests
    return summary


def _guarded(items: Iterator[Candidate | FetchError]) -> Iterator[Candidate | FetchError]:
    """A source's listing; an exception inside it ends the listing as one failure, not the run."""
    try:
        yield from items
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:  # noqa: BLE001 - a malformed page from a server we do not control
        yield FetchError(f"listing stopped: {type(error).__name__}: {error}")


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def remember(folder: Path, source: str, query: Query, started: str, summary: Summary) -> None:
    """Save what was asked; the watermark moves on only after a run without failures, so a
    failed letter is asked for again by the next `qa update`."""
    state = read_state(folder)
    asked = asdict(replace(query, modified_since=None))
    asked["types"] = list(query.types)
    new: dict[str, Any] = {"source": source, "query": asked, "last_run": started, "last_summary": summary.line()}
    new["modified_since"] = started if not summary.failed else state.get("modified_since")
    if not summary.failed:
        new["last_complete_run"] = started
    write_state(folder, {**state, **new})


def update_query(folder: Path) -> tuple[str, Query]:
    """The query of the last fetch, limited to what changed since its last complete run."""
    state = read_state(folder)
    if not state.get("query"):
        raise FetchError(f"{folder} has no fetch state; run `qa fetch --out {folder} ...` first")
    asked = dict(state["query"])
    asked["types"] = tuple(asked.get("types") or DEFAULT_TYPES)
    since = state.get("modified_since")
    if since:
        since = (datetime.fromisoformat(since) - UPDATE_OVERLAP).isoformat()
    return str(state.get("source") or DEFAULT_SOURCE), Query(**{**asked, "modified_since": since})


def stored_ids(folder: Path) -> set[str]:
    """The ids of the letters the folder holds (its sidecar's records)."""
    return set(LetterStore(folder).records)


def letters_to_index(folder: Path, index_ids: set[str], changed: list[str]) -> tuple[list[Any], list[str]]:
    """The letters of the folder that the index lacks or that changed in this run, read from disk;
    a run that fetched but was killed before indexing is caught up by the next `qa update`."""
    from qa.ingest.reading import read_record

    store = LetterStore(folder)
    wanted = set(changed) | (set(store.records) - index_ids)
    letters, errors = [], []
    for letter_id in sorted(wanted & set(store.records)):
        try:
            letters.append(read_record(folder, store.records[letter_id]))
        except LetterError as error:
            errors.append(str(error))
    return letters, errors
