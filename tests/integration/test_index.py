"""The local store's own behaviour: a killed build, the write lock, damaged files (what every store does is
tests/unit/test_store_conformance.py's)."""

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from qa.index import local as index_store
from qa.index.local import IndexBusy, IndexStateError


@pytest.fixture()
def small_letters(sample_letters):
    wanted = ["kst-27925-781", "kst-33279-1", "ah-tk-20232024-1076", "sgd-0000013323"]
    by_id = {letter.id: letter for letter in sample_letters}
    return [by_id[letter_id] for letter_id in wanted]


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


def test_an_old_format_and_damage_are_refused(tmp_path: Path, embedder, small_letters) -> None:
    index_store.update(tmp_path, embedder, add=small_letters[:1], replace_all=True)  # (another model: tests/unit/test_store_conformance.py)

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
