"""The rule of a saved question: does a newly indexed letter answer it? `NewLetters` ranks and reads only the new
letters' passages (pure: an engine and letter ids in, answers out); `check` runs every due saved question against the
letter versions new since its last check and records the hits."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.answer.answering import Answer
from qa.answer.retrieval import Filters, Hit
from qa.embed.onnx_runtime import vector_identity
from qa.index.fusion import fuse, fusion_for
from qa.index.lexical import tokenize
from qa.users.watches.storage import Watch, WatchHit, now, record_hit, sync_letters, watches

if TYPE_CHECKING:
    from qa.answer.engine import Engine
    from qa.embed.embedding import TextEmbedder


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
        by_position = fuse(np.argsort(-cosines, kind="stable").tolist(), np.argsort(-coverage, kind="stable").tolist(),
                           fusion_for(self.engine.embedder.name))
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
            stored = record_hit(connection, engine.index.generation, watch, seq, result)
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

