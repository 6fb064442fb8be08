from conftest import FIXTURE_LETTERS

from qa.ingest.cleaning import clean
from qa.ingest.pages import strip_page_furniture


def test_footer_block_is_removed_and_ends_the_page() -> None:
    raw = (
        "eerste regel van de brief die lang genoeg is om als gewone regel te tellen in de tekst. Ook vindt\n\n"
        " \n \nkst-27925-781\nISSN 0921 - 7371\n"
        "’s-Gravenhage 2021 Tweede Kamer, vergaderjaar 2020–2021, 27 925, nr. 781 1\n\n\n"
        "breder binnen NAVO afstemming plaats.\n"
    )
    result = clean(raw)
    assert "ISSN" not in result.text and "kst-27925-781" not in result.text and "Gravenhage" not in result.text
    assert "Ook vindt breder binnen NAVO" in result.text  # the sentence runs on across the page break
    assert len(result.page_starts) == 2
    assert result.text[result.page_starts[1]:].startswith("breder")


def test_hyphenation_across_lines_is_repaired_but_real_hyphens_stay() -> None:
    width_line = "Dit is een regel van een brief die ongeveer zo lang is als de andere regels, aanwe-"
    raw = "\n".join([
        width_line,
        "zigheid van de NAVO-missie in Mazar-e- Sharif en de Noord-",
        "Holland regio blijft lang genoeg om een hele regel te vullen in de brief van de NAVO-",
        "missie.",
    ])
    text = clean(raw).text
    assert "aanwezigheid" in text
    assert "Noord-Holland" in text
    assert "NAVO-missie." in text


def test_broken_lines_join_but_paragraphs_and_headings_stay() -> None:
    raw = (
        "Zoals op 14 april jl. door de NAVO Secretaris-Generaal is aangekondigd, is de\n"
        "afbouw van de NAVO-missie Resolute Support per 1 mei jl. van start gegaan.\n"
        "\n"
        "Veiligheidssituatie\n"
        "\n"
        "Op 1 mei jl. verstreek de deadline.\n"
    )
    assert clean(raw).text.split("\n\n") == [
        "Zoals op 14 april jl. door de NAVO Secretaris-Generaal is aangekondigd, is de afbouw van de NAVO-missie Resolute Support per 1 mei jl. van start gegaan.",
        "Veiligheidssituatie",
        "Op 1 mei jl. verstreek de deadline.",
    ]


def test_question_headings_in_wrapped_answers_stay_separate() -> None:
    raw = (
        "Vraag 1\nBent u bekend met het bericht over de intocht die niet doorgaat dit jaar in het dorp?\n"
        "Antwoord 1\nJa, het is mij bekend dat in Enter en Rijswijk demonstratieve acties waren\n"
        "aangekondigd door KOZP rondom de intocht van Sinterklaas.\n"
    )
    paragraphs = clean(raw).text.split("\n\n")
    assert paragraphs[0] == "Vraag 1"
    assert "Antwoord 1" in paragraphs
    assert any(p.startswith("Ja, het is mij bekend") and p.endswith("Sinterklaas.") for p in paragraphs)


def test_form_feeds_mark_pdf_pages() -> None:
    result = clean("Pagina een tekst.\fPagina twee tekst.\fPagina drie tekst.")
    assert result.page_at(result.text.index("twee")) == 2
    assert result.page_at(result.text.index("drie")) == 3


def test_nothing_but_furniture_is_dropped_from_ocr_text() -> None:
    raw = (FIXTURE_LETTERS / "sgd-0000001421.txt").read_text(encoding="utf-8")
    text = clean(raw).text
    assert "ISSN" not in text and "Tweede Kamer, vergaderjaar 1994-1995, 23 900 VII, nr. 6" not in text
    words = lambda s: [w for w in s.split() if len(w) > 3]  # noqa: E731
    kept = strip_page_furniture(raw.split("\n"))
    assert words(" ".join(kept)) == words(text)


def test_seed_letter_is_clean() -> None:
    text = clean((FIXTURE_LETTERS / "kst-27925-781.txt").read_text(encoding="utf-8")).text
    assert "Uiterlijk 11 september dient dit te zijn afgerond." in text
    assert "Buitenlandse Zaken" in text and "Buiten- landse" not in text
    assert "aanwezigheid" in text and "ISSN" not in text


def test_ministry_pdf_text_layer_loses_its_furniture_and_keeps_its_words() -> None:
    """The 7-page Word export of the verzamelbrief (pdftotext): sidebar, "P agina x van 7", letter-spaced
    words, footnote markers glued to words and footnotes in the middle of a sentence across pages."""
    raw = (FIXTURE_LETTERS / "rijksoverheid-kamerbrief-2023-10-18-verzamelbrief-luchtvaart.txt").read_text(encoding="utf-8")
    result = clean(raw)
    text = result.text
    for furniture in ("P agina", "Pagina 2 van 7", "Kamers tuk", "I E NW/BSK", "Retouradres", "veiligheidsregio e n de"):
        assert furniture not in text, furniture
    assert text.count("Kenmerk") <= 1 and text.count("IENW/BSK-2023/297705") <= 1  # the head keeps its own, once
    assert "samen met de veiligheidsregio en de omgevingsdienst" in text
    assert "uitgevoerd op Schiphol.⁴ In die zin" in text  # the marker no longer reads as a number
    assert "De inschrijving in het register is geldig" in text  # the footnote no longer splits the sentence
    assert "\n\n¹ Kamerstuk" in text and text.index("¹ Kamerstuk") > text.index("Mark Harbers")  # notes close the letter
    assert len(result.page_starts) == 7 and result.page_at(text.index("Verbod korte vluchten Benelux.")) == 1


def test_letter_spaced_npce_and_private_use_bullets() -> None:
    raw = (FIXTURE_LETTERS / "rijksoverheid-kamerbrief-2023-02-03-npce.txt").read_text(encoding="utf-8")
    text = clean(raw).text
    assert "\uf0b7" not in text and "\n\n• Circulair uitvoeren andere transities" in text
    assert "Inf rastructuur" not in text and "Ministerie van\n\nInfrastructuur" not in text  # the sidebar is gone
    assert "die als bijlage is toegevoegd" in text and "a ls" not in text
    assert "afhankelijk we als Nederland zijn van andere landen voor onze grondstoffen¹." in text


def test_rejoining_needs_a_fragment_and_a_word() -> None:
    raw = "De A snelweg en de A rbeidsinspectie.\nDe Arbeidsinspectie en de snelweg. Ook de e n en u zelf.\n"
    text = clean(raw).text
    assert "De A snelweg" in text and "de Arbeidsinspectie." in text and "de en en u zelf" in text


def test_ocr_footnote_without_its_number_becomes_note_one() -> None:
    raw = ("BRIEF VAN DE MINISTER VAN JUSTITIE\nEen kopie van de beschikking voeg ik hierbij.1 De aanvang volgt.\n"
           "De Minister van Justitie, ' Ter inzage gelegd op de bibliotheek.\nF. Korthals Altes\n")
    text = clean(raw).text
    assert "voeg ik hierbij.¹ De aanvang volgt." in text
    assert text.rstrip().endswith("¹ Ter inzage gelegd op de bibliotheek.") and "De Minister van Justitie," in text
    assert "ter inzage gelegd" not in clean("Het rapport is ter inzage gelegd.").text.replace("ter inzage gelegd.", "")


def test_footnotes_are_linked_to_their_markers() -> None:
    """The NPCE letter (a PDF text layer): footnote 1 closes the letter and its marker stands after "grondstoffen"."""
    from qa.ingest.cleaning import footnotes

    text = clean((FIXTURE_LETTERS / "rijksoverheid-kamerbrief-2023-02-03-npce.txt").read_text(encoding="utf-8")).text
    notes = {note.number: note for note in footnotes(text)}
    first = notes[1]
    assert text[first.start : first.end].startswith("¹ Zie ook de Nationale Grondstoffenstrategie")
    assert [text[marker - 12 : marker + 1] for marker in first.markers] == ["grondstoffen¹"]
    assert all(note.start > text.index("Geachte voorzitter") for note in notes.values())
    letter = clean((FIXTURE_LETTERS / "rijksoverheid-kamerbrief-2023-10-18-verzamelbrief-luchtvaart.txt").read_text(encoding="utf-8")).text
    sixth = next(note for note in footnotes(letter) if note.number == 6)
    assert letter[sixth.start : sixth.end].startswith("⁶ Jaarverslag Nederlandse Arbeidsinspectie")
    assert [letter[marker - 9 : marker + 1] for marker in sixth.markers] == ["jaarplan.⁶"]


def test_an_answer_to_kamervragen_keeps_its_head_and_links_each_note_to_its_own_marker() -> None:
    """An Aanhangsel's text layer (pdftotext of the TK API PDF): the series number "2" over "Aanhangsel van de
    Handelingen" stays in the head (read as footnote 2 it moved the head line to the end, and the real note 2 lost
    its marker); markers after a closing quote ("gevaarlijk»»?1", "vuurwerkrampen»3") and after an abbreviation
    ("ADR.2") become superscripts; the page footers are gone."""
    from qa.ingest.cleaning import footnotes

    text = clean((FIXTURE_LETTERS / "ah-tk-20232024-1771.txt").read_text(encoding="utf-8")).text
    assert text.startswith("Tweede Kamer der Staten-Generaal\n\nVergaderjaar 2023–2024\n\n2\n\nAanhangsel van de Handelingen\n\n")
    notes = {note.number: note for note in footnotes(text)}
    assert sorted(notes) == list(range(1, 9))
    opening = {number: text[note.start : note.start + 24] for number, note in notes.items()}
    assert opening[1] == "¹ EenVandaag, 28 maart 2" and opening[2] == "² Accord Européen relati"
    assert opening[3].startswith("³ Torenvlied")
    before = {number: [text[marker - 16 : marker + 1] for marker in note.markers] for number, note in notes.items()}
    for number, glued in ((1, "gevaarlijk»»?¹"), (2, "in de ADR.²"), (3, "vuurwerkrampen»³")):
        assert len(before[number]) == 1 and before[number][0].endswith(glued), (number, before[number])
    assert sum(bool(note.markers) for note in notes.values()) == 7  # the text layer lost marker 4
    assert "Tweede Kamer, vergaderjaar 2023–2024, Aanhangsel" not in text and "ISSN" not in text
    assert all(note.start > text.index("Antwoord 6") for note in notes.values())  # the notes close the letter
