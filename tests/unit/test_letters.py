import gzip
import json
from pathlib import Path

import pytest
from conftest import FIXTURE_LETTERS

from qa.core.errors import LetterError
from qa.ingest.formats import decode_text
from qa.ingest.metadata import metadata_from_text
from qa.ingest.reading import read_file, read_letters


def test_sidecar_metadata_wins_and_official_url_is_built(shared_corpus: Path) -> None:
    report = read_letters([shared_corpus])
    assert report.errors == []
    assert len(report.letters) == 204
    letter = next(letter for letter in report.letters if letter.id == "kst-27925-781")
    assert (letter.dossier, letter.number, letter.date) == ("27925", "781", "2021-05-12")
    assert letter.sender == "Minister van Defensie"
    assert letter.type == "brief_regering"
    assert letter.url == "https://zoek.officielebekendmakingen.nl/kst-27925-781.html"
    assert letter.page_starts[1] > 0


def test_plain_text_without_sidecar_gets_metadata_from_the_text() -> None:
    letter = read_file(FIXTURE_LETTERS / "kst-27925-781.txt")
    assert letter.id == "kst-27925-781"
    assert (letter.dossier, letter.number, letter.date) == ("27925", "781", "2021-05-12")
    assert letter.sender == "Minister van Defensie"
    assert letter.type == "brief_regering"


def test_historical_ocr_letter_metadata() -> None:
    letter = read_file(FIXTURE_LETTERS / "sgd-0000001421.txt")
    assert letter.id == "sgd-0000001421"
    assert letter.date == "1994-10-17"
    assert letter.sender == "Minister van Binnenlandse Zaken"
    assert (letter.dossier, letter.number) == ("23900VII", "6")


def test_officielebekendmakingen_xml() -> None:
    letter = read_file(FIXTURE_LETTERS / "kst-36749-6.xml")
    assert letter.id == "kst-36749-6"
    assert (letter.dossier, letter.number, letter.type) == ("36749", "6", "motie")
    assert letter.date == "2025-09-10"
    assert "Bromet" in (letter.sender or "")
    assert "verzoekt de regering om een afname van grasland zo veel mogelijk tegen te gaan" in letter.text
    assert "OVERHEIDop" not in letter.text  # metadata is not body text


def test_stored_officielebekendmakingen_page() -> None:
    """The text of a zoek.officielebekendmakingen.nl page (10 modern letters of the corpus): the page's notes
    pop-up ("X Noot") and "Naar boven" are gone, the note closes the letter linked to its marker, the date and
    the sender come from the letter, and the short letter is one passage without a letterhead section."""
    from qa.ingest.chunking import chunk_letter
    from qa.ingest.cleaning import footnotes

    letter = read_file(FIXTURE_LETTERS / "kst-32733-53.txt")
    assert (letter.id, letter.number, letter.date, letter.type) == ("kst-32733-53", "53", "2011-12-27", "brief_regering")
    assert letter.ministry is not None and letter.ministry.name == "Defensie"
    assert "X Noot" not in letter.text and "Naar boven" not in letter.text
    assert letter.text.endswith("J. S. J. Hillen\n\n¹ Ter inzage gelegd bij het Centraal Informatiepunt Tweede Kamer.")
    (note,) = footnotes(letter.text)
    assert [letter.text[marker - 9 : marker + 1] for marker in note.markers] == ["toegezegd¹"]
    (passage,) = chunk_letter(letter)
    assert passage.section is None and passage.text.startswith("32 733 Beleidsbrief Defensie")
    assert passage.end == note.start - 2  # the note is no part of the passage


def test_pdf_answer_to_kamervragen() -> None:
    letter = read_file(FIXTURE_LETTERS / "ah-tk-20232024-1076.pdf")
    assert letter.id == "ah-tk-20232024-1076"
    assert letter.type == "antwoord_kamervragen"
    assert letter.date == "2024-02-20"
    assert letter.sender and letter.sender.startswith("Minister De Jonge")
    assert len(letter.page_starts) >= 2
    assert "Vraag 1" in letter.text and "ISSN" not in letter.text


def test_html_page(tmp_path: Path) -> None:
    page = tmp_path / "kst-33279-1.html"
    page.write_text(
        """<html><head><meta name="DC.identifier" content="kst-33279-1"/>
        <meta name="OVERHEIDop.dossiernummer" content="33279"/><meta name="OVERHEIDop.ondernummer" content="1"/>
        <meta name="DC.title" content="Internationale militaire samenwerking; Brief van de minister van Defensie"/>
        <meta name="DCTERMS.issued" content="2012-04-20"/><script>var x = 1;</script></head>
        <body><nav>Menu</nav><div id="broodtekst"><h2>BRIEF VAN DE MINISTER VAN DEFENSIE</h2>
        <p>Den Haag, 20 april 2012</p><p>Hierbij bied ik u de notitie aan.</p></div></body></html>""",
        encoding="utf-8",
    )
    letter = read_file(page)
    assert (letter.id, letter.dossier, letter.number, letter.date) == ("kst-33279-1", "33279", "1", "2012-04-20")
    assert letter.title and letter.title.startswith("Internationale militaire samenwerking")
    assert letter.sender == "Minister van Defensie"
    assert "Hierbij bied ik u de notitie aan." in letter.text
    assert "Menu" not in letter.text and "var x" not in letter.text


def test_bulk_jsonl_gz_records_get_ids_from_their_url(tmp_path: Path) -> None:
    bulk = tmp_path / "docs.jsonl.gz"
    with gzip.open(bulk, "wt", encoding="utf-8") as out:
        out.write(json.dumps({"url": "https://zoek.officielebekendmakingen.nl/0000001421/ocr", "text": "Den Haag, 1 mei 1990\nEen brief."}) + "\n")
        out.write("{not json\n")
    report = read_letters([bulk])
    assert [letter.id for letter in report.letters] == ["sgd-0000001421"]
    assert report.letters[0].date == "1990-05-01"
    assert len(report.errors) == 1 and ":2:" in report.errors[0]


def test_bad_files_are_reported_and_the_rest_is_read(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "junk.pdf").write_bytes(b"\x00\x01 not a pdf")
    (tmp_path / "broken.xml").write_text("<officiele-publicatie><al>open")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x00\x00\xff")
    (tmp_path / "cp1252.txt").write_bytes("Den Haag, 3 mei 2001\nDe coördinatie van het beleid.".encode("cp1252"))
    report = read_letters([tmp_path])
    assert [letter.id for letter in report.letters] == ["cp1252"]
    assert "coördinatie" in report.letters[0].text
    assert len(report.errors) == 4
    assert all(str(tmp_path) in error for error in report.errors)


def test_missing_path_and_sidecar_escape_are_errors(tmp_path: Path) -> None:
    (tmp_path / "letters.jsonl").write_text(json.dumps({"id": "x", "file": "../../etc/passwd"}) + "\n")
    report = read_letters([tmp_path, tmp_path / "nope.txt"])
    assert report.letters == []
    assert any("outside" in error for error in report.errors)
    assert any("no such file" in error for error in report.errors)


def test_duplicate_ids_keep_the_last_and_say_so(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "kst-1-2.txt").write_text(f"Tekst {name}.")
    report = read_letters([tmp_path / "a", tmp_path / "b"])
    assert [letter.text for letter in report.letters] == ["Tekst b."]
    assert "duplicate id kst-1-2" in report.errors[0]


def test_decode_text_rejects_binary() -> None:
    with pytest.raises(LetterError):
        decode_text(b"abc\x00def")


def test_metadata_patterns() -> None:
    found = metadata_from_text("Nr. 12 BRIEF VAN DE STAATSSECRETARIS VAN FINANCIËN\nAan de Voorzitter\n"
                               "Den Haag, 3 februari 2023\n...\nTweede Kamer, vergaderjaar 2022–2023, 32 140, nr. 12 1")
    assert found == {"date": "2023-02-03", "sender": "Staatssecretaris van Financiën", "type": "brief_regering",
                     "dossier": "32140", "number": "12"}


@pytest.mark.parametrize(("name", "date"), [
    ("sgd-0000033223.txt", "1991-03-07"),  # "'" on its own line before "s-Gravenhage, 7 maart 1991"
    ("sgd-0000038600.txt", "1990-01-19"),  # "19januari 1990": OCR glued day and month
    ("sgd-0000001421.txt", "1994-10-17"),
])
def test_dates_from_the_date_line_of_ocr_letters(name: str, date: str) -> None:
    assert read_file(FIXTURE_LETTERS / name).date == date


def test_date_line_variants() -> None:
    for line, date in (("Den Haag, 12 mei 2021", "2021-05-12"), ("'s-Gravenhage, 3 maart 1986", "1986-03-03"),
                       ("'s.Gravenhage, 26 februari 1991", "1991-02-26"), ("s Gravenhage, 15januari 1980", "1980-01-15"),
                       ("Den Haag, maandag 4 september 2023", "2023-09-04")):
        assert metadata_from_text(f"BRIEF VAN DE MINISTER VAN DEFENSIE\n{line}\nTekst.")["date"] == date, line


def test_senders_from_the_text_of_letters_without_a_sidecar() -> None:
    """OCR headings over two lines and with hyphenation, a ministry PDF signed at the end: all in the register."""
    cases = {
        "sgd-0000033223.txt": ["Defensie", "BZ", "Defensie"],  # "BUITEN-LANDSE ZAKEN"
        "sgd-0000038600.txt": ["Justitie"],
        "rijksoverheid-kamerbrief-2023-10-18-verzamelbrief-luchtvaart.txt": ["IenW"],  # "DE MINISTER VAN ... WATERSTAAT,"
        "rijksoverheid-kamerbrief-2023-02-03-npce.txt": ["IenW"],
    }
    for name, expected in cases.items():
        letter = read_file(FIXTURE_LETTERS / name)
        assert [s.ministry.abbreviation if s.ministry else None for s in letter.signers] == expected, (name, letter.sender)
    heading = metadata_from_text("BRIEF VAN DE MINISTER VAN WELZIJN, VOLKSGEZONDHEID\nEN CULTUUR\nAan de Voorzitter van de Tweede Kamer\n")
    assert heading["sender"] == "Minister van Welzijn, Volksgezondheid en Cultuur"
