"""Checkpointed batches (qa/embed/batches.py), with the deterministic embedder: the plan, the checkpoint files, and an
update that fails part-way and is run again (the same with the real model, a real SIGKILL and Ray: tests/integration/test_cluster.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_embedder import FakeEmbedder

from qa.embed import batches
from qa.index import local as index_store


class Failing(FakeEmbedder):
    """Embeds `allowed` batches, then fails as a killed or crashed build would; counts what it embedded."""

    def __init__(self, allowed: int | None = None) -> None:
        super().__init__()
        self.allowed = allowed
        self.calls = 0

    def embed_passages_with_spans(self, texts, spans, batch_size=32, progress=False):  # type: ignore[no-untyped-def]
        if self.allowed is not None and self.calls >= self.allowed:
            raise RuntimeError("the build was interrupted")
        self.calls += 1
        return super().embed_passages_with_spans(texts, spans, batch_size, progress)


def _texts(n: int) -> tuple[list[str], list[np.ndarray]]:
    texts = [f"Brief {i} over de begroting van het ministerie " + "en de uitvoering " * (i % 7) for i in range(n)]
    return texts, [np.array([[0, 5], [6, len(text)]]) for text in texts]


def test_the_plan_is_the_same_for_the_same_input_and_keys_follow_the_content() -> None:
    texts, spans = _texts(100)
    first, again = batches.plan("m", texts, spans), batches.plan("m", texts, spans)
    assert [b.key for b in first] == [b.key for b in again]
    assert [len(b.positions) for b in first] == [32, 32, 32, 4]  # finer than BATCH_PASSAGES: progress at each tenth, whole encode batches
    assert sorted(p for b in first for p in b.positions) == list(range(100))
    lengths = [len(texts[p]) for b in first for p in b.positions]
    assert lengths == sorted(lengths, reverse=True)  # longest first: a batch pads little
    assert len({b.key for b in first}) == len(first)
    assert batches.plan("other-model", texts, spans)[0].key != first[0].key
    moved = [s.copy() for s in spans]
    moved[first[0].positions[0]][0, 1] = 4
    assert batches.plan("m", texts, moved)[0].key != first[0].key  # a span is part of the key
    assert batches.batch_key("m", ["ab", "c"], [np.zeros((0, 2))] * 2) != batches.batch_key("m", ["a", "bc"], [np.zeros((0, 2))] * 2)
    assert len(batches.plan("m", *_texts(5000))[0].positions) == batches.BATCH_PASSAGES


def test_a_checkpoint_is_read_back_whole_or_not_at_all(tmp_path: Path) -> None:
    texts, spans = _texts(40)
    batch = batches.plan("m", texts, spans)[0]
    store = batches.Checkpoints(tmp_path / ".build", 4)
    assert store.load(batch) is None
    vectors = np.random.default_rng(0).standard_normal((len(batch.positions), 4)).astype(np.float32)
    sentences = [np.full((2, 4), i, dtype=np.float16) for i in range(len(batch.positions))]
    store.save(batch, vectors, sentences)
    loaded = store.load(batch)
    assert loaded is not None and np.array_equal(loaded[0], vectors) and all(np.array_equal(a, b) for a, b in zip(loaded[1], sentences))
    assert not list(store.folder.glob("*.tmp"))
    assert batches.Checkpoints(store.folder, 8).load(batch) is None  # another dimension: embedded again
    store.path(batch).write_bytes(store.path(batch).read_bytes()[:100])  # damaged (a disk error)
    assert store.load(batch) is None


def test_an_interrupted_update_resumes_with_only_the_missing_batches(tmp_path: Path, sample_letters) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "index"
    index_store.update(folder, FakeEmbedder(), add=sample_letters[:2], replace_all=True)
    live = (folder / "CURRENT").read_text()

    with pytest.raises(RuntimeError, match="interrupted"):
        index_store.update(folder, Failing(allowed=3), add=sample_letters, replace_all=True)
    assert (folder / "CURRENT").read_text() == live and len(index_store.load(folder).letters) == 2  # the live index is untouched
    saved = list((folder / index_store.BUILD_FOLDER).glob("*.npz"))
    assert len(saved) == 3
    assert not any(index_store.BUILD_FOLDER in str(path) for path in index_store.live_generation(folder).rglob("*"))

    resumed = Failing()
    logged: list[str] = []
    summary = index_store.update(folder, resumed, add=sample_letters, replace_all=True, log=logged.append)
    total = summary.passages
    assert summary.resumed == 3 * 32 and summary.embedded == total - 3 * 32
    assert resumed.passages == summary.embedded  # the saved batches were not embedded again
    assert any("were embedded by an interrupted build" in line for line in logged)
    assert not (folder / index_store.BUILD_FOLDER).exists()  # spent once the change is complete

    reference = tmp_path / "reference"
    index_store.update(reference, FakeEmbedder(), add=sample_letters, replace_all=True)
    a, b = index_store.load(folder), index_store.load(reference)
    assert [p.id for p in a.passages] == [p.id for p in b.passages]
    assert np.array_equal(a.passage_vectors(list(range(total))), b.passage_vectors(list(range(total))))
    assert np.array_equal(a.sentence_spans, b.sentence_spans) and np.array_equal(a.sentence_vectors, b.sentence_vectors)
