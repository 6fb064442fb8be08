"""What every store must do, as its readers see it (qa/index/protocol.py: `Store`, `StoreWriter`): one suite that the
local store and the Milvus store both pass.

Each test runs on both backends (`BACKENDS`: Milvus in the full suite only, as milvus-lite starts a server process;
one server serves the module, each test its own collections under a prefix of its own). The expected values come from
the protocol's own definitions (what was written, cosine, BM25 over the written texts, `Filters.accepts`), never from
the other store; that both stores give the same results is tests/integration/test_store_milvus.py's."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import BACKENDS
from fake_embedder import FakeEmbedder

from qa.core.errors import IndexStateError
from qa.index import stores as store
from qa.index.filters import Filters
from qa.index.generations import by_score
from qa.index.lexical import LexicalIndex, idf, tokenize
from qa.index.protocol import Ranking, Store
from qa.ingest.chunking import CHUNKER_VERSION, Passage, chunk_letter
from qa.ingest.letter import Letter
from qa.ingest.reading import make_letter

FILTERS = [Filters(date_from="2021-01-01"), Filters(date_to="1995-01-01"), Filters(sender="Defensie"), Filters(type="motie"),
           Filters(dossier="27 925"), Filters(date_from="2010-01-01", date_to="2023-12-31", type="brief_regering"), Filters(sender="IenW"),
           Filters(type="no-such-type"), Filters(dossier='9" or row >= 0 or dossier == "'), Filters(sender='Defensie" or "x')]  # quotes stay text
QUERIES = ["Afghanistan missie", "drones registratie", "Resolute Support", "windparken op zee", "xqzvw"]
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def milvus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("pymilvus", reason="the Milvus store is not installed: pip install -c constraints.txt -e '.[milvus]'")
    return tmp_path_factory.mktemp("conformance-milvus") / "milvus.db"


def fresh(kind: str, folder: Path, request: pytest.FixtureRequest) -> store.Location:
    """An empty store of `kind`: a new index folder, or new collections in the module's milvus-lite file."""
    if kind == "local":
        return store.locate(folder / "index")
    location = store.locate(folder / "data", f"milvus-lite:{request.getfixturevalue('milvus_file')}")
    return replace(location, prefix=f"t{next(_prefixes)}")


@pytest.fixture(params=BACKENDS)
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> store.Location:
    return fresh(request.param, tmp_path, request)


@pytest.fixture(scope="module", params=BACKENDS)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_embedder: FakeEmbedder,
          sample_letters: list[Letter]) -> tuple[store.Location, Store]:
    """The sample letters built into each store by `update` (read-only: the reading tests share it)."""
    location = fresh(request.param, tmp_path_factory.mktemp(f"conformance-{request.param}"), request)
    store.update(location, fake_embedder, add=sample_letters, replace_all=True)
    return location, store.load(location)


def index_texts(index: Store) -> list[str]:
    return [passage.index_text(index.letters[passage.letter_id].title) for passage in index.passages]


def assert_ranked(ranking: Ranking, expected: dict[int, float], limit: int) -> None:
    """`ranking` is the best `limit` of `expected` (row -> score, the rows that may appear), best first, ties by row."""
    rows = [row for row, _ in ranking]
    assert len(set(rows)) == len(rows) == min(limit, len(expected)) and set(rows) <= expected.keys()
    assert ranking == by_score(ranking)  # best first; equal scores by row
    for row, score in ranking:
        assert score == pytest.approx(expected[row], rel=1e-3, abs=1e-5)
    left_out = [score for row, score in expected.items() if row not in set(rows)]
    if ranking and left_out:
        assert min(score for _, score in ranking) >= max(left_out) - 1e-5


# --- reading a built store --------------------------------------------------------------------------------


def test_letters_and_passages_round_trip(built: tuple[store.Location, Store], sample_letters: list[Letter], fake_embedder: FakeEmbedder) -> None:
    location, index = built
    assert list(index.letters) == [letter.id for letter in sample_letters] and index.letters == {letter.id: letter for letter in sample_letters}
    assert index.manifest["letters"] == {letter.id: letter.content_hash() for letter in sample_letters}
    assert index.passages == [passage for letter in sample_letters for passage in chunk_letter(letter)]
    assert index.rows == {passage.id: row for row, passage in enumerate(index.passages)}
    for letter in sample_letters:
        rows = index.letter_passages[letter.id]
        assert rows == sorted(rows) and index.passages_of(letter.id) == [index.passages[row] for row in rows]
        assert all(passage.text == letter.text[passage.start : passage.end] for passage in index.passages_of(letter.id))
    assert index.passages_of("kst-does-not-exist") == []
    assert (index.model, index.backend, index.dimension) == (fake_embedder.name, fake_embedder.backend, fake_embedder.dimension)
    assert index.manifest["chunker_version"] == CHUNKER_VERSION and index.manifest["built_at"]
    assert index.location == str(location) and index.generation == store.live_generation(location) and store.exists(location)
    info = index.info()
    assert (info["letters"], info["passages"], info["model"], info["backend"], info["dimension"], info["generation"]) == (
        len(sample_letters), len(index.passages), fake_embedder.name, fake_embedder.backend, fake_embedder.dimension, index.generation)


def test_passage_vectors_and_sentences_are_what_was_embedded(built: tuple[store.Location, Store]) -> None:
    _, index = built
    texts = index_texts(index)
    embedder = FakeEmbedder()
    rows = [5, 0, 17, len(index.passages) - 1, 5]  # any order, repeats too
    expected, _ = embedder.embed_passages_with_spans([texts[row] for row in rows], [np.zeros((0, 2))] * len(rows))
    vectors = index.passage_vectors(rows)
    assert vectors.dtype == np.float32 and np.allclose(vectors, expected, atol=1e-6)
    assert index.passage_vectors([]).shape == (0, index.dimension)
    everything = index.passage_vectors(list(range(len(index.passages))))
    assert np.allclose(index.mean_vector(), everything.mean(axis=0), atol=1e-5)
    for row, (spans, span_vectors) in zip(rows, index.sentences_of(rows)):
        passage = index.passages[row]
        assert np.array_equal(spans, np.asarray(passage.sentences(), dtype=np.int64).reshape(-1, 2))
        offset = len(texts[row]) - len(passage.text) - passage.start  # the passage ends its index text
        cores = np.asarray(passage.sentence_cores(), dtype=np.int64).reshape(-1, 2) + offset
        _, (wanted,) = embedder.embed_passages_with_spans([texts[row]], [cores])
        assert span_vectors.shape == (len(spans), index.dimension) and np.allclose(span_vectors, wanted, atol=2e-3)
        again = index.sentences(row)
        assert np.array_equal(again[0], spans) and np.array_equal(again[1], span_vectors)


def test_dense_ranking_is_cosine_best_first_under_any_filter(built: tuple[store.Location, Store]) -> None:
    _, index = built
    vectors = index.passage_vectors(list(range(len(index.passages))))
    for query in QUERIES[:4]:
        query_vector = FakeEmbedder().embed_query(query)
        cosine = vectors @ query_vector[0]
        for filters in [Filters(), *FILTERS]:
            allowed = {row: float(cosine[row]) for row, passage in enumerate(index.passages) if filters.accepts(index.letters[passage.letter_id])}
            for limit in (10, len(index.passages)):
                assert_ranked(index.dense_ranking(query_vector, filters, limit), allowed, limit)


def test_lexical_ranking_is_bm25_of_the_passages_holding_a_word(built: tuple[store.Location, Store]) -> None:
    _, index = built
    texts = index_texts(index)
    reference = LexicalIndex.build(texts)
    words = [set(tokenize(text)) for text in texts]
    for query in QUERIES:
        scores = reference.scores(tokenize(query))
        holding = {row: float(scores[row]) for row in range(len(texts)) if words[row] & set(tokenize(query))}
        everything = index.lexical_ranking(query, Filters(), None)
        assert_ranked(everything, holding, len(holding))
        assert_ranked(index.lexical_ranking(query, Filters(), 10), holding, 10)
        for filters in FILTERS:
            allowed = {row for row, passage in enumerate(index.passages) if filters.accepts(index.letters[passage.letter_id])}
            filtered = index.lexical_ranking(query, filters, None)
            assert [row for row, _ in filtered] == [row for row, _ in everything if row in allowed], (query, filters)
            assert_ranked(index.lexical_ranking(query, filters, 5), {row: holding[row] for row in holding.keys() & allowed}, 5)
    assert index.lexical_ranking("de het een", Filters(), None) == []  # stop words only


def test_term_statistics_count_the_passages_holding_a_word(built: tuple[store.Location, Store]) -> None:
    _, index = built
    words = [set(tokenize(text)) for text in index_texts(index)]
    assert index.lexical.size == len(index.passages)
    for token in ("afbouw", "drone", "missie", "xqzvw"):
        count = sum(token in passage_words for passage_words in words)
        assert index.lexical.frequency(token) == count and index.lexical.idf(token) == pytest.approx(idf(count, len(index.passages)))


# --- writing: generations, commit and abort, update ---------------------------------------------------------

DIMENSION = 4


def small_generation() -> tuple[list[Letter], list[Passage], np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Three letters, two of them alike word for word (so BM25 ties), with vectors chosen to tie as well."""
    text = "De zeearend broedt weer in Nederland.\n\nDat schrijft de minister aan de Kamer."
    letters = [make_letter(text, None, {"id": "kst-1-1", "title": "Zeearend", "date": "2024-01-02", "type": "brief_regering"}),
               make_letter("Over windparken op zee, en ook de zeearend.\n\n" + "De vogels in het Waddengebied worden geteld. " * 5, None,
                           {"id": "kst-1-2", "title": "Windparken", "date": "2020-05-06", "type": "motie"}),
               make_letter(text, None, {"id": "kst-1-3", "title": "Zeearend", "date": "2023-03-04", "type": "brief_regering"})]
    passages = [passage for letter in letters for passage in chunk_letter(letter)]
    directions = {"kst-1-1": [1.0, 0.0, 0.0, 0.0], "kst-1-2": [0.6, 0.8, 0.0, 0.0], "kst-1-3": [1.0, 0.0, 0.0, 0.0]}
    vectors = np.asarray([directions[passage.letter_id] for passage in passages], dtype=np.float32)
    sentences = []
    for number, passage in enumerate(passages):
        spans = np.asarray(passage.sentences(), dtype=np.int64).reshape(-1, 2)
        sentences.append((spans, np.full((len(spans), DIMENSION), number / 8, dtype=np.float16)))
    return letters, passages, vectors, sentences


def write(location: store.Location, letters: list[Letter], passages: list[Passage], vectors: np.ndarray,
          sentences: list[tuple[np.ndarray, np.ndarray]], commit: bool = True) -> str | None:
    target = store.target(location)
    with target.lock():
        writer = target.writer("test-model", DIMENSION, "test")
        writer.add_letters(letters, {letter.id: letter.content_hash() for letter in letters})
        writer.add_passages(passages[:2], vectors[:2], sentences[:2])  # in batches
        writer.add_passages(passages[2:], vectors[2:], sentences[2:])
        if commit:
            return writer.commit()
        writer.abort()
        return None


def test_no_index_is_a_clear_error(empty: store.Location) -> None:
    assert not store.exists(empty) and store.live_generation(empty) is None
    with pytest.raises(IndexStateError, match="qa index build"):
        store.load(empty)
    assert "qa index build" in str(store.no_index(empty))


def test_a_written_generation_reads_back_exactly_and_ties_go_by_row(empty: store.Location) -> None:
    letters, passages, vectors, sentences = small_generation()
    generation = write(empty, letters, passages, vectors, sentences)
    index = store.load(empty)
    assert generation == index.generation == store.live_generation(empty)
    assert index.letters == {letter.id: letter for letter in letters} and index.passages == passages
    assert (index.model, index.backend, index.dimension) == ("test-model", "test", DIMENSION)
    assert np.array_equal(index.passage_vectors(list(range(len(passages)))), vectors)
    for row, (spans, span_vectors) in enumerate(sentences):
        read_spans, read_vectors = index.sentences(row)
        assert np.array_equal(read_spans, spans) and np.array_equal(read_vectors, span_vectors)
    rows = {letter.id: index.letter_passages[letter.id] for letter in letters}
    dense = index.dense_ranking(np.asarray([[1.0, 0.0, 0.0, 0.0]], dtype=np.float32), Filters(), len(passages))
    assert [row for row, _ in dense] == rows["kst-1-1"] + rows["kst-1-3"] + rows["kst-1-2"]  # equal cosines: by row
    assert [score for _, score in dense] == pytest.approx([1.0] * (len(dense) - len(rows["kst-1-2"])) + [0.6] * len(rows["kst-1-2"]))
    alike = [row for row, _ in index.lexical_ranking("zeearend broedt", Filters(), None)]
    assert alike[:2] == [rows["kst-1-1"][0], rows["kst-1-3"][0]]  # the same words, the same length: by row
    assert [row for row, _ in index.lexical_ranking("zeearend broedt", Filters(date_to="2023-12-31"), None)] == [rows["kst-1-3"][0], *alike[2:]]
    assert index.dense_ranking(np.asarray([[0.0, 1.0, 0.0, 0.0]], dtype=np.float32), Filters(type="motie"), 10) == [
        (row, pytest.approx(0.8)) for row in rows["kst-1-2"]]
    assert index.lexical_ranking("zeearend", Filters(type="nothing"), None) == [] == index.dense_ranking(vectors[:1], Filters(type="nothing"), 10)


def test_commit_moves_the_live_generation_and_abort_leaves_it(empty: store.Location) -> None:
    letters, passages, vectors, sentences = small_generation()
    first = write(empty, letters[:1], passages[:1], vectors[:1], sentences[:1])
    before = store.load(empty)
    assert write(empty, letters, passages, vectors, sentences, commit=False) is None  # written, then aborted
    assert store.live_generation(empty) == first and list(store.load(empty).letters) == [letters[0].id]
    second = write(empty, letters, passages, vectors, sentences)
    assert second != first and store.live_generation(empty) == second and list(store.load(empty).letters) == [letter.id for letter in letters]
    # A reader of the previous generation goes on reading it (the live one and its predecessor are kept).
    assert before.generation == first and list(before.letters) == [letters[0].id]
    assert np.array_equal(before.passage_vectors([0]), vectors[:1]) and np.array_equal(before.sentences(0)[1], sentences[0][1])


def test_a_failed_update_leaves_the_old_generation_live(empty: store.Location, fake_embedder: FakeEmbedder, sample_letters: list[Letter]) -> None:
    store.update(empty, fake_embedder, add=sample_letters[:2], replace_all=True)
    before = store.live_generation(empty)

    class Exploding(FakeEmbedder):
        def embed_passages_with_spans(self, *args: Any, **options: Any) -> Any:
            raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        store.update(empty, Exploding(), add=sample_letters[:6], replace_all=True)
    assert store.live_generation(empty) == before and list(store.load(empty).letters) == [letter.id for letter in sample_letters[:2]]
    if empty.kind == "local":
        assert not list(empty.data_dir.glob(".gen-*"))  # nothing half-written beside the generations


class CountingEmbedder(FakeEmbedder):
    """The fake embedder, keeping what it was asked to embed (to prove incremental updates)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_passages_with_spans(self, texts: Any, spans: Any, batch_size: int = 32, progress: bool = False) -> Any:
        self.embedded.extend(texts)
        return super().embed_passages_with_spans(texts, spans, batch_size, progress)


def test_update_adds_replaces_and_removes_letters_by_content_hash(empty: store.Location, sample_letters: list[Letter]) -> None:
    by_id = {letter.id: letter for letter in sample_letters}
    letters = [by_id[letter_id] for letter_id in ("kst-27925-781", "kst-33279-1", "ah-tk-20232024-1076", "sgd-0000013323")]
    counting = CountingEmbedder()
    summary = store.update(empty, counting, add=letters[:3], replace_all=True)
    first = store.load(empty)
    assert summary.letters == 3 and summary.added == [letter.id for letter in letters[:3]] and summary.embedded == summary.passages == len(first.passages)
    counting.embedded.clear()

    changed = replace(letters[1], text=letters[1].text + "\n\nEen nieuwe alinea over de samenwerking.")
    summary = store.update(empty, counting, add=[letters[0], changed, letters[3]])
    assert summary.added == [letters[3].id] and summary.replaced == [changed.id] and summary.unchanged == 2
    assert not any("Uiterlijk 11 september" in text for text in counting.embedded)  # unchanged: not embedded again
    assert any("Een nieuwe alinea" in text for text in counting.embedded)
    second = store.load(empty)
    assert second.generation != first.generation and store.live_generation(empty) == second.generation
    assert list(second.letters) == [letter.id for letter in letters] and second.letters[changed.id] == changed
    assert second.manifest["letters"][changed.id] == changed.content_hash()
    # Reused vectors and sentences are those of the first build.
    old_rows, new_rows = first.letter_passages[letters[0].id], second.letter_passages[letters[0].id]
    assert np.array_equal(first.passage_vectors(old_rows), second.passage_vectors(new_rows))
    for old, new in zip(first.sentences_of(old_rows), second.sentences_of(new_rows)):
        assert np.array_equal(old[0], new[0]) and np.array_equal(old[1], new[1])

    counting.embedded.clear()
    summary = store.update(empty, None, remove=[letters[0].id])  # no model needed to remove
    third = store.load(empty)
    assert summary.removed == [letters[0].id] and counting.embedded == [] and letters[0].id not in third.letters
    assert all(passage.letter_id != letters[0].id for passage in third.passages) and len(third.letters) == 3
    with pytest.raises(IndexStateError, match="not in the index"):
        store.update(empty, None, remove=["kst-does-not-exist"])
    assert store.live_generation(empty) == third.generation


def test_an_update_with_another_model_is_refused(empty: store.Location, fake_embedder: FakeEmbedder, sample_letters: list[Letter]) -> None:
    store.update(empty, fake_embedder, add=sample_letters[:1], replace_all=True)
    other = FakeEmbedder()
    other.name = "some/other-model"
    with pytest.raises(IndexStateError, match="built with model"):
        store.update(empty, other, add=sample_letters[1:2])
