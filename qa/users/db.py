"""What users leave behind (feedback on answers, saved questions), in one SQLite file beside the index.

`<index_dir>/qa.sqlite3` sits next to CURRENT and the generations, never inside a generation: a
generation is immutable and replaced by every build, the users' data must outlive all of them.
WAL lets readers (the health endpoint, `qa feedback list`) run while a worker writes, and the busy
timeout lets several `qa serve` workers write without "database is locked".

`MIGRATIONS` is append-only: each entry is one SQL script, `PRAGMA user_version` records how many
have run. Never edit a migration that has landed; add a new one (issue 14 the feedback table,
issue 17 the watches tables).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from qa.core.errors import QAError

FILENAME = "qa.sqlite3"
# How long a writer waits for another process's write to finish. Writes here are single-row inserts
# (well under 10 ms); 5 s is far beyond any queue a few workers and a CLI can build.
BUSY_TIMEOUT_SECONDS = 5.0

MIGRATIONS: list[str] = [
    # 1 (issue 14): feedback on answers, what a team reads to find its bad answers (qa/users/feedback.py).
    """
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,                    -- ISO 8601, UTC, seconds
        rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
        comment TEXT,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        abstained INTEGER NOT NULL DEFAULT 0,
        citations TEXT NOT NULL DEFAULT '[]',        -- JSON: [{n, letter_id, passage_id, quote}]
        generation TEXT                              -- the index generation served when it was given
    );
    CREATE INDEX feedback_by_time ON feedback (created_at);
    """,
    # 2 (issue 17): saved questions that alert when a newly indexed letter answers them (qa/users/watches/).
    """
    CREATE TABLE watches (
        id INTEGER PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,                  -- the unguessable part of its feed's URL
        question TEXT NOT NULL,
        threshold REAL NOT NULL,                     -- a hit needs the reader's confidence at least this
        filters TEXT NOT NULL DEFAULT '{}',          -- JSON: date_from, date_to, dossier, sender, type
        created_at TEXT NOT NULL,                    -- ISO 8601, UTC, seconds
        checked_at TEXT,                             -- the last check
        checked_through INTEGER NOT NULL DEFAULT 0   -- the last index_letters.seq it was checked against
    );
    -- Every letter version (id, content hash) the index has held, in the order they appeared: what is new
    -- to a watch is what came after its checked_through, so a check reads only those letters.
    CREATE TABLE index_letters (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        letter_id TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        generation TEXT,
        seen_at TEXT NOT NULL,
        UNIQUE (letter_id, content_hash)
    );
    CREATE TABLE watch_hits (
        id INTEGER PRIMARY KEY,
        watch_id INTEGER NOT NULL REFERENCES watches (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,                        -- the letter version that answered
        letter_id TEXT NOT NULL,
        passage_id TEXT NOT NULL,
        title TEXT,
        date TEXT,
        url TEXT,
        answer TEXT NOT NULL,                        -- the reader's answer from that letter: verbatim quotes with [n]
        quote TEXT NOT NULL,                         -- its first quote
        quote_start INTEGER NOT NULL,
        quote_end INTEGER NOT NULL,
        confidence REAL NOT NULL,
        generation TEXT,
        found_at TEXT NOT NULL,
        reported_at TEXT,                            -- when `qa watch check` printed it (cron mails it once)
        UNIQUE (watch_id, seq)
    );
    CREATE INDEX watch_hits_by_watch ON watch_hits (watch_id, found_at);
    """,
    # 3 (issue 17): a saved question's query vector, stored at its first check, so later checks run no model.
    """
    ALTER TABLE watches ADD COLUMN vector BLOB;         -- float32, the index model's query vector
    ALTER TABLE watches ADD COLUMN vector_model TEXT;   -- the model it is from (another model: embedded again)
    """,
]


class UserDataError(QAError):
    """The users' database cannot be opened or written (a read-only index folder, a damaged file)."""


def path(data_dir: Path) -> Path:
    return data_dir / FILENAME


def exists(data_dir: Path) -> bool:
    return path(data_dir).is_file()


def connect(data_dir: Path, readonly: bool = False) -> sqlite3.Connection:
    """The database of `data_dir` (the index folder), created and migrated on first use.

    `readonly` opens an existing file without writing anything (listing on a read-only folder);
    it never creates or migrates. Raises UserDataError with what to do, never a bare sqlite3 error."""
    file = path(data_dir)
    connection: sqlite3.Connection | None = None
    try:
        if readonly:
            connection = _open_readonly(file)
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(file, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            _enable_wal(connection)
            migrate(connection)
    except (sqlite3.Error, OSError, UserDataError) as error:
        if connection is not None:
            connection.close()
        raise explain(file, error, readonly) from error
    connection.row_factory = sqlite3.Row
    return connection


def _enable_wal(connection: sqlite3.Connection) -> None:
    """WAL mode, waiting like any statement would: switching the journal mode of a file that other processes are
    creating at the same moment fails at once with "database is locked" (SQLite does not call the busy handler
    there), which cost a worker its first write when several started together (tests/unit/test_feedback.py)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _open_readonly(file: Path) -> sqlite3.Connection:
    if not file.is_file():
        raise UserDataError(f"no user database at {file.absolute()} yet")
    uri = file.absolute().as_uri()
    try:
        connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        # WAL readers need to create the -shm file; in a folder nobody can write, nobody writes either,
        # so the file can be read as immutable.
        connection = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise UserDataError(f"{file.absolute()} was written by a newer version of qa (schema {version}, this one knows {len(MIGRATIONS)})")
    return connection


def explain(file: Path, error: Exception, readonly: bool = False) -> UserDataError:
    """A sqlite3 or OS error on `file` as one line that says what to do."""
    if isinstance(error, UserDataError):
        return error
    folder = file.parent.absolute()
    message = str(error)
    if not readonly and ("readonly" in message or "read-only" in message or "unable to open" in message or isinstance(error, PermissionError)):
        return UserDataError(f"cannot write {file.absolute()}: the folder {folder} is read-only ({message}); "
                             "make it writable or serve a writable copy of the index")
    if "not a database" in message or "malformed" in message:
        return UserDataError(f"{file.absolute()} is damaged ({message}); move it aside and a new one is created")
    return UserDataError(f"cannot open {file.absolute()}: {message}")


def statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one at a time (a trigger's BEGIN … END stays whole)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n\t;"):
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {buffer.strip()[:80]!r}")


def migrate(connection: sqlite3.Connection) -> int:
    """Run the migrations this file lacks, all in one IMMEDIATE transaction; returns the schema version.

    The version is read again inside the write lock, so two processes starting together never both
    apply a migration. A failing migration rolls back whole; the file stays at its previous version."""
    if connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
        return len(MIGRATIONS)  # the common case: no write lock taken
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise UserDataError(f"the user database was written by a newer version of qa (schema {version}, this one knows {len(MIGRATIONS)})")
        for number in range(version, len(MIGRATIONS)):
            for statement in statements(MIGRATIONS[number]):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {number + 1}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)
