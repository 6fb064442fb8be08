"""eval/tune_fusion.py: its offline fusion is the service's, so a (weight, k) it chooses means what it says."""

import pytest
from conftest import load_script

from qa.index.fusion import fusion_for

QUESTIONS = ["stikstof provincies", "drones Noordzee", "Wat kost de aanpak?", "asielzoekers opvang gemeenten", "Defensie"]


@pytest.fixture(scope="module")
def tune():  # type: ignore[no-untyped-def]
    return load_script("eval/tune_fusion.py")


def test_offline_fusion_ranks_as_search_does(tune, fast_engine) -> None:  # type: ignore[no-untyped-def]
    """At the shipped settings, each question's first hit by search() is what the script counts as its first."""
    fusion = fusion_for(fast_engine.embedder.name)
    for question in QUESTIONS:
        hits = fast_engine.search(question, k=5)
        assert hits, question
        first_letter = hits[0].passage.letter_id
        found = tune.rankings(fast_engine, [(question, first_letter, None)])
        assert tune.recall(found, fusion.lexical_weight, fusion.k)[0] == 1.0, question
        first_row = next(row for row, passage in enumerate(fast_engine.index.passages) if passage is hits[0].passage)
        by_passage = [(found[0][0], found[0][1], {row: str(row) for row in found[0][2]}, {str(first_row)})]
        assert tune.recall(by_passage, fusion.lexical_weight, fusion.k) == (1.0, 1.0), question


def test_weight_zero_is_the_dense_ranking_alone(tune) -> None:  # type: ignore[no-untyped-def]
    found = [([1, 2, 3], [3, 2, 1], {1: "a", 2: "b", 3: "c"}, {"c"})]
    assert tune.recall(found, 0.0, 60) == (0.0, 1.0)  # dense puts c third
    assert tune.recall(found, 5.0, 60) == (1.0, 1.0)  # a heavy BM25 vote puts it first


def test_search_fuses_with_the_models_own_settings(fast_engine) -> None:  # type: ignore[no-untyped-def]
    """The tuned model's index is searched with its own fusion (qa/index/fusion.py FUSION_BY_MODEL), others with the default."""
    from types import SimpleNamespace

    from qa.answer.retrieval import CANDIDATES, search
    from qa.embed.embedding import TUNED_MODEL
    from qa.index.filters import Filters
    from qa.index.fusion import DEFAULT_FUSION, fuse

    index, embedder = fast_engine.index, fast_engine.embedder
    tuned = SimpleNamespace(name=TUNED_MODEL, dimension=embedder.dimension, backend=embedder.backend, embed_query=embedder.embed_query)
    assert fusion_for(TUNED_MODEL) != DEFAULT_FUSION == fusion_for(embedder.name)
    orders_differ = False
    for question in QUESTIONS:
        dense = [row for row, _ in index.dense_ranking(embedder.embed_query(question), Filters(), CANDIDATES)]
        lexical = [row for row, _ in index.lexical_ranking(question, Filters(), CANDIDATES)]
        for named in (embedder, tuned):
            expected = sorted(fuse(dense, lexical, fusion_for(named.name)).items(), key=lambda item: -item[1])[:10]
            assert [round(hit.score, 12) for hit in search(index, named, question, k=10)] == [round(score, 12) for _, score in expected]
        orders_differ |= [h.passage.id for h in search(index, tuned, question, k=10)] != [h.passage.id for h in search(index, embedder, question, k=10)]
    assert orders_differ  # the two fusions are not the same ranking on these questions
