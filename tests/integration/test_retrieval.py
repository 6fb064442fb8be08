import pytest
from conftest import BACKENDS

from qa.answer.engine import Engine
from qa.answer.retrieval import Filters


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, engine: Engine) -> Engine:
    """Every test here runs on the local index and on the same index in Milvus (tests/conftest.py, milvus_copy)."""
    return engine if request.param == "local" else request.getfixturevalue("milvus_engine")


QUESTION = "Wanneer moet de terugtrekking uit Afghanistan afgerond zijn?"


def test_each_mode_finds_the_seed_letter(engine) -> None:
    for mode in ("hybrid", "dense", "lexical"):
        hits = engine.search(QUESTION, k=5, mode=mode)
        assert any(hit.letter.id == "kst-27925-781" for hit in hits), mode


def test_hybrid_puts_the_answer_passage_first(engine) -> None:
    hits = engine.search(QUESTION, k=5)
    assert "11 september" in hits[0].passage.text
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert hits[0].dense_score is not None and hits[0].lexical_score is not None


def test_filters_restrict_every_hit(engine) -> None:
    cases = [
        Filters(date_from="2024-01-01", date_to="2024-12-31"),
        Filters(type="antwoord_kamervragen"),
        Filters(sender="defensie"),
        Filters(dossier="27 925"),
    ]
    for filters in cases:
        hits = engine.search("veiligheid", k=10, filters=filters)
        assert hits, filters
        assert all(filters.accepts(hit.letter) for hit in hits)
    defence = engine.search(QUESTION, k=3, filters=Filters(sender="Defensie"))
    assert defence[0].letter.id == "kst-27925-781"
    historical = engine.search(QUESTION, k=10, filters=Filters(date_to="1995-01-01"))
    assert historical, "the sample has letters from before 1995"
    assert all(hit.letter.date and hit.letter.date <= "1995-01-01" for hit in historical)


def test_filter_that_matches_nothing_gives_no_hits(engine) -> None:
    assert engine.search(QUESTION, filters=Filters(dossier="99999")) == []
    assert engine.search(QUESTION, filters=Filters(date_from="2100-01-01")) == []


def test_words_missing_from_the_index_still_get_dense_results(engine) -> None:
    hits = engine.search("xqzvw plofkraak", k=3)
    assert len(hits) == 3
    assert engine.search("xqzvw", k=3, mode="lexical") == []
