"""The saved questions and their hits in the users' database (an open qa/users/db.py connection): the records,
saving and removing a question, the log of indexed letter versions a check reads from, and the hits it records."""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from qa.answer.answering import Answer
from qa.answer.retrieval import Filters
from qa.core import display, limits
from qa.core.errors import InvalidQuery, QAError

if TYPE_CHECKING:
    from qa.index.protocol import Store as Index

# A hit needs the reader's confidence (qa/answer/reader.py, calibrated: docs/reader.md) at least this, unless the
# watch sets its own. An alert should rather be missed than be noise: on the Kamervragen test split 0.70 of
# the answers scoring 0.6-0.8 are right, 0.51 of those at 0.4-0.6. Measured on the shared corpus's index
# (development runs): the letter answering "Wanneer moet de afbouw van Resolute Support afgerond zijn?"
# scores 0.88, a letter with the same words and no date is declined (0.0); for the Delta Rhine Corridor's
# costs the answering Aanhangsel scores 0.64 and a letter that only restates the question 0.55.
DEFAULT_THRESHOLD = 0.6
TOKEN_BYTES = 18  # 144 random bits, 24 URL-safe characters
MAX_WATCHES_LISTED = 10_000


class WatchNotFound(QAError):
    """No saved question with that id or token."""


@dataclass(frozen=True)
class Watch:
    id: int
    token: str
    question: str
    threshold: float
    filters: Filters
    created_at: str
    checked_at: str | None
    checked_through: int
    hits: int = 0


@dataclass(frozen=True)
class WatchHit:
    id: int
    watch_id: int
    letter_id: str
    passage_id: str
    title: str | None
    date: str | None
    url: str | None
    answer: str
    quote: str
    quote_start: int
    quote_end: int
    confidence: float
    found_at: str
    reported_at: str | None


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()

def _filters_json(filters: Filters) -> str:
    return json.dumps({k: v for k, v in filters.__dict__.items() if v}, sort_keys=True)


def watch_from_row(row: sqlite3.Row) -> Watch:
    stored = json.loads(row["filters"] or "{}")
    return Watch(row["id"], row["token"], row["question"], float(row["threshold"]), Filters(**stored), row["created_at"],
                 row["checked_at"], int(row["checked_through"]), int(row["hits"]) if "hits" in row.keys() else 0)


def hit_from_row(row: sqlite3.Row) -> WatchHit:
    return WatchHit(row["id"], row["watch_id"], row["letter_id"], row["passage_id"], row["title"], row["date"], row["url"],
                    row["answer"], row["quote"], row["quote_start"], row["quote_end"], float(row["confidence"]), row["found_at"],
                    row["reported_at"])


def check_threshold(value: float | None) -> float:
    if value is None:
        return DEFAULT_THRESHOLD
    if not 0.0 <= value <= 1.0:
        raise InvalidQuery("unknown_value", f"threshold: {value} is not between 0 and 1", "threshold", value)
    return float(value)


def sync_letters(connection: sqlite3.Connection, index: Index) -> int:
    """Log the letter versions of `index` not seen before; returns the last sequence number (0: none yet)."""
    hashes: dict[str, str] = index.manifest.get("letters", {})
    known = {(row[0], row[1]) for row in connection.execute("SELECT letter_id, content_hash FROM index_letters")}
    fresh = [(letter_id, content_hash) for letter_id, content_hash in hashes.items() if (letter_id, content_hash) not in known]
    if fresh:
        seen = now()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(
                "INSERT OR IGNORE INTO index_letters (letter_id, content_hash, generation, seen_at) VALUES (?, ?, ?, ?)",
                [(letter_id, content_hash, index.generation, seen) for letter_id, content_hash in fresh])
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return int(connection.execute("SELECT coalesce(max(seq), 0) FROM index_letters").fetchone()[0])


def new_token() -> str:
    """144 random bits, URL-safe, never opening with "-" (a shell would read "qa watch remove -m4C..." as an option)."""
    while True:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        if not token.startswith("-"):
            return token


def add(connection: sqlite3.Connection, index: Index, question: str, threshold: float | None = None,
        filters: Filters = Filters()) -> Watch:
    """Save a question; only letters indexed after this moment can fire it (the index's letters are logged first)."""
    question = limits.check_question(question)
    threshold = check_threshold(threshold)
    through = sync_letters(connection, index)
    token = new_token()
    cursor = connection.execute(
        "INSERT INTO watches (token, question, threshold, filters, created_at, checked_through) VALUES (?, ?, ?, ?, ?, ?)",
        (token, question, threshold, _filters_json(filters), now(), through))
    return get(connection, str(cursor.lastrowid))


_SELECT = ("SELECT w.*, (SELECT count(*) FROM watch_hits h WHERE h.watch_id = w.id) AS hits FROM watches w")


def get(connection: sqlite3.Connection, key: str) -> Watch:
    """A watch by its id (digits) or its token."""
    row = connection.execute(f"{_SELECT} WHERE {'w.id' if key.isdigit() else 'w.token'} = ?", (int(key) if key.isdigit() else key,)).fetchone()
    if row is None:
        raise WatchNotFound(f"no saved question {key!r}")
    return watch_from_row(row)


def open_watch(data_dir: Path, token: str) -> tuple[Watch, list[WatchHit]]:
    """The saved question of a token and its hits, read without writing anything, so a read-only data folder
    still serves them (issue 29). WatchNotFound for a number (ids are not secrets: a watch is opened by its token),
    an unknown token or a database without watches yet; UserDataError when the database cannot be read."""
    from contextlib import closing

    from qa.users import db as userdb

    if token.isdigit() or not userdb.exists(data_dir):
        raise WatchNotFound("no saved question with this token")
    try:
        with closing(userdb.connect(data_dir, readonly=True)) as connection:
            watch = get(connection, token)
            return watch, hits(connection, watch)
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):  # written before the watches' migration, and not since
            raise WatchNotFound("no saved question with this token") from None
        raise userdb.explain(userdb.path(data_dir), error, readonly=True) from error
    except sqlite3.Error as error:
        raise userdb.explain(userdb.path(data_dir), error, readonly=True) from error


def watches(connection: sqlite3.Connection) -> list[Watch]:
    return [watch_from_row(row) for row in connection.execute(f"{_SELECT} ORDER BY w.id LIMIT ?", (MAX_WATCHES_LISTED,))]


def remove(connection: sqlite3.Connection, key: str) -> Watch:
    watch = get(connection, key)
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute("DELETE FROM watch_hits WHERE watch_id = ?", (watch.id,))
        connection.execute("DELETE FROM watches WHERE id = ?", (watch.id,))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return watch


def hits(connection: sqlite3.Connection, watch: Watch, limit: int = 100) -> list[WatchHit]:
    """A watch's hits, newest first."""
    return [hit_from_row(row) for row in connection.execute(
        "SELECT * FROM watch_hits WHERE watch_id = ? ORDER BY found_at DESC, id DESC LIMIT ?", (watch.id, limit))]

def record_hit(connection: sqlite3.Connection, generation: str | None, watch: Watch, seq: int, result: Answer) -> WatchHit | None:
    first = result.citations[0]
    cursor = connection.execute(
        "INSERT OR IGNORE INTO watch_hits (watch_id, seq, letter_id, passage_id, title, date, url, answer, quote, quote_start, "
        "quote_end, confidence, generation, found_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (watch.id, seq, first.letter_id, first.passage_id, first.title, first.date, display.web_url(first.url), result.text,
         first.quote, first.quote_start, first.quote_end, result.confidence, generation, now()))
    if not cursor.rowcount:
        return None  # another process recorded it first
    return hit_from_row(connection.execute("SELECT * FROM watch_hits WHERE id = ?", (cursor.lastrowid,)).fetchone())

def unreported(connection: sqlite3.Connection) -> list[tuple[Watch, WatchHit]]:
    """Hits `qa watch check` has not printed yet, oldest first, marked printed in the same transaction (two crons
    at once never print one twice)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        rows = connection.execute("SELECT * FROM watch_hits WHERE reported_at IS NULL ORDER BY found_at, id").fetchall()
        if rows:
            connection.execute("UPDATE watch_hits SET reported_at = ? WHERE reported_at IS NULL AND id <= ?",
                               (now(), max(row["id"] for row in rows)))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    by_id = {watch.id: watch for watch in watches(connection)}
    return [(by_id[row["watch_id"]], hit_from_row(row)) for row in rows if row["watch_id"] in by_id]


def hit_line(watch: Watch, hit: WatchHit) -> str:
    """One line for cron's mail: which saved question, which letter, how sure, the first quote, the link."""
    quote = " ".join(hit.quote.split())
    quote = quote if len(quote) <= 200 else quote[:199] + "…"
    question = " ".join(watch.question.split())
    return (f"{hit.found_at} vraag {watch.id} \"{question}\": {hit.letter_id} ({hit.date or '?'}, zekerheid {hit.confidence:.2f}) "
            f"\"{quote}\"{' ' + hit.url if hit.url else ''}")

