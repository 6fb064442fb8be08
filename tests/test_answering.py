from qa.answering import DECLINE
from qa.engine import Turn, retrieval_query


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
        assert not answer.abstained and answer.citations, (question, answer.text, answer.evidence)  # all four are answerable
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
        assert answer.abstained, (question, answer.text, answer.evidence)
        assert answer.text == DECLINE and answer.citations == []
        assert answer.hits


def test_follow_up_borrows_the_previous_question() -> None:
    history = [Turn("Wanneer moet de afbouw van Resolute Support afgerond zijn?", "...")]
    assert retrieval_query("En wanneer is dat afgerond?", history).startswith("Wanneer moet de afbouw")
    standalone = "Wat kost de registratie van een drone in Nederland?"
    assert retrieval_query(standalone, history) == standalone
    assert retrieval_query("En wanneer is dat afgerond?", []) == "En wanneer is dat afgerond?"
