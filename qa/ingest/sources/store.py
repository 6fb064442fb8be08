"""The letters folder that `qa fetch` fills and `qa index build` reads, and the fetch state.

Layout (the same as qa/sample and the shared corpus)::

    letters/letters.jsonl          one record per letter: id, file, dossier, number, date, sender,
                                   title, type, source_url, source, source_id, version, sha256, ...
    letters/letters/<id>.xml|.pdf  the original file as published
    letters/.fetch-state.json      what was asked and up to when it was fetched (for `qa update`)

Every file is written to a temporary name, fsynced and renamed, so an interrupted run leaves
either the old or the new file, never half of one. Records are appended (one line, fsynced) as
each letter lands, so a killed run keeps what it fetched; the sidecar is rewritten atomically,
one line per id, at the start and end of each run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from qa.core.errors import FetchError, LetterError
from qa.core.locks import exclusive
from qa.ingest.reading import SIDECAR_NAME, record_path

STATE_NAME = ".fetch-state.json"
LOCK_NAME = ".fetch.lock"
FILES = "letters"
MAX_NAME = 120  # characters of an id kept in its file name; file systems allow 255 bytes


class FolderBusy(FetchError):
    """Another `qa fetch`/`qa update` is writing into the same letters folder."""


def folder_lock(folder: Path) -> AbstractContextManager[None]:
    """One fetch into a folder at a time: two at once each rewrote letters.jsonl from what they had
    read and lost the other's records (issue 12). The second is turned away, like a second index writer."""
    return exclusive(folder / LOCK_NAME, FolderBusy(f"{folder} is being fetched into by another process; try again when it is done"))


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def safe_name(letter_id: str) -> str:
    """A file name that cannot escape the folder, whatever a server sends as id, and that no other
    id maps to: an id that had to be changed (`kst-9/9`) or shortened (300 characters) gets a hash
    of the id, so it neither overwrites `kst-9_9` nor fails with "File name too long"."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", letter_id).strip("._") or "letter"
    if name == letter_id and len(name) <= MAX_NAME:
        return name
    return f"{name[:MAX_NAME]}-{hashlib.sha256(letter_id.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


class LetterStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sidecar = folder / SIDECAR_NAME
        self.records: dict[str, dict[str, Any]] = {}
        if self.sidecar.is_file():
            for line in self.sidecar.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                    self.records[str(record["id"])] = record
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a killed run; its letter is fetched again
        self.compact()

    def has(self, letter_id: str, version: str | None) -> bool:
        """Present, with the same version, and its file still there."""
        record = self.records.get(letter_id)
        return bool(record and record.get("version") == version and self._file(record) and self._file(record).is_file())  # type: ignore[union-attr]

    def _file(self, record: dict[str, Any]) -> Path | None:
        """The record's file, or None when its `file` is not a name inside the folder (a hand-edited
        or hostile sidecar: `../victim.txt` must never be deleted or trusted)."""
        try:
            return record_path(self.folder, record)
        except LetterError:
            return None

    def put(self, record: dict[str, Any], data: bytes, suffix: str) -> bool:
        """Store a letter's file and record; returns True when it replaced an older version."""
        letter_id = str(record["id"])
        old = self.records.get(letter_id)
        relative = f"{FILES}/{safe_name(letter_id)}{suffix}"
        atomic_write(self.folder / relative, data)
        if old and old.get("file") != relative and (old_file := self._file(old)) is not None:
            old_file.unlink(missing_ok=True)  # e.g. a PDF superseded by the XML
        record = {**record, "file": relative}
        self.records[letter_id] = record
        with self.sidecar.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return old is not None

    def compact(self) -> None:
        """One line per letter, sorted by id, written atomically."""
        if not self.records and not self.sidecar.exists():
            return
        lines = [json.dumps(self.records[key], ensure_ascii=False) for key in sorted(self.records)]
        atomic_write(self.sidecar, ("\n".join(lines) + "\n" if lines else "").encode())


# --- state for `qa update` ------------------------------------------------------------------


def read_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_NAME
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FetchError(f"{path}: unreadable fetch state ({error}); delete it and run `qa fetch` again") from error
    return state if isinstance(state, dict) else {}


def write_state(folder: Path, state: dict[str, Any]) -> None:
    atomic_write(folder / STATE_NAME, json.dumps(state, indent=2, ensure_ascii=False).encode())
