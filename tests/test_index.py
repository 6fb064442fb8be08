import json
import multiprocessing
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa.embed.embedding import Embedder
from qa.index import local as index_store
from qa.index.local import IndexBusy, IndexStateError


class CountingEmbedder:
    """The real model, counting what it is asked to embed (to prove incremental updates)."""

    def __init__(self, embedder: Embedder) -> None:
        self.inner = embedder
        self.name = embedder.name
        self.dimension = embedder.dimension
        self.backend = embedder.backend
        self.embedded: list[str] = []

    def embed_passages_with_spans(self, texts, spans, batch_size: int = 32, progress: bool = False):
        self.embedded.extend(texts)
        return self.inner.embed_passages_with_spans(texts, spans, batch_size, progress)


@pytest.fixture()
def small_letters(sample_letters):
    wanted = ["kst-27925-781", "kst-33279-1", "ah-tk-20232024-1076", "sgd-0000013323"]
    by_id = {letter.id: letter for letter in sample_letters}
    return [by_id[letter_id] for letter_id in wanted]


def test_build_writes_a_complete_loadable_index(tmp_path: Path, embedder, small_letters) -> None:
    summary = index_store.update(tmp_path, embedder, add=small_letters, replace_all=True)
    assert summary.letters == 4 and summary.added and summary.embedded == summary.passages
    index = index_store.load(tmp_path)
    assert set(index.letters) == {letter.id for letter in small_letters}
    assert index.vectors.ntotal == len(index.passages) == summary.passages
    manifest = index.manifest
    assert manifest["model"] == embedder.name and manifest["dimension"] == embedder.dimension
    assert set(manifest["letters"]) == set(index.letters)
    assert manifest["chunker_version"] and manifest["built_at"]
    # vectors are stored in passage order
    row = next(i for i, p in enumerate(index.passages) if "Uiterlijk 11 september" in p.text)
    expected = embedder.embed_passages([index.passages[row].index_text(index.letters["kst-27925-781"].title)])[0]
    assert np.dot(index.vectors.reconstruct(row), expected) > 0.999


def test_add_embeds_only_new_and_changed_letters_and_remove_drops(tmp_path: Path, embedder, small_letters) -> None:
    counting = CountingEmbedder(embedder)
    index_store.update(tmp_path, counting, add=small_letters[:3], replace_all=True)
    first = index_store.load(tmp_path)
    counting.embedded.clear()

    changed = replace(small_letters[1], text=small_letters[1].text + "\n\nEen nieuwe alinea over de samenwerking.")
    summary = index_store.update(tmp_path, counting, add=[small_letters[0], changed, small_letters[3]])
    assert summary.added == [small_letters[3].id] and summary.replaced == [changed.id]
    assert summary.unchanged == 2
    embedded_letters = {text for text in counting.embedded}
    assert not any("Uiterlijk 11 september" in text for text in embedded_letters)  # unchanged: not re-embedded
    assert any("Een nieuwe alinea" in text for text in embedded_letters)

    second = index_store.load(tmp_path)
    assert len(second.letters) == 4
    # reused vectors are identical to the first build
    for row_old, passage in enumerate(first.passages):
        if passage.letter_id == "kst-27925-781":
            row_new = second.passages.index(passage)
            assert np.array_equal(first.vectors.reconstruct(row_old), second.vectors.reconstruct(row_new))

    counting.embedded.clear()
    summary = index_store.update(tmp_path, counting, remove=["kst-27925-781"])
    assert summary.removed == ["kst-27925-781"] and counting.embedded == []
    third = index_store.load(tmp_path)
    assert "kst-27925-781" not in third.letters
    assert all(p.letter_id != "kst-27925-781" for p in third.passages)
    with pytest.raises(IndexStateError, match="not in the index"):
        index_store.update(tmp_path, counting, remove=["kst-does-not-exist"])


def test_failed_build_leaves_the_old_index_untouched(tmp_path: Path, embedder, small_letters) -> None:
    index_store.update(tmp_path, embedder, add=small_letters[:2], replace_all=True)
    before = (tmp_path / "CURRENT").read_text()

    class Exploding(CountingEmbedder):
        def embed_passages_with_spans(self, texts, spans, batch_size=32, progress=False):
            raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        index_store.update(tmp_path, Exploding(embedder), add=small_letters, replace_all=True)
    assert (tmp_path / "CURRENT").read_text() == before
    assert len(index_store.load(tmp_path).letters) == 2
    assert not list(tmp_path.glob(".gen-*"))


def _build_until_staged(folder: str, letters, marker: str) -> None:
    """A build that stops for good once its new generation is written but not yet made live (to be killed there)."""
    from fake_embedder import FakeEmbedder

    def stop_here(staging: Path) -> None:
        Path(marker).write_text(str(staging))
        time.sleep(3600)

    from qa.index.local import writing

    writing._fsync_tree = stop_here  # type: ignore[assignment]
    index_store.update(Path(folder), FakeEmbedder(), add=letters, replace_all=True)


def test_killed_build_leaves_the_old_index_loadable(tmp_path: Path, fake_embedder, small_letters) -> None:
    """Killed with its new generation on disk, only the pointer not yet swapped: the old index must still be the one."""
    folder, marker = tmp_path / "index", tmp_path / "staged"
    index_store.update(folder, fake_embedder, add=small_letters[:1], replace_all=True)
    before = (folder / "CURRENT").read_text()
    process = multiprocessing.get_context("spawn").Process(target=_build_until_staged, args=(str(folder), small_letters, str(marker)))
    process.start()
    deadline = time.monotonic() + 120
    while not marker.exists() and process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the build never got as far as writing its generation"
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    staged = Path(marker.read_text())
    assert staged.is_dir() and (staged / "manifest.json").is_file()  # killed with a complete new generation beside the old
    assert (folder / "CURRENT").read_text() == before
    index = index_store.load(folder)
    assert list(index.letters) == ["kst-27925-781"]
    # the next build cleans up what the killed one left behind
    index_store.update(folder, fake_embedder, add=small_letters[:2], replace_all=True)
    assert not list(folder.glob(".gen-*")) and list(index_store.load(folder).letters) == [letter.id for letter in small_letters[:2]]


def test_concurrent_writer_is_told_the_index_is_busy(tmp_path: Path, embedder, small_letters) -> None:
    with index_store.write_lock(tmp_path):
        with pytest.raises(IndexBusy, match="another process"):
            index_store.update(tmp_path, embedder, add=small_letters[:1])


def test_wrong_model_and_old_format_and_damage_are_refused(tmp_path: Path, embedder, small_letters) -> None:
    index_store.update(tmp_path, embedder, add=small_letters[:1], replace_all=True)

    class OtherModel(CountingEmbedder):
        name = "some/other-model"

    other = OtherModel(embedder)
    other.name = "some/other-model"
    with pytest.raises(IndexStateError, match="built with model"):
        index_store.update(tmp_path, other, add=small_letters[1:2])

    generation = index_store.live_generation(tmp_path)
    manifest_path = generation / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "format_version": 0}))
    with pytest.raises(IndexStateError, match="another version"):
        index_store.load(tmp_path)
    manifest_path.write_text(json.dumps(manifest))

    (generation / "vectors.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexStateError, match="damaged"):
        index_store.load(tmp_path)

    (tmp_path / "CURRENT").write_text("gen-missing\n")
    with pytest.raises(IndexStateError, match="missing"):
        index_store.load(tmp_path)


def test_no_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexStateError, match="qa index build"):
        index_store.load(tmp_path / "nothing")
