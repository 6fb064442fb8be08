"""Saved questions ("Volg deze vraag"): a question that alerts when a newly indexed letter answers it.

After every index change (`qa index build/add`, `qa update`, a reload of the served index) each saved
question is checked against the letters that are new since its own last check, and only those: their
passages are ranked for the question (the same fusion as retrieval, over just these passages) and read by
the reader. A hit is recorded when the answer from a new letter has the reader's confidence at least the
watch's threshold, so a letter that merely mentions the question's words does not fire.

What is new is kept in the users' database (qa/users/db.py): `index_letters` logs every letter version (id,
content hash) in the order it appeared, and each watch remembers the last one it was checked against.
Hits are delivered as an Atom feed per watch at an unguessable URL (`/watches/<token>/feed.atom`), a page,
and `qa watch check` (one line per hit not yet printed, for cron).
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

import numpy as np

from qa.answer.answering import Answer
from qa.answer.retrieval import Filters, Hit
from qa.core import display, limits
from qa.core.errors import InvalidQuery, QAError
from qa.embed.onnx_runtime import vector_identity
from qa.index.fusion import LEXICAL_WEIGHT, reciprocal_rank_fusion
from qa.index.lexical import tokenize

if TYPE_CHECKING:
    from qa.answer.engine import Engine
    from qa.embed.embedding import TextEmbedder
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


@dataclass
class CheckReport:
    """What one check did: how many watches and new letter versions it read, the hits it recorded, and its time."""

    watches: int = 0
    new_letters: int = 0  # distinct new letter versions read, over all watches
    passages_read: int = 0  # distinct passages read (only the new letters' own)
    hits: list[tuple[Watch, WatchHit]] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (f"checked {self.watches} saved question(s) against {self.new_letters} new letter(s): "
                f"{len(self.hits)} new hit(s)")


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


# --- the rule: does a new letter answer the question? (pure: an engine and letter ids in, answers out) ---

# Per watch, the reader reads the letters of the best-ranked new passages, at most this many letters (one
# answer each): a check costs a few answers per watch however many letters are new, and a letter whose
# passages rank below three others' cannot be the one that answers best.
LETTERS_READ = 3


class NewLetters:
    """The passages of the letters a check reads, with their vectors and words read once and shared by every watch.

    Only these passages are touched (no search over the whole index), so a check costs what the new letters
    cost, whatever the index's size; `passages_read` counts them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._vectors: dict[int, np.ndarray] = {}
        self._terms: dict[int, frozenset[str]] = {}

    @property
    def passages_read(self) -> int:
        return len(self._vectors)

    def _load(self, rows: list[int]) -> None:
        missing = [row for row in rows if row not in self._vectors]
        if missing:
            for row, vector in zip(missing, self.engine.index.passage_vectors(missing)):
                self._vectors[row] = vector
                self._terms[row] = frozenset(tokenize(self.engine.index.passages[row].text))

    def ranked(self, question: str, letter_ids: Sequence[str], filters: Filters = Filters()) -> list[Hit]:
        """The passages of just these letters, ranked for the question: dense cosine and the question's words, fused by
        reciprocal rank as retrieval fuses dense and BM25 (qa/index/fusion.py)."""
        index = self.engine.index
        rows = [row for letter_id in letter_ids if letter_id in index.letters and filters.accepts(index.letters[letter_id])
                for row in index.letter_passages.get(letter_id, [])]
        if not rows:
            return []
        self._load(rows)
        vector = self.engine.embedder.embed_query(question)[0]
        cosines = np.stack([self._vectors[row] for row in rows]) @ vector
        weights = {term: index.lexical.idf(term) for term in set(tokenize(question))}
        total = sum(weights.values()) or 1.0
        coverage = np.asarray([sum(w for t, w in weights.items() if t in self._terms[row]) / total for row in rows])
        orders = [(np.argsort(-cosines, kind="stable").tolist(), 1.0), (np.argsort(-coverage, kind="stable").tolist(), LEXICAL_WEIGHT)]
        by_position = reciprocal_rank_fusion(orders)
        fused = np.asarray([by_position[position] for position in range(len(rows))])
        hits = []
        for position in np.argsort(-fused, kind="stable"):
            passage = index.passages[rows[int(position)]]
            hits.append(Hit(passage, index.letters[passage.letter_id], float(fused[position]), float(cosines[position]), None))
        return hits

    def answers(self, question: str, letter_ids: Sequence[str], filters: Filters = Filters()) -> list[Answer]:
        """The reader's answer from each of the (at most LETTERS_READ) letters whose passages rank best, that letter's
        passages only: each new letter answers for itself, never helped by another."""
        from qa.answer.answering import answer

        ranked = self.ranked(question, letter_ids, filters)
        policy = self.engine.policy
        found = []
        for letter_id in list(dict.fromkeys(hit.letter.id for hit in ranked))[:LETTERS_READ]:
            own = [hit for hit in ranked if hit.letter.id == letter_id]
            found.append(answer(self.engine.gather(question, question, own, policy.passages_read, filters, policy), policy))
        return found


def is_hit(result: Answer, threshold: float) -> bool:
    return not result.abstained and bool(result.citations) and result.confidence >= threshold


# --- the store (an open qa/users/db.py connection) -----------------------------------------------------------


def _filters_json(filters: Filters) -> str:
    return json.dumps({k: v for k, v in filters.__dict__.items() if v}, sort_keys=True)


def _watch(row: sqlite3.Row) -> Watch:
    stored = json.loads(row["filters"] or "{}")
    return Watch(row["id"], row["token"], row["question"], float(row["threshold"]), Filters(**stored), row["created_at"],
                 row["checked_at"], int(row["checked_through"]), int(row["hits"]) if "hits" in row.keys() else 0)


def _hit(row: sqlite3.Row) -> WatchHit:
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
    return _watch(row)


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
    return [_watch(row) for row in connection.execute(f"{_SELECT} ORDER BY w.id LIMIT ?", (MAX_WATCHES_LISTED,))]


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
    return [_hit(row) for row in connection.execute(
        "SELECT * FROM watch_hits WHERE watch_id = ? ORDER BY found_at DESC, id DESC LIMIT ?", (watch.id, limit))]


class StoredQueries:
    """The engine's embedder, answering the saved questions' queries from their stored vectors (no model run)."""

    def __init__(self, embedder: TextEmbedder, vectors: dict[str, np.ndarray]) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.name, self.dimension, self.backend = embedder.name, embedder.dimension, embedder.backend

    def embed_query(self, text: str) -> np.ndarray:
        stored = self.vectors.get(text)
        return stored.reshape(1, -1) if stored is not None else self.embedder.embed_query(text)

    def embed_passages_with_spans(self, texts: Sequence[str], spans: Sequence[np.ndarray], batch_size: int = 32,
                                  progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        return self.embedder.embed_passages_with_spans(texts, spans, batch_size, progress)


def _query_vectors(connection: sqlite3.Connection, engine: Engine, due: list[Watch]) -> dict[str, np.ndarray]:
    """The due watches' query vectors: stored ones of the index's model, the others embedded now (and stored after)."""
    model = vector_identity(engine.index.model, engine.index.backend)
    vectors: dict[str, np.ndarray] = {}
    for watch in due:
        row = connection.execute("SELECT vector, vector_model FROM watches WHERE id = ?", (watch.id,)).fetchone()
        if row is not None and row["vector"] is not None and row["vector_model"] == model:
            vectors[watch.question] = np.frombuffer(row["vector"], dtype=np.float32)
        elif watch.question not in vectors:
            vectors[watch.question] = np.asarray(engine.embedder.embed_query(watch.question)[0], dtype=np.float32)
    return vectors


def check(connection: sqlite3.Connection, engine: Engine, log: Callable[[str], None] = lambda message: None) -> CheckReport:
    """Check every watch against the letter versions new since its last check; record the hits.

    Reading happens first, without a lock; what it found is written in one short transaction, so the server's
    other writers (feedback) wait milliseconds, not the length of the check. Safe to run from several processes
    at once (workers reloading together, cron beside the server): a hit is unique per watch and letter version,
    and a watch's progress only moves forward."""
    from qa.answer.engine import Engine

    started = time.perf_counter()
    report = CheckReport()
    through = sync_letters(connection, engine.index)
    hashes: dict[str, str] = engine.index.manifest.get("letters", {})
    saved = watches(connection)
    report.watches = len(saved)
    due = [watch for watch in saved if watch.checked_through < through]
    if not due:
        report.seconds = time.perf_counter() - started
        return report
    vectors = _query_vectors(connection, engine, due)
    reader_engine = Engine(engine.index, StoredQueries(engine.embedder, vectors), engine.policy)
    reader_engine._mean_vector = engine.mean_vector()  # a corpus statistic the engine keeps; not a passage read here
    letters = NewLetters(reader_engine)
    log_rows = connection.execute("SELECT seq, letter_id, content_hash FROM index_letters WHERE seq <= ? ORDER BY seq", (through,)).fetchall()
    read: set[int] = set()
    found: list[tuple[Watch, int, Answer]] = []
    for watch in due:
        versions = {row["letter_id"]: int(row["seq"]) for row in log_rows
                    if row["seq"] > watch.checked_through and hashes.get(row["letter_id"]) == row["content_hash"]}  # still indexed so
        read.update(versions.values())
        for result in letters.answers(watch.question, list(versions), watch.filters):
            if is_hit(result, watch.threshold):
                found.append((watch, versions[result.citations[0].letter_id], result))
    checked_at, model = now(), vector_identity(engine.index.model, engine.index.backend)
    connection.execute("BEGIN IMMEDIATE")
    try:
        for watch, seq, result in found:
            stored = _record(connection, engine, watch, seq, result)
            if stored is not None:
                report.hits.append((watch, stored))
        connection.executemany(
            "UPDATE watches SET checked_through = max(checked_through, ?), checked_at = ?, vector = ?, vector_model = ? WHERE id = ?",
            [(through, checked_at, vectors[watch.question].astype(np.float32).tobytes(), model, watch.id) for watch in due])
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    for watch, hit in report.hits:
        log(f"saved question {watch.id}: {hit.letter_id} answers it (confidence {hit.confidence:.2f})")
    report.new_letters = len(read)
    report.passages_read = letters.passages_read
    report.seconds = time.perf_counter() - started
    return report


def _record(connection: sqlite3.Connection, engine: Engine, watch: Watch, seq: int, result: Answer) -> WatchHit | None:
    first = result.citations[0]
    cursor = connection.execute(
        "INSERT OR IGNORE INTO watch_hits (watch_id, seq, letter_id, passage_id, title, date, url, answer, quote, quote_start, "
        "quote_end, confidence, generation, found_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (watch.id, seq, first.letter_id, first.passage_id, first.title, first.date, display.web_url(first.url), result.text,
         first.quote, first.quote_start, first.quote_end, result.confidence, engine.index.generation, now()))
    if not cursor.rowcount:
        return None  # another process recorded it first
    return _hit(connection.execute("SELECT * FROM watch_hits WHERE id = ?", (cursor.lastrowid,)).fetchone())


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
    return [(by_id[row["watch_id"]], _hit(row)) for row in rows if row["watch_id"] in by_id]


def hit_line(watch: Watch, hit: WatchHit) -> str:
    """One line for cron's mail: which saved question, which letter, how sure, the first quote, the link."""
    quote = " ".join(hit.quote.split())
    quote = quote if len(quote) <= 200 else quote[:199] + "…"
    question = " ".join(watch.question.split())
    return (f"{hit.found_at} vraag {watch.id} \"{question}\": {hit.letter_id} ({hit.date or '?'}, zekerheid {hit.confidence:.2f}) "
            f"\"{quote}\"{' ' + hit.url if hit.url else ''}")


# --- the Atom feed (RFC 4287) ------------------------------------------------------------------------------

ATOM = "http://www.w3.org/2005/Atom"
# What XML 1.0 cannot carry, not even as &#...;: most C0 controls, lone surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """Text and attribute values for the feed: ElementTree escapes <, & and ]]> but writes a NUL or ESC as it is,
    and a feed reader then refuses the whole feed (issue 29). Those characters are dropped."""
    return _NOT_XML.sub("", text)


def feed_path(token: str) -> str:
    return f"/watches/{token}/feed.atom"


def page_path(token: str) -> str:
    return f"/watches/{token}"


def atom_feed(watch: Watch, found: Iterable[WatchHit], base_url: str, letter_link: Callable[[WatchHit], str]) -> bytes:
    """The watch's hits as an Atom feed; `base_url` makes the links absolute, as feed readers need them."""
    ElementTree.register_namespace("", ATOM)
    base = base_url.rstrip("/")

    def sub(parent: ElementTree.Element, tag: str, text: str | None = None, **attributes: str) -> ElementTree.Element:
        node = ElementTree.SubElement(parent, f"{{{ATOM}}}{tag}", {name: xml_text(value) for name, value in attributes.items()})
        if text is not None:
            node.text = xml_text(text)
        return node

    found = list(found)
    feed = ElementTree.Element(f"{{{ATOM}}}feed")
    sub(feed, "id", f"urn:kamerbrieven-qa:watch:{watch.token}")
    sub(feed, "title", f"Kamerbrieven QA: {watch.question}")
    sub(feed, "updated", max([hit.found_at for hit in found], default=watch.created_at))
    author = sub(feed, "author")
    sub(author, "name", "Kamerbrieven QA")
    sub(feed, "link", rel="self", type="application/atom+xml", href=base + feed_path(watch.token))
    sub(feed, "link", rel="alternate", type="text/html", href=base + page_path(watch.token))
    sub(feed, "subtitle", f"Nieuwe brieven die deze vraag beantwoorden (zekerheid vanaf {watch.threshold:.2f}).")
    for hit in found:
        entry = sub(feed, "entry")
        sub(entry, "id", f"urn:kamerbrieven-qa:watch:{watch.token}:hit:{hit.id}")
        sub(entry, "title", hit.title or hit.letter_id)
        sub(entry, "updated", hit.found_at)
        if hit.date:
            sub(entry, "published", f"{hit.date}T00:00:00Z")
        sub(entry, "link", rel="alternate", type="text/html", href=base + letter_link(hit))
        if hit.url:
            sub(entry, "link", rel="related", type="text/html", href=hit.url)
        sub(entry, "summary", f"{' '.join(hit.answer.split())} (zekerheid {hit.confidence:.2f}; {hit.letter_id})", type="text")
    return ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)


def check_index_folder(index_dir: Path, engine: Engine, log: Callable[[str], None] = lambda message: None) -> CheckReport | None:
    """After an index change: check the saved questions kept beside the index, if there are any (no database is
    created for an index nobody follows). None when there is nothing to check."""
    from contextlib import closing

    from qa.users import db as userdb

    if not userdb.exists(index_dir):
        return None
    with closing(userdb.connect(index_dir)) as connection:
        if not connection.execute("SELECT count(*) FROM watches").fetchone()[0]:
            return None
        return check(connection, engine, log)
