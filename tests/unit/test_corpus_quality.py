"""Issue 15's 'done when', measured on the shared corpus with eval/corpus_quality.py (one home of the patterns)."""

from pathlib import Path

import pytest
from conftest import load_script

from qa.ingest.reading import read_letters

MAX_NON_BODY_SECTION_SHARE = 0.01  # the bound: at most 1 % of the passages


@pytest.fixture(scope="module")
def figures(shared_corpus: Path) -> dict:
    quality = load_script("eval/corpus_quality.py")
    report = read_letters([shared_corpus])
    assert not report.errors
    return quality.measure(report.letters)


def test_sections_are_headings_of_the_body(figures: dict) -> None:
    assert figures["non_body_section_share"] <= MAX_NON_BODY_SECTION_SHARE, figures["non_body_sections_by_kind"]


def test_no_furniture_pattern_of_the_corpus_stands_in_a_passage(figures: dict) -> None:
    """FURNITURE_PATTERNS (eval/corpus_quality.py) lists what the corpus's passages held before issue 15."""
    assert figures["furniture_patterns"] == {}, figures["furniture_examples"]


def test_the_furniture_patterns_catch_what_the_corpus_had() -> None:
    quality = load_script("eval/corpus_quality.py")
    seen = ["P agina 1 van 7", "Kamers tuk 3 6200-XII- 60", "I E NW/BSK-2023/297705", "Inf rastructuur en", "2515 XP D en Haag",
            "veiligheidsregio e n de omgevingsdienst", "die a ls bijlage", "Kenmerk I E NW/BSK-2023/33017", "T 0 7 0-456 0000",
            "> Retouradres Postbus 20901", "ISSN 0921 • 7371", "\uf0b7 Circulair", "uitgevoerd op Schiphol.4 In die zin"]
    for text in seen:
        assert quality.furniture_in(text), text
    for text in ("uitgevoerd op Schiphol.⁴ In die zin", "de veiligheidsregio en de omgevingsdienst", "Kamerstuk 36200-XII-60",
                 "CO2-opslag en 5 procent", "artikel 3.2 van de wet"):
        assert not quality.furniture_in(text), text


def test_every_sender_has_a_register_ministry_and_the_filter_no_fragments(figures: dict) -> None:
    assert figures["letters_with_sender"] > 100
    assert figures["without_ministry_ids"] == []
    assert figures["facet_fragments"] == []
    assert figures["ministry_facets"] >= 20


def test_letters_with_a_date_line_have_a_date(figures: dict) -> None:
    assert figures["letters_with_date_line"] >= 90
    assert figures["date_line_but_no_date"] == []


def test_cleaning_keeps_every_answer_span_of_the_question_set(figures: dict) -> None:
    assert figures["answer_spans"] > 150
    assert figures["answer_spans_lost"] == []


def test_the_section_patterns_catch_what_the_corpus_had() -> None:
    quality = load_script("eval/corpus_quality.py")
    for section in ("Tweede Kamer der Staten-Generaal", "Tweede Kamer der Staten Genetaai", "Voorgesteld tijdens het notaoverleg van",
                    "Kamerstukken", "Kenmerk", "Aanhangsel van de Handelingen", "Postbus 20018", "Bijlage(n)", "Rijnstraat 8",
                    "1 Zie ook de Nationale Grondstoffenstrategie (Kamerstuk 2022Z24775)", "Hoofdstuk VI Ministerie van Justitie"):
        assert quality.section_kind(section), section
    for section in ("Veiligheidssituatie", "Beëindiging van de operatie", "Vraag 3", "3. Tiende update zomerdrukte Schiphol", "Tot slot"):
        assert quality.section_kind(section) is None, section
