"""Ingest faults: every bad file gets one clear message, the rest is read, and `qa index build` indexes every
good letter, prints a summary and exits 3 (EXIT_PARTIAL). (Basic cases — empty, junk PDF, broken XML, cp1252, duplicate ids —
are in tests/unit/test_letters.py; these are the rest, and the whole mix end to end.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import TEST_MODEL
from pypdf import PdfWriter

from qa.core.settings import SAMPLE_CORPUS
from qa.ingest.chunking import chunk_letter
from qa.ingest.reading import read_file, read_letters

PDF = SAMPLE_CORPUS / "letters" / "ah-tk-20232024-1076.pdf"
GOOD = "Den Haag, 3 mei 2021\n\nDe minister van Defensie meldt dat de proef met drones op {day} maart 2021 begon."


def write_faults(folder: Path) -> dict[str, str]:
    """Every kind of bad file; returns file name -> what its message must say."""
    folder.mkdir(parents=True, exist_ok=True)
    data = PDF.read_bytes()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "whitespace.txt").write_text(" \n\t\n")
    (folder / "junk.pdf").write_bytes(os.urandom(2048))
    (folder / "garbage.xml").write_bytes(b"\x00\x01\x02" + os.urandom(512))
    (folder / "truncated.pdf").write_bytes(data[: len(data) // 2])
    writer = PdfWriter(clone_from=str(PDF))
    writer.encrypt("geheim")
    writer.write(str(folder / "encrypted.pdf"))
    (folder / "malformed.xml").write_text("<officiele-publicatie><kamerstuk><al>niet gesloten</kamerstuk>")
    (folder / "nul-in-text.txt").write_bytes(b"Den Haag\x00\x00binary")
    (folder / "a-folder.txt").mkdir()  # a directory named like a letter is not a letter: skipped silently
    return {"empty.txt": "no text", "whitespace.txt": "no text", "junk.pdf": "not a readable PDF", "garbage.xml": "malformed XML",
            "truncated.pdf": "not a readable PDF", "encrypted.pdf": "encrypted PDF", "malformed.xml": "malformed XML",
            "nul-in-text.txt": "binary data"}


def test_every_bad_file_has_its_own_message_and_good_letters_are_read(tmp_path: Path) -> None:
    expected = write_faults(tmp_path)
    (tmp_path / "latin1.txt").write_bytes("Den Haag, 3 mei 2001\nHet beleid \x81 voor coördinatie.".encode("latin-1"))
    (tmp_path / "cp1252.txt").write_bytes("Den Haag, 3 mei 2001\nDe “coördinatie” – van het beleid.".encode("cp1252"))
    report = read_letters([tmp_path])
    assert sorted(letter.id for letter in report.letters) == ["cp1252", "latin1"]
    assert "“coördinatie” –" in next(letter.text for letter in report.letters if letter.id == "cp1252")
    assert "coördinatie" in next(letter.text for letter in report.letters if letter.id == "latin1")
    assert len(report.errors) == len(expected), report.errors
    for name, says in expected.items():
        assert any(name in error and says in error for error in report.errors), (name, says, report.errors)


def test_sidecar_with_missing_fields_and_unreadable_targets(tmp_path: Path) -> None:
    (tmp_path / "letters").mkdir()
    (tmp_path / "letters" / "a.txt").write_text(GOOD.format(day=1))
    (tmp_path / "letters" / "b.txt").write_text(GOOD.format(day=2))
    (tmp_path / "letters" / "dir.txt").mkdir()
    records = [
        {"id": "kst-1-1", "file": "letters/a.txt", "title": "Volledig"},
        {"file": "letters/b.txt"},  # no id, title, date: the id comes from the file name
        {"id": "kst-1-3", "title": "geen bestand"},  # no file field
        {"id": "kst-1-4", "file": "letters/missing.txt"},
        {"id": "kst-1-5", "file": "letters/dir.txt"},  # a directory: the read fails
        "not an object",
        {"id": "kst-1-6", "file": "../../etc/passwd"},
    ]
    (tmp_path / "letters.jsonl").write_text("\n".join(json.dumps(record) for record in records) + "\n{broken json\n")
    report = read_letters([tmp_path])
    assert sorted(letter.id for letter in report.letters) == ["b", "kst-1-1"]
    errors = "\n".join(report.errors)
    assert len(report.errors) == 6, errors
    for says in (":3: not a letter record", "missing.txt: cannot read", "dir.txt: not a regular file", ":6: not a letter record",
                 ":7: file '../../etc/passwd' lies outside", ":8: not a letter record"):
        assert says in errors, (says, errors)


@contextmanager
def as_nobody() -> Iterator[None]:
    """Root reads every file whatever its mode, so drop the effective uid for a moment to make a read fail."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_a_file_without_read_permission_is_reported(tmp_path: Path) -> None:
    import lxml.etree  # noqa: F401
    import pypdf  # noqa: F401 - imported as root, before the uid drops

    folder = Path(tempfile.mkdtemp(dir="/tmp" if os.geteuid() == 0 else None))  # pytest's tmp_path is 0700 root
    try:
        folder.chmod(0o755)
        (folder / "open.txt").write_text(GOOD.format(day=1))
        (folder / "secret.txt").write_text(GOOD.format(day=2))
        (folder / "secret.txt").chmod(0o000)
        (folder / "open.txt").chmod(0o644)
        with as_nobody():
            report = read_letters([folder])
        assert [letter.id for letter in report.letters] == ["open"]
        assert len(report.errors) == 1 and "secret.txt: cannot read (Permission denied)" in report.errors[0]
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


@pytest.mark.slow  # 2-3 s: the full suite's (the fast tier stays within a minute)
def test_a_5_mb_letter_is_read_and_chunked_in_seconds(tmp_path: Path) -> None:
    paragraph = "De minister heeft besloten dat de proef met drones in 2021 doorgaat en later wordt geëvalueerd. " * 50
    (tmp_path / "big.txt").write_text("Den Haag, 3 mei 2021\n\n" + (paragraph + "\n\n") * 1100)
    assert (tmp_path / "big.txt").stat().st_size > 5_000_000
    started = time.perf_counter()
    letter = read_file(tmp_path / "big.txt")
    passages = chunk_letter(letter)
    assert time.perf_counter() - started < 20
    assert len(passages) > 1000 and all(letter.text[p.start : p.end] == p.text for p in passages[:50])


def test_thousands_of_files_in_one_folder(tmp_path: Path) -> None:
    for n in range(3000):
        (tmp_path / f"brief-{n:04d}.txt").write_text(f"Den Haag, 3 mei 2021\n\nBrief nummer {n} over de drones.")
    for n in range(0, 3000, 500):
        (tmp_path / f"brief-{n:04d}.pdf").write_bytes(b"%PDF-1.4 kapot")  # preferred over the .txt, and broken
    started = time.perf_counter()
    report = read_letters([tmp_path])
    assert time.perf_counter() - started < 60
    # The broken PDF twins are reported and their .txt twins read instead (issue 12, item 20; it was 2,994 letters).
    assert len(report.letters) == 3000 and len(report.errors) == 6
    assert all("not a readable PDF" in error and error.endswith(".txt instead") for error in report.errors)


def test_duplicate_ids_across_formats_keep_one_and_say_which(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "kst-1-2.txt").write_text("Eerste versie.")
    bulk = tmp_path / "bulk.jsonl"
    bulk.write_text(json.dumps({"id": "kst-1-2", "text": "Tweede versie."}) + "\n" + json.dumps({"id": "kst-1-2", "text": "Derde."}) + "\n")
    report = read_letters([tmp_path / "a", bulk])
    assert [letter.text for letter in report.letters] == ["Derde."]
    assert len(report.errors) == 2 and all("duplicate id kst-1-2" in error for error in report.errors)


@pytest.mark.model
@pytest.mark.slow
def test_qa_index_build_indexes_every_good_letter_and_exits_1(tmp_path: Path) -> None:
    """The whole mix, as a user runs it: per-file messages, a summary line, exit 3, and an index of the good ones."""
    letters = tmp_path / "letters"
    expected = write_faults(letters)
    (letters / "goed-1.txt").write_text(GOOD.format(day=1))
    (letters / "goed-2.txt").write_bytes(GOOD.format(day=2).replace("proef", "proef – één").encode("cp1252"))
    index = tmp_path / "index"
    env = {**os.environ, "QA_MODEL": TEST_MODEL}
    run = subprocess.run([sys.executable, "-m", "qa", "index", "build", str(letters), "--index", str(index), "--no-progress"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 3, run.stderr  # EXIT_PARTIAL
    assert "Traceback" not in run.stderr
    for name in expected:
        assert f"skipped: {letters / name}:" in run.stderr, name
    assert f"{len(expected)} file(s) could not be read" in run.stderr
    assert "2 letters" in run.stdout
    info = subprocess.run([sys.executable, "-m", "qa", "index", "info", "--index", str(index), "--json"], capture_output=True, text=True, env=env)
    assert json.loads(info.stdout)["letters"] == 2
