"""Reading letters from files and folders: one file, a folder (with or without a `letters.jsonl` sidecar), JSONL(.gz) records.

Every reader returns a `Letter` with cleaned text and whatever metadata it can find. Metadata
comes first from a `letters.jsonl` sidecar (the layout of the shared corpus and of `qa fetch`),
then from the document itself (XML meta tags, qa/ingest/formats.py), then from patterns in the
text (qa/ingest/metadata.py). A file that cannot be read is a message, never the end of a build.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from qa.core.errors import LetterError
from qa.ingest.cleaning import clean
from qa.ingest.formats import decode_text, one_line, read_markup, read_pdf
from qa.ingest.letter import Letter
from qa.ingest.metadata import metadata_from_text, official_url, slugify

SIDECAR_NAME = "letters.jsonl"
LETTER_SUFFIXES = (".txt", ".xml", ".html", ".htm", ".pdf")
BULK_SUFFIXES = (".jsonl", ".jsonl.gz")
MAX_LETTER_BYTES = 50_000_000  # a file, a bulk record's line or a letter's text; the largest real letter is ~5 MB
BULK_READ = 1 << 20  # how much of an over-long bulk line is read at a time while it is skipped


@dataclass
class ReadReport:
    letters: list[Letter] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def make_letter(raw_text: str, path: Path | None, known: dict[str, object] | None = None) -> Letter:
    """Clean the text and merge metadata: known (sidecar/XML) wins over what the text says."""
    cleaned = clean(raw_text)
    if not cleaned.text.strip():
        raise LetterError(f"{path}: no text found")
    parsed = metadata_from_text(raw_text)
    known = {key: value for key, value in (known or {}).items() if value not in (None, "")}
    merged = {**parsed, **known}
    letter_id = str(merged.get("id") or "")
    if not letter_id:
        stem = path.name.split(".")[0] if path else ""
        if re.match(r"^(kst|ah-tk|sgd|blg)-", stem):
            letter_id = stem
        elif merged.get("dossier") and merged.get("number"):
            letter_id = f"kst-{merged['dossier']}-{merged['number']}"
        else:
            letter_id = slugify(stem or hashlib.sha256(raw_text.encode()).hexdigest()[:12])
    return Letter(
        id=letter_id,
        text=cleaned.text,
        page_starts=cleaned.page_starts,
        title=_str(merged.get("title")),
        date=_str(merged.get("date")),
        dossier=_str(merged.get("dossier")),
        number=_str(merged.get("number")),
        sender=_str(merged.get("sender")),
        type=_str(merged.get("type")),
        url=_str(merged.get("url") or merged.get("source_url")) or official_url(letter_id),
        source=str(path) if path else None,
    )


def _str(value: object) -> str | None:
    return None if value is None else str(value).strip() or None


def read_file(path: Path, known: dict[str, object] | None = None) -> Letter:
    """Read one letter file; `known` is its sidecar record, if any.

    Only regular files are opened (a FIFO would block the build forever), and whatever a reader
    raises on a hostile file becomes this file's message, never the end of the build."""
    try:
        return _read_file(path, known)
    except LetterError:
        raise
    except Exception as error:  # noqa: BLE001 - a parser bug on one file must not stop the build
        raise LetterError(f"{path}: unreadable ({type(error).__name__}: {one_line(error)})") from error


def _read_file(path: Path, known: dict[str, object] | None) -> Letter:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise LetterError(f"{path}: not a regular file")
        if info.st_size > MAX_LETTER_BYTES:
            raise LetterError(f"{path}: too large ({info.st_size:,} bytes)")
        if path.suffix.lower() == ".pdf":
            return make_letter(read_pdf(path), path, known)
        with open(path, "rb", opener=_nonblocking) as handle:  # a FIFO swapped in after the check does not block
            data = handle.read(MAX_LETTER_BYTES + 1)
    except OSError as error:
        raise LetterError(f"{path}: cannot read ({error.strerror or error})") from error
    if len(data) > MAX_LETTER_BYTES:
        raise LetterError(f"{path}: too large (over {MAX_LETTER_BYTES:,} bytes)")
    suffix = path.suffix.lower()
    if suffix in (".xml", ".html", ".htm"):
        text, meta = read_markup(path, data)
        return make_letter(text, path, {**meta, **(known or {})})
    try:
        return make_letter(decode_text(data), path, known)
    except LetterError as error:
        if str(error).startswith(str(path)):
            raise
        raise LetterError(f"{path}: {error}") from error


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def read_bulk(path: Path) -> Iterator[Letter | LetterError]:
    """Records of `{"url", "text"}` (or Content/content) per line, gzipped or not.

    Streamed: a line (and a letter's text) over MAX_LETTER_BYTES is reported and skipped
    without holding it in memory, so a 1 MB gzip of one 1 GiB line costs no more than any
    letter (issue 12)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        if not path.is_file():
            raise LetterError(f"{path}: not a regular file")
        with opener(path, "rb") as lines:
            for line_number, line in enumerate(_bounded_lines(lines), start=1):
                if line is None:
                    yield LetterError(f"{path}:{line_number}: record longer than {MAX_LETTER_BYTES:,} bytes")
                    continue
                if not line.strip():
                    continue
                try:
                    yield _bulk_letter(path, line_number, json.loads(line))
                except (ValueError, AttributeError, TypeError, RecursionError, LetterError) as error:
                    yield LetterError(f"{path}:{line_number}: {one_line(error)}")
    except LetterError as error:
        yield error
    except (OSError, EOFError, ValueError, zlib_error()) as error:
        yield LetterError(f"{path}: cannot read ({one_line(error)})")


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


class _Lines(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def _bounded_lines(stream: _Lines) -> Iterator[bytes | None]:
    """The lines of a binary stream; None for a line over MAX_LETTER_BYTES, which is read past, not kept."""
    while True:
        line = stream.readline(MAX_LETTER_BYTES + 1)
        if not line:
            return
        if len(line) <= MAX_LETTER_BYTES or line.endswith(b"\n"):
            yield line
            continue
        while (rest := stream.readline(BULK_READ)) and not rest.endswith(b"\n"):
            pass
        yield None


def _bulk_letter(path: Path, line_number: int, record: object) -> Letter:
    if not isinstance(record, dict):
        raise LetterError("not a JSON object")
    text = record.get("text") or record.get("Content") or record.get("content") or ""
    if not isinstance(text, str):
        raise LetterError("text is not a string")
    if len(text) > MAX_LETTER_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_LETTER_BYTES:
        raise LetterError(f"letter text longer than {MAX_LETTER_BYTES:,} bytes")
    url = record.get("url") or record.get("URL") or ""
    url = url if isinstance(url, str) else ""
    letter_id = record.get("id") or _id_from_url(url) or f"{slugify(path.name.split('.')[0])}-{line_number}"
    return make_letter(text, path, {**_metadata_fields(record), "id": letter_id, "url": url})


def _id_from_url(url: str) -> str | None:
    match = re.search(r"officielebekendmakingen\.nl/([\w.-]+?)(?:/ocr|\.html|\.xml|\.pdf)?/?$", url)
    if not match:
        return None
    return f"sgd-{match[1]}" if match[1].isdigit() else match[1]


def _metadata_fields(record: dict[str, object]) -> dict[str, object]:
    """The metadata of a sidecar or bulk record; `url` and `source_url` both name the official page."""
    fields = ("title", "date", "dossier", "number", "sender", "type", "url", "source_url")
    return {key: record.get(key) for key in fields if record.get(key) is not None}


def read_sidecar(path: Path) -> Iterator[Letter | LetterError]:
    base = path.parent
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        yield LetterError(f"{path}: cannot read ({error})")
        return
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            record["file"]
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            yield LetterError(f"{path}:{line_number}: not a letter record ({one_line(error)})")
            continue
        try:
            yield read_record(base, record, where=f"{path}:{line_number}")
        except LetterError as error:
            yield error


def record_path(base: Path, record: dict[str, object], where: str = "") -> Path:
    """The file a sidecar record names, refused unless it is a plain relative name inside `base`.

    The one home of that rule: `qa index build`, `qa update` and `qa fetch` (which deletes an
    old version's file) all go through it (issue 12: numbers, lists, NUL bytes, `../` and
    absolute paths, the sidecar itself)."""
    where = where or str(base / SIDECAR_NAME)
    name = record.get("file")
    if not isinstance(name, str) or not name.strip():
        raise LetterError(f"{where}: file must be a file name, not {name!r}")
    if "\x00" in name:
        raise LetterError(f"{where}: file {name!r} contains a NUL byte")
    folder = base.resolve()
    target = (base / name).resolve()
    if folder not in target.parents:
        raise LetterError(f"{where}: file {name!r} lies outside {base}")
    if target.name == SIDECAR_NAME and target.parent == folder:
        raise LetterError(f"{where}: file {name!r} is the sidecar itself")
    return base / name


def read_record(base: Path, record: dict[str, object], where: str = "") -> Letter:
    """One sidecar record's letter (its `file` relative to `base`); what `qa update` uses to index only new letters."""
    return read_file(record_path(base, record, where), {**_metadata_fields(record), "id": record.get("id")})


def iter_letters(paths: Iterable[Path]) -> Iterator[Letter | LetterError]:
    """Letters from files and folders; a folder's sidecar decides which of its files count."""
    for path in paths:
        if path.is_dir():
            sidecar = path / SIDECAR_NAME
            if sidecar.is_file():
                yield from read_sidecar(sidecar)
                continue
            yield from _read_folder(path)
        elif path.name == SIDECAR_NAME:
            yield from read_sidecar(path)
        elif path.name.endswith(BULK_SUFFIXES):
            yield from read_bulk(path)
        elif path.is_file():
            if path.suffix.lower() not in LETTER_SUFFIXES:  # a .csv or .docx named on the command line is no letter
                yield LetterError(f"{path}: not a letter file ({path.suffix or 'no extension'}); letters are "
                                  f"{', '.join(LETTER_SUFFIXES)} or {' / '.join(BULK_SUFFIXES)} records")
                continue
            try:
                yield read_file(path)
            except LetterError as error:
                yield error
        else:
            yield LetterError(f"{path}: no such file or folder")


_PREFERENCE = {".xml": 0, ".html": 1, ".htm": 1, ".pdf": 2, ".txt": 3}


def _read_folder(folder: Path) -> Iterator[Letter | LetterError]:
    """Every letter below a folder; of `x.xml` and `x.txt` the richer one is read, the other when it fails.

    A symlink that leads out of the folder is refused, as in sidecar mode."""
    twins: dict[Path, list[Path]] = {}
    inside = folder.resolve()
    for path in sorted(folder.rglob("*")):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.is_symlink() and inside not in path.resolve().parents:
            yield LetterError(f"{path}: a link to {path.resolve()}, outside {folder}")
            continue
        if path.name.endswith(BULK_SUFFIXES):
            yield from read_bulk(path)
            continue
        suffix = path.suffix.lower()
        if suffix in _PREFERENCE:
            twins.setdefault(path.with_suffix(""), []).append(path)
    for paths in twins.values():
        paths.sort(key=lambda candidate: _PREFERENCE[candidate.suffix.lower()])
        problems: list[str] = []
        for path in paths:
            try:
                letter = read_file(path)
            except LetterError as error:
                problems.append(str(error))
                continue
            yield from (LetterError(f"{problem}; read {path.name} instead") for problem in problems)
            yield letter
            break
        else:
            yield from (LetterError(problem) for problem in problems)


def read_letters(paths: Iterable[Path]) -> ReadReport:
    """All letters under `paths`, with a message per unreadable file; the last of a duplicate id wins."""
    report = ReadReport()
    by_id: dict[str, Letter] = {}
    for item in iter_letters(paths):
        if isinstance(item, LetterError):
            report.errors.append(str(item))
        else:
            if item.id in by_id:
                report.errors.append(f"{item.source}: duplicate id {item.id} (also in {by_id[item.id].source}); keeping this one")
            by_id[item.id] = item
    report.letters = list(by_id.values())
    return report
