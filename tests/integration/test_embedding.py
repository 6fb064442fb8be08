"""The one forward pass that gives passage vectors and in-context sentence vectors."""

from __future__ import annotations

import numpy as np

from qa.embed.embedding import Embedder

PASSAGE = (
    "De terugtrekking uit Afghanistan verloopt volgens plan. Uiterlijk 11 september dient dit te zijn afgerond. "
    "Voor de registratie van een drone betaalt een exploitant eenmalig 25 euro."
)


def spans_of(text: str, *sentences: str) -> np.ndarray:
    return np.array([(text.index(s), text.index(s) + len(s)) for s in sentences], dtype=np.int64)


def test_passage_vectors_are_the_models_own(embedder: Embedder) -> None:
    texts = [PASSAGE, "Een korte tekst.", PASSAGE * 3]
    vectors, _ = embedder.embed_passages_with_spans(texts, [np.zeros((0, 2), np.int64)] * 3)
    expected = embedder.embed_passages(texts)
    assert np.allclose(vectors, expected, atol=1e-4)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_sentence_vectors_rank_the_sentence_that_answers(embedder: Embedder) -> None:
    sentences = [
        "De terugtrekking uit Afghanistan verloopt volgens plan.",
        "Uiterlijk 11 september dient dit te zijn afgerond.",
        "Voor de registratie van een drone betaalt een exploitant eenmalig 25 euro.",
    ]
    _, (vectors,) = embedder.embed_passages_with_spans([PASSAGE], [spans_of(PASSAGE, *sentences)])
    assert vectors.shape == (3, embedder.dimension)
    drone = vectors @ embedder.embed_query("Wat kost het registreren van een drone?")[0]
    assert int(np.argmax(drone)) == 2
    # Read in context, the short sentence knows "dit" is the withdrawal.
    deadline = vectors @ embedder.embed_query("Wanneer moet de terugtrekking uit Afghanistan klaar zijn?")[0]
    assert deadline[1] > deadline[2]


def test_a_span_past_truncation_gets_no_vector(embedder: Embedder) -> None:
    long_text = "Dit is een zin over het beleid. " * 400  # far beyond 512 tokens
    spans = np.array([(0, 31), (len(long_text) - 31, len(long_text) - 1)], dtype=np.int64)
    _, (vectors,) = embedder.embed_passages_with_spans([long_text], [spans])
    assert np.linalg.norm(vectors[0]) > 0.99
    assert not vectors[1].any()
