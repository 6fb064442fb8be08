import numpy as np
import pytest
from conftest import BACKENDS

from qa.answer.answering import DECLINE, DEFAULT_POLICY
from qa.answer.confidence import load_model
from qa.answer.engine import FILTERED_OUT, Engine, Turn, retrieval_query
from qa.answer.reader import QuestionView, has_fact
from qa.answer.retrieval import Filters


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, engine: Engine) -> Engine:
    """Every test here runs on the local index and on the same index in Milvus (tests/conftest.py, milvus_copy)."""
    return engine if request.param == "local" else request.getfixturevalue("milvus_engine")


def test_seed_question_is_answered_with_a_cited_quote(engine) -> None:
    answer = engine.ask("Wanneer moet de terugtrekking uit Afghanistan afgerond zijn?")
    assert not answer.abstained
    first = answer.citations[0]
    assert first.letter_id == "kst-27925-781"
    assert any("11 september" in citation.quote for citation in answer.citations)
    assert first.url == "https://zoek.officielebekendmakingen.nl/kst-27925-781.html"
    assert f"[{first.n}]" in answer.text


def test_every_quote_stands_in_its_cited_passage(engine) -> None:
    questions = [
        "Wanneer moet de terugtrekking uit Afghanistan afgerond zijn?",
        "Wat kost de registratie van een drone in Nederland?",
        "Waarom gaat de sinterklaasintocht in Enter niet door?",
        "Hoeveel minder grondstoffen wil het kabinet gebruiken in 2030?",
    ]
    for question in questions:
        answer = engine.ask(question)
        assert not answer.abstained and answer.citations, (question, answer.text, answer.signals, answer.decline_reason)  # all four are answerable
        passages = {hit.passage.id: hit for hit in answer.hits}
        for citation in answer.citations:
            hit = passages[citation.passage_id]
            assert citation.quote in hit.passage.text
            assert hit.letter.text[citation.quote_start : citation.quote_end] == citation.quote
            assert f"[{citation.n}]" in answer.text
            assert citation.letter_id == hit.letter.id and citation.page == hit.passage.page


def test_unanswerable_questions_are_declined_with_passages(engine) -> None:
    for question in ("Wanneer gaat Lelystad Airport open voor vakantievluchten?", "Hoeveel F-35 straaljagers heeft Nederland in totaal besteld?"):
        answer = engine.ask(question)
        assert answer.abstained, (question, answer.text, answer.signals)
        assert answer.text == DECLINE and answer.citations == []
        assert answer.hits and answer.confidence_label is None and answer.decline_reason


def test_a_name_no_letter_mentions_is_declined_with_that_reason(engine) -> None:
    answer = engine.ask("Welke boete heeft de ACM aan Nexperia opgelegd?")
    assert answer.abstained
    assert answer.decline_reason is not None and "'Nexperia'" in answer.decline_reason


def test_what_the_letters_cannot_say_is_declined_with_the_reason(engine) -> None:
    """A year the letter is far from, a count in a unit it never gives, a vote a motie cannot report, a name that only
    appears beside one found everywhere ("Nederland"): each declined, saying why; the same count without the year is answered."""
    assert not engine.ask("Hoeveel militairen stuurde Nederland extra naar Afghanistan?").abstained
    expected = {
        "Hoeveel militairen stuurde Nederland in 2010 extra naar Afghanistan?": "andere tijd dan 2010",
        "Hoeveel specialisten zijn er in augustus 2022 uitgezonden naar Afghanistan?": "andere tijd dan augustus 2022",
        "Hoeveel kilometer is de terugtrekking uit Afghanistan?": "geen aantal",
        "Is de motie over het rookverbod in speeltuinen aangenomen?": "stemming",
        "Dreigt ASML Nederland te verlaten?": "'ASML'",
    }
    for question, reason in expected.items():
        answer = engine.ask(question)
        assert answer.abstained and answer.decline_reason and reason in answer.decline_reason, (question, answer.decline_reason, answer.text)


def test_a_decline_under_filters_says_so_when_they_are_why(engine) -> None:
    answer = engine.ask("Wanneer moet de terugtrekking uit Afghanistan afgerond zijn?", filters=Filters(date_to="1970-01-01"))
    assert answer.abstained and answer.decline_reason == FILTERED_OUT
    # A question no letter answers is declined for its own reason, filters or not.
    off_topic = "Mag Nexperia zijn chipfabriek in Nijmegen aan een Chinese eigenaar verkopen?"
    within = engine.ask(off_topic, filters=Filters(date_from="2000-01-01"))
    assert within.abstained and within.decline_reason == engine.ask(off_topic).decline_reason != FILTERED_OUT


def test_answers_carry_a_calibrated_confidence_and_label(engine) -> None:
    answer = engine.ask("Wanneer moet de terugtrekking uit Afghanistan afgerond zijn?")
    assert 0.0 < answer.confidence <= 1.0
    assert answer.confidence >= load_model().decline_below
    assert answer.confidence_label == DEFAULT_POLICY.label(answer.confidence)


def test_the_answering_sentence_leads_not_the_question(engine) -> None:
    """An Aanhangsel's "Vraag 1" is answered from its "Antwoord 1", never by the question itself."""
    consultation = engine.ask("Tot wanneer loopt de internetconsultatie over de huisvesting van Nederlandse evacués?")
    first = consultation.citations[0]
    assert first.letter_id == "ah-tk-20232024-1292" and "20 maart 2024" in first.quote, consultation.text
    for question in ("Hoeveel kost de registratie van een drone?", "Waarom gaat de sinterklaasintocht in Enter niet door?",
                     "Tot wanneer loopt de internetconsultatie over de huisvesting van Nederlandse evacués?"):
        for citation in engine.ask(question).citations:
            assert not citation.quote.rstrip().endswith("?"), citation.quote


def test_a_price_is_answered_with_the_sum_and_only_quotes_that_hold_one(engine) -> None:
    """README example: the letter states the Dutch fees in a sentence that shares no word with the question."""
    drone = engine.ask("Hoeveel kost de registratie van een drone?")
    assert "€23" in drone.citations[0].quote, drone.text  # not Belgium's "gratis" first
    assert all(has_fact("money", c.quote) for c in drone.citations), drone.text
    sluis = engine.ask("Hoeveel heeft de bouw van de sluis in de Oesterdam gekost?")  # the letter gives its size, not its cost
    assert sluis.abstained, sluis.text


def test_a_follow_up_is_answered_as_well_as_its_spelled_out_form(engine) -> None:
    history = [Turn("Wanneer moet de afbouw van Resolute Support afgerond zijn?")]
    follow_up = engine.ask("En wanneer is de terugkeer afgerond?", history=history)
    spelled_out = engine.ask("Wanneer is de terugkeer van de militairen uit Afghanistan afgerond?")
    assert "juli 2021" in follow_up.citations[0].quote, follow_up.text
    assert "juli 2021" in " ".join(c.quote for c in spelled_out.citations)


def test_follow_up_borrows_the_previous_question() -> None:
    history = [Turn("Wanneer moet de afbouw van Resolute Support afgerond zijn?", "...")]
    assert retrieval_query("En wanneer is dat afgerond?", history).startswith("Wanneer moet de afbouw")
    standalone = "Wat kost de registratie van een drone in Nederland?"
    assert retrieval_query(standalone, history) == standalone
    assert retrieval_query("En wanneer is dat afgerond?", []) == "En wanneer is dat afgerond?"
    longer = "En op welke dag ging de nota zelf naar de Kamer?"  # 11 words, opening with "En"
    assert retrieval_query(longer, history).endswith(longer) and retrieval_query(longer, history) != longer
    assert QuestionView.of(longer, np.zeros(4, np.float32), {}).asks == ("time",)


def test_a_motie_reads_in_document_order_considerations_before_its_request(engine) -> None:
    """Issue 15: a motie's clauses quoted as they stand, never "verzoekt ... overwegende ... constaterende"."""
    for question, letter_id in (("Waarom vraagt de motie om een minimale parkeernorm bij nieuwbouwwijken?", "kst-31305-504"),
                                ("Waarom willen Kamerleden het eigen risico alleen voor chronisch zieken verlagen?", "kst-36679-8")):
        result = engine.ask(question)
        quotes = [c for c in result.citations if c.letter_id == letter_id]
        assert quotes and quotes[0].quote.startswith(("constaterende", "overwegende")), result.text
        assert any("verzoekt de regering" in c.quote for c in quotes), result.text
        assert all(a.quote_end <= b.quote_start for a, b in zip(quotes, quotes[1:])), result.text  # in order, no overlap
        # A quote that goes on where the previous one ends is one quote with one [n], not two.
        letter = engine.index.letters[letter_id]
        assert all(letter.text[a.quote_end : b.quote_start].strip() for a, b in zip(quotes, quotes[1:])), result.text
