"""Feedback on answers: up/down (Nuttig / Niet nuttig) and an optional comment, kept with the question, the answer, its citations
and the index generation, so a team can find its bad answers later (`qa feedback list --rating down`).

The record and its rules are plain values here; storing takes an open connection of qa/users/db.py,
so the API, the CLI and the tests share one definition of what feedback is.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from qa.core import limits
from qa.core.display import json_line, terminal_safe
from qa.core.errors import InvalidQuery
from qa.core.limits import Rating
from qa.users import db as userdb

MAX_CITATIONS = limits.MAX_K  # an answer never quotes more passages than were retrieved


@dataclass(frozen=True)
class Cited:
    """One citation of the rated answer, enough to open the quote again (or see that it is gone)."""

    n: int
    letter_id: str
    passage_id: str
    quote: str


@dataclass(frozen=True)
class Feedback:
    rating: Rating
    question: str
    answer: str
    comment: str | None = None
    abstained: bool = False
    citations: tuple[Cited, ...] = ()
    generation: str | None = None  # the index generation the server was serving
    created_at: str = ""  # ISO 8601 UTC; set by `new`
    id: int | None = None  # set once stored


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def new(
    rating: str, question: str, answer: str, comment: str | None = None, abstained: bool = False,
    citations: Sequence[Cited] = (), generation: str | None = None, created_at: str | None = None,
) -> Feedback:
    """Feedback checked against the rules (InvalidQuery otherwise); a blank comment is no comment."""
    if len(citations) > MAX_CITATIONS:
        raise InvalidQuery("text_too_long", f"citations: more than {MAX_CITATIONS}", "citations", len(citations))
    return Feedback(
        rating=limits.parse_rating(rating),
        question=limits.check_question(question),
        answer=limits.check_length(answer.strip(), limits.MAX_ANSWER_IN_HISTORY, "answer"),
        comment=(limits.check_length(comment.strip(), limits.MAX_COMMENT, "comment") or None) if comment else None,
        abstained=abstained,
        citations=tuple(citations),
        generation=generation,
        created_at=created_at or now(),
    )


# --- storing and reading (an open qa/users/db.py connection) ---------------------------------


def save(connection: sqlite3.Connection, feedback: Feedback) -> Feedback:
    """Store one feedback (a single INSERT, so concurrent writers only queue for a moment); returns it with its id."""
    citations = json.dumps([c.__dict__ for c in feedback.citations], ensure_ascii=False)
    try:
        cursor = connection.execute(
            "INSERT INTO feedback (created_at, rating, comment, question, answer, abstained, citations, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (feedback.created_at, feedback.rating, feedback.comment, feedback.question, feedback.answer, int(feedback.abstained),
             citations, feedback.generation),
        )
    except sqlite3.Error as error:  # read-only file, disk full, locked beyond the busy timeout
        raise userdb.explain(_file(connection), error) from error
    return Feedback(**{**feedback.__dict__, "id": cursor.lastrowid})


def count(connection: sqlite3.Connection) -> dict[str, int]:
    """How many of each rating, and in all."""
    counts: dict[str, int] = dict.fromkeys(limits.RATINGS, 0)
    for rating, number in connection.execute("SELECT rating, count(*) FROM feedback GROUP BY rating"):
        counts[rating] = number
    return {**counts, "total": sum(counts.values())}


def listing(connection: sqlite3.Connection, rating: Rating | None = None, limit: int | None = None) -> list[Feedback]:
    """Feedback, newest first; only one rating when given."""
    sql = "SELECT * FROM feedback" + (" WHERE rating = ?" if rating else "") + " ORDER BY created_at DESC, id DESC"
    parameters: list[object] = [rating] if rating else []
    if limit is not None:
        sql += " LIMIT ?"
        parameters.append(limit)
    return [_row(row) for row in connection.execute(sql, parameters)]


def _row(row: sqlite3.Row) -> Feedback:
    try:
        citations = tuple(Cited(**item) for item in json.loads(row["citations"] or "[]"))
    except (ValueError, TypeError):
        citations = ()  # a row someone edited by hand still lists
    return Feedback(row["rating"], row["question"], row["answer"], row["comment"], bool(row["abstained"]), citations,
                    row["generation"], row["created_at"], row["id"])


def _file(connection: sqlite3.Connection) -> Path:
    name = next((row[2] for row in connection.execute("PRAGMA database_list") if row[1] == "main"), "")
    return Path(name)


# --- export --------------------------------------------------------------------------------

CSV_COLUMNS = ("id", "created_at", "rating", "comment", "question", "answer", "abstained", "letters", "passages", "generation")


def as_dict(feedback: Feedback) -> dict[str, object]:
    """JSON-ready, for `qa feedback list --json`."""
    return {**feedback.__dict__, "citations": [c.__dict__ for c in feedback.citations]}


def csv_row(feedback: Feedback) -> list[str]:
    """One spreadsheet row: the cited letters and passages joined by spaces (quotes are in the answer)."""
    return [
        str(feedback.id or ""), feedback.created_at, feedback.rating, feedback.comment or "", feedback.question, feedback.answer,
        "1" if feedback.abstained else "0", " ".join(dict.fromkeys(c.letter_id for c in feedback.citations)),
        " ".join(c.passage_id for c in feedback.citations), feedback.generation or "",
    ]


def write_jsonl(items: Iterable[Feedback], stream: IO[str]) -> int:
    """One JSON object a line, citations included; lossless, and without a raw control character (`json_line`)."""
    count = 0
    for item in items:
        stream.write(json_line(as_dict(item)) + "\n")
        count += 1
    return count


def write_csv(items: Iterable[Feedback], stream: IO[str]) -> int:
    """RFC 4180 CSV with a header row; returns the rows written. Every cell goes through `csv_cell`:
    comments come from anyone, and the export is opened in a spreadsheet or printed to a terminal."""
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    rows = 0
    for feedback in items:
        writer.writerow([csv_cell(cell) for cell in csv_row(feedback)])
        rows += 1
    return rows


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet run a cell (OWASP's list)


def csv_cell(cell: str) -> str:
    """Control characters (ESC sequences, C1, bidi overrides) removed, then a leading apostrophe on a cell a
    spreadsheet would run as a formula, also after blanks (issue 29: ESC or spaces before "=" slipped through)."""
    cell = terminal_safe(cell, "")
    return "'" + cell if cell.lstrip(" ")[:1] in FORMULA_START else cell


__all__ = ["CSV_COLUMNS", "Cited", "Feedback", "as_dict", "count", "csv_cell", "csv_row", "listing", "new", "save", "write_csv"]
