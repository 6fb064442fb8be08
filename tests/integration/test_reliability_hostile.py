"""Hostile letters (issue 12): each bad file is reported and skipped, nothing outside the letters
folder is read, nothing hangs or takes quadratic time, and a build that skipped files exits with
EXIT_PARTIAL (3), told apart from a crash (1) and a clear error (2)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import TEST_MODEL
from hostile import HOSTILE_PDFS, TEXT, deep_xml, encrypted_pdf, good_pdf, write_hostile

from qa.cli import EXIT_PARTIAL
from qa.core.errors import LetterError
from qa.core.settings import SAMPLE_CORPUS
from qa.ingest.chunking import split_sentences
from qa.ingest.cleaning import clean
from qa.ingest.letter import Letter
from qa.ingest.reading import MAX_LETTER_BYTES, read_bulk, read_file, read_letters

# --- item 1: PDFs that make pypdf raise anything --------------------------------------------------


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name == "two-million-operators.pdf" else name
                                  for name in sorted(HOSTILE_PDFS)])  # pypdf needs ~5 s to give up on that one
def test_a_hostile_pdf_is_one_message_not_a_crash(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(HOSTILE_PDFS[name]())
    with pytest.raises(LetterError) as caught:
        read_file(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and ("not a readable PDF" in message or "encrypted PDF" in message), message


def test_an_aes_pdf_with_only_an_owner_password_is_read(tmp_path: Path) -> None:
    """Needs the `cryptography` package (a dependency now); without it pypdf raised DependencyError."""
    path = tmp_path / "owner-only.pdf"
    path.write_bytes(encrypted_pdf(user_password=""))
    letter = read_file(path)
    assert "Kamervragen" in letter.text or len(letter.text) > 1000
    user = tmp_path / "user.pdf"
    user.write_bytes(encrypted_pdf(user_password="geheim"))
    with pytest.raises(LetterError, match="encrypted PDF"):
        read_file(user)


def test_a_good_hand_built_pdf_is_read(tmp_path: Path) -> None:
    """The builders make valid PDFs; only the hostile part makes them fail."""
    path = tmp_path / "good.pdf"
    path.write_bytes(good_pdf())
    assert "proef met drones" in read_file(path).text


# --- item 3: linear-time sentence splitting and cleaning ----------------------------------------

# 300 kB: the quadratic splitter took 19-70 s for 40 kB, so this size still fails it loudly, and the fast loop stays
# fast (1 MB took 26 s of it); the 10x-in-size, <30x-in-time check is what guards linearity.
SIZE = 300_000
PATHOLOGICAL = {
    "dots": "." * SIZE + " x",
    "question marks": "?" * SIZE + "x",
    "letters then ?": "a" * SIZE + "?",
    "dots before capitals": ". A" * (SIZE // 3),
    "abbreviations": "nr. a " * (SIZE // 6),
    "running footers": "Tweede Kamer, vergaderjaar " * (SIZE // 27) + "x",
    "hyphenated lines": "ab-\n" * (SIZE // 4),
    "one long word": "a" * SIZE + " b",
}


def _seconds_to_split_and_clean(text: str) -> float:
    """Best of three, so a busy machine's pauses do not decide it."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        split_sentences(text)
        clean(text)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_text_is_split_and_cleaned_in_linear_time(name: str) -> None:
    """Were 39.6 s ("." x 40,000 + " x"), 70 s ("?" x 40,000) and 18.9 s at 40 kB: quadratic. Now one pass:
    ten times the text takes about ten times as long (a quadratic pass would take a hundred times),
    whatever else the machine is doing; measured 0.05-1.1 s for a megabyte on 2 busy cores."""
    text = PATHOLOGICAL[name]
    spans = split_sentences(text)
    cleaned = clean(text)
    assert spans and all(0 <= start < end <= len(text) for start, end in spans)
    assert cleaned.text.strip()
    tenth = text[: len(text) // 10]
    small, full = _seconds_to_split_and_clean(tenth), _seconds_to_split_and_clean(text)
    assert full < 30 * max(small, 0.005), f"{name}: {small:.3f} s for {len(tenth):,} characters, {full:.2f} s for {len(text):,}"


def test_the_linear_splitter_still_knows_abbreviations_and_initials() -> None:
    text = "Zie bijv. art. 5. De heer J.A. de Vries kwam. Het kost ca. 5 mln. euro! Klaar? Ja."
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Zie bijv. art. 5.", "De heer J.A. de Vries kwam.", "Het kost ca. 5 mln. euro!", "Klaar?", "Ja."]
    assert split_sentences("." * 50_000 + " x") == [(0, 50_002)]


# --- item 4: deep XML -------------------------------------------------------------------------------


def test_xml_nested_two_thousand_deep_is_read_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "diep.xml"
    path.write_bytes(deep_xml(2_000))
    assert read_file(path).text == "Diep geneste tekst."


# --- item 5: bulk files -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_bulk_line_over_the_limit_is_skipped_without_holding_it_in_memory(tmp_path: Path) -> None:
    """A gzip of one 400 MB line and a good line, read under an address-space limit of +250 MB:
    the long line is one message, the good letter is read (it raised MemoryError before)."""
    bulk = tmp_path / "bom.jsonl.gz"
    with gzip.open(bulk, "wb", compresslevel=1) as out:
        out.write(b'{"id": "groot", "text": "')
        chunk = b"a" * (1 << 20)
        for _ in range(400):
            out.write(chunk)
        out.write(b'"}\n')
        out.write(json.dumps({"id": "kst-1-1", "text": TEXT}).encode() + b"\n")
    assert bulk.stat().st_size < 3_000_000
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from qa.ingest.letter import Letter
        from qa.ingest.reading import read_bulk
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        usage = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (usage + 250_000_000, hard))
        items = list(read_bulk(Path({str(bulk)!r})))
        print([item.id if isinstance(item, Letter) else "error: " + str(item) for item in items])
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert run.returncode == 0, run.stderr[-2000:]
    items = eval(run.stdout)  # noqa: S307 - our own child's repr of a list of strings
    assert items[1] == "kst-1-1"
    assert items[0].startswith("error: ") and f"record longer than {MAX_LETTER_BYTES:,} bytes" in items[0]


def test_bulk_records_of_the_wrong_shape_are_messages(tmp_path: Path) -> None:
    bulk = tmp_path / "vreemd.jsonl"
    lines = [json.dumps(value) for value in ([1, 2], "tekst", {"text": 42}, {"text": ["a"]}, {"text": TEXT, "url": 7})]
    bulk.write_text("\n".join(lines) + "\n" + "[" * 100_000 + "\n" + "\xff\n")
    items = list(read_bulk(bulk))
    letters = [item for item in items if isinstance(item, Letter)]
    assert len(letters) == 1 and letters[0].url is None
    assert len(items) == 7


# --- items 6, 8, 15, 23: sidecar records and folders that point elsewhere ---------------------------


def test_sidecar_file_fields_of_the_wrong_type_or_place_are_messages(tmp_path: Path) -> None:
    (tmp_path / "letters").mkdir()
    (tmp_path / "letters" / "goed.txt").write_text(TEXT)
    fifo = tmp_path / "letters" / "fifo.txt"
    os.mkfifo(fifo)
    secret = tmp_path.parent / f"{tmp_path.name}-secret.txt"
    secret.write_text("Den Haag, 1 mei 2021\n\nGeheim.")
    records = [
        {"id": "kst-1-1", "file": "letters/goed.txt", "url": "https://example.org/kst-1-1"},
        {"id": "kst-1-2", "file": 12}, {"id": "kst-1-3", "file": None}, {"id": "kst-1-4", "file": ["a"]},
        {"id": "kst-1-5", "file": "letters/goed\x00.txt"}, {"id": "kst-1-6", "file": str(secret)},
        {"id": "kst-1-7", "file": "letters/fifo.txt"}, {"id": "kst-1-8", "file": "letters.jsonl"},
    ]
    (tmp_path / "letters.jsonl").write_text("\n".join(json.dumps(record) for record in records) + "\n")
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(read_letters([tmp_path])), daemon=True)
    worker.start()
    worker.join(30)
    assert done, "reading the letters hung (a FIFO in the sidecar blocked the build)"
    report = done[0]
    assert [letter.id for letter in report.letters] == ["kst-1-1"]  # type: ignore[attr-defined]
    assert report.letters[0].url == "https://example.org/kst-1-1"  # type: ignore[attr-defined]  # `url`, not only `source_url`
    errors = "\n".join(report.errors)  # type: ignore[attr-defined]
    assert len(report.errors) == 7, errors  # type: ignore[attr-defined]
    for says in (":2: file must be a file name, not 12", ":3: file must be a file name, not None", ":4: file must be",
                 ":5: file 'letters/goed\\x00.txt' contains a NUL byte", f":6: file '{secret}' lies outside",
                 "fifo.txt: not a regular file", ":8: file 'letters.jsonl' is the sidecar itself"):
        assert says in errors, (says, errors)


def test_qa_update_does_not_index_a_record_that_points_outside_the_folder(tmp_path: Path) -> None:
    from qa.ingest.sources import letters_to_index

    secret = tmp_path / "secret.txt"
    secret.write_text("Den Haag, 1 mei 2021\n\nHet wachtwoord is geheim.")
    folder = tmp_path / "letters"
    (folder / "letters").mkdir(parents=True)
    (folder / "letters" / "kst-1-1.txt").write_text(TEXT)
    (folder / "letters.jsonl").write_text(json.dumps({"id": "kst-1-1", "file": "letters/kst-1-1.txt"}) + "\n"
                                          + json.dumps({"id": "kst-1-2", "file": str(secret)}) + "\n"
                                          + json.dumps({"id": "kst-1-3", "file": "../secret.txt"}) + "\n")
    letters, errors = letters_to_index(folder, set(), [])
    assert [letter.id for letter in letters] == ["kst-1-1"]
    assert len(errors) == 2 and all("lies outside" in error for error in errors), errors


def test_a_folder_without_sidecar_does_not_follow_links_out_of_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("Den Haag, 1 mei 2021\n\nGeheim buiten de map.")
    folder = tmp_path / "letters"
    folder.mkdir()
    (folder / "goed.txt").write_text(TEXT)
    (folder / "link.txt").symlink_to(outside)
    (folder / "inside.txt").symlink_to(folder / "goed.txt")  # a link inside the folder is fine
    report = read_letters([folder])
    assert sorted(letter.id for letter in report.letters) == ["goed", "inside"]
    assert len(report.errors) == 1 and "link.txt: a link to" in report.errors[0] and "outside" in report.errors[0]


# --- item 20: the readable twin -----------------------------------------------------------------------


def test_an_unreadable_preferred_file_falls_back_to_its_readable_twin(tmp_path: Path) -> None:
    (tmp_path / "x.xml").write_text("<officiele-publicatie><al>niet gesloten</officiele-publicatie>")
    (tmp_path / "x.txt").write_text(TEXT)
    (tmp_path / "y.pdf").write_bytes(b"%PDF-1.4 kapot")
    (tmp_path / "y.txt").write_text(TEXT.replace("drones", "satellieten"))
    (tmp_path / "z.xml").write_text("<kapot")  # no twin: reported, not read
    report = read_letters([tmp_path])
    assert sorted(letter.id for letter in report.letters) == ["x", "y"]
    assert sorted(letter.source.rsplit("/", 1)[1] for letter in report.letters) == ["x.txt", "y.txt"]  # type: ignore[union-attr]
    assert len(report.errors) == 3
    assert any("x.xml: malformed XML" in error and error.endswith("read x.txt instead") for error in report.errors)
    assert any("y.pdf: not a readable PDF" in error and error.endswith("read y.txt instead") for error in report.errors)


# --- the whole mix, as cron runs it -----------------------------------------------------------------


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.slow
def test_building_the_sample_and_every_hostile_case_exits_partial_and_indexes_every_good_letter(tmp_path: Path) -> None:
    """`qa index build qa/sample hostile/ sidecar/ bulk.jsonl`: one `skipped:` line per bad file, exit 3
    (EXIT_PARTIAL, not 1 = crash), and `qa index info` counts the 43 sample letters and the good hostile ones."""
    hostile = tmp_path / "hostile"
    expected = write_hostile(hostile)
    (hostile / "twin.xml").write_text("<kapot")
    (hostile / "twin.txt").write_text(TEXT)
    sidecar = tmp_path / "sidecar"
    (sidecar / "letters").mkdir(parents=True)
    shutil.copy(SAMPLE_CORPUS / "letters" / "kst-27925-781.txt", sidecar / "letters" / "a.txt")
    os.mkfifo(sidecar / "letters" / "fifo.txt")
    records = [{"id": "kst-27925-781-kopie", "file": "letters/a.txt"}, {"id": "x1", "file": 5}, {"id": "x2", "file": "/etc/passwd"},
               {"id": "x3", "file": "letters/fifo.txt"}, {"id": "x4", "file": "letters.jsonl"}]
    (sidecar / "letters.jsonl").write_text("\n".join(json.dumps(record) for record in records) + "\n")
    bulk = tmp_path / "bulk.jsonl"
    bulk.write_text(json.dumps({"id": "bulk-1", "text": TEXT}) + "\n" + "[" * 10_000 + "\n")
    index = tmp_path / "index"
    env = {**os.environ, "QA_MODEL": TEST_MODEL}
    run = subprocess.run([sys.executable, "-m", "qa", "index", "build", str(SAMPLE_CORPUS), str(hostile), str(sidecar), str(bulk),
                          "--index", str(index), "--no-progress"], capture_output=True, text=True, env=env, timeout=900)
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.returncode == EXIT_PARTIAL, run.stderr[-3000:]
    bad = [name for name, says in expected.items() if says]
    for name in bad:
        assert f"skipped: {hostile / name}:" in run.stderr, name
    skipped = [line for line in run.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == len(bad) + 1 + 4 + 1, "\n".join(skipped)  # + the twin, 4 sidecar records, 1 bulk line
    info = subprocess.run([sys.executable, "-m", "qa", "index", "info", "--index", str(index), "--json"], capture_output=True, text=True, env=env)
    good_hostile = 3  # aes-owner-only.pdf, deep-nesting.xml, twin.txt
    assert json.loads(info.stdout)["letters"] == 43 + good_hostile + 1 + 1  # + the sidecar copy, the bulk letter


# --- item 21: letter text on a terminal -------------------------------------------------------------


def test_qa_search_and_ask_strip_control_characters_from_letters(tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    """A letter with OSC 0 (window title), CSI 2J (clear screen) and OSC 52 (clipboard write) in its title and text."""
    from click.testing import CliRunner

    import qa.answer.engine
    from qa.cli import main
    from qa.index import local as index_store
    from qa.ingest.reading import make_letter

    evil = make_letter(
        "Den Haag, 3 mei 2021\n\nDe proef met drones \x1b]0;gehackt\x07 begon op 1 maart 2021 \x1b[2J boven de Noordzee."
        " De kosten \x1b]52;c;ZWNobyBoaQ==\x07 van de proef met drones zijn 5 miljoen euro.\x9b6n",
        None, {"id": "kst-9-9", "title": "Drones \x1b[31mrood\x1b[0m", "sender": "Minister\x1b]8;;http://x\x07"},
    )
    index_dir = tmp_path / "index"
    index_store.update(index_dir, embedder, add=[evil], replace_all=True)
    monkeypatch.setattr(qa.answer.engine, "Embedder", lambda name=None, device=None, backend=None: embedder)
    runner = CliRunner()
    searched = runner.invoke(main, ["search", "proef met drones", "--index", str(index_dir)])
    asked = runner.invoke(main, ["ask", "Wanneer begon de proef met drones?", "--index", str(index_dir)])
    for result in (searched, asked):
        assert result.exit_code == 0, result.output
        assert "drones" in result.output.lower()  # the letter is shown (answered, or as the closest passage)
        assert not any(character in result.output for character in "\x1b\x07\x9b"), repr(result.output)


# --- issue 29: a PDF whose text is far larger than its file -------------------------------------------

AMPLIFIED_SECONDS = 60  # each file is refused in ~1-6 s on 2 busy cores; the old reader took minutes, then the build hours

READ_AMPLIFIED = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from qa.ingest.reading import read_letters
    started = time.perf_counter()
    report = read_letters([Path(sys.argv[1])])
    print(json.dumps({"letters": {letter.id: len(letter.text) for letter in report.letters},
                      "errors": [str(error) for error in report.errors], "seconds": time.perf_counter() - started}))
""")


@pytest.mark.slow  # a child process reading 10 million characters of PDF text: 6 s
def test_a_pdf_that_amplifies_into_millions_of_characters_is_one_message(tmp_path: Path) -> None:
    """10,000 pages sharing one content stream (1.6 MB, 9.3 MB of text), and 1,000 pages that each draw the same
    paragraph 200 times (0.2 MB of file, 186 MB of text): were read whole (the first in ~7 s; the second in minutes,
    and embedding either takes hours); now each is one message, before or while its text is extracted."""
    from hostile import amplified_pdf

    from qa.ingest.formats import MAX_PDF_CHARS, MAX_PDF_PAGES

    folder = tmp_path / "letters"
    folder.mkdir()
    (folder / "pages.pdf").write_bytes(amplified_pdf(pages=10_000, draws=1))
    (folder / "draws.pdf").write_bytes(amplified_pdf(pages=1_000, draws=200))
    (folder / "good.pdf").write_bytes(good_pdf())
    (folder / "few-draws.pdf").write_bytes(amplified_pdf(pages=3, draws=2))  # amplifying a little is a real letter's way
    run = subprocess.run([sys.executable, "-c", READ_AMPLIFIED, str(folder)], capture_output=True, text=True, timeout=AMPLIFIED_SECONDS,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert sorted(report["letters"]) == ["few-draws", "good"], report
    assert report["letters"]["few-draws"] > 5_000
    errors = sorted(report["errors"])
    assert len(errors) == 2, errors
    assert errors[0].startswith(str(folder / "draws.pdf")) and f"text runs past {MAX_PDF_CHARS:,} characters" in errors[0]
    assert errors[1].startswith(str(folder / "pages.pdf")) and f"10,000 pages, more than {MAX_PDF_PAGES:,}" in errors[1]
