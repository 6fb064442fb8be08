"""Index faults: SIGKILL at several points of a build, damaged and half-written index folders, a wrong model,
and two real `qa index add` processes racing for the write lock."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TEST_MODEL

from qa.core.settings import SAMPLE_CORPUS
from qa.index import local as index_store
from qa.index.local import IndexStateError

# A build in a child process that stops at one point (touching a marker file) until it is killed.
KILL_SCRIPT = r"""
import sys, time
from pathlib import Path
import numpy as np
from qa.index import local as index_store
from qa.ingest.reading import read_letters

folder, point, marker, model = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]

class Stub:  # same name, dimension and backend as the real model: the write path is what is under test here
    name, dimension, backend = model, int(sys.argv[5]), sys.argv[7]
    def embed_passages_with_spans(self, texts, spans, batch_size=32, progress=False):
        if point == "embedding":
            stop()
        random = np.random.default_rng(0)
        return (random.standard_normal((len(texts), self.dimension)).astype(np.float32),
                [random.standard_normal((len(s), self.dimension)).astype(np.float32) for s in spans])

def stop():
    marker.touch()
    time.sleep(600)

def hook(module, name):
    original = getattr(module, name)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs) if point.endswith("-after") else None
        stop()
        return result
    setattr(module, name, wrapper)

import faiss
from qa.index.lexical import LexicalIndex
if point == "writing-vectors":
    hook(faiss, "write_index")  # letters.jsonl and passages.jsonl are written, the vectors not yet
if point == "writing-bm25":
    LexicalIndex.save = lambda self, path: stop()
if point == "before-swap":
    from qa.index.local import writing
    hook(writing, "_swap")  # the new generation is complete and renamed, CURRENT not yet replaced
if point == "pointer-written":
    import os
    original = os.replace
    os.replace = lambda src, dst: stop() if str(dst).endswith("CURRENT") else original(src, dst)
letters = read_letters([Path(sys.argv[6])]).letters
index_store.update(folder, Stub(), add=letters, replace_all=True)
"""

POINTS = ["embedding", "writing-vectors", "writing-bm25", "before-swap", "pointer-written"]


@pytest.fixture()
def small_index(tmp_path: Path, embedder, sample_letters) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "index"
    index_store.update(folder, embedder, add=sample_letters[:2], replace_all=True)
    return folder


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_any_point_leaves_the_previous_index(small_index: Path, embedder, tmp_path: Path, point: str) -> None:  # type: ignore[no-untyped-def]
    before = (small_index / "CURRENT").read_text()
    letters_before = set(index_store.load(small_index).letters)
    marker = tmp_path / "reached"
    child = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(small_index), point, str(marker), embedder.name,
                              str(embedder.dimension), str(SAMPLE_CORPUS), embedder.backend], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        assert time.monotonic() < deadline, f"the build never reached {point}"
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert (small_index / "CURRENT").read_text() == before
    assert set(index_store.load(small_index).letters) == letters_before
    # The next build succeeds, cleans up staging leftovers and is live.
    index_store.update(small_index, embedder, add=[], replace_all=False)
    assert not list(small_index.glob(".gen-*")) and not (small_index / ".CURRENT.tmp").exists()


DAMAGE = {
    "manifest missing": lambda gen, folder: (gen / "manifest.json").unlink(),
    "manifest truncated": lambda gen, folder: (gen / "manifest.json").write_text('{"format_version": 1, "mod'),
    "manifest not an object": lambda gen, folder: (gen / "manifest.json").write_text("[1, 2]"),
    "manifest without counts": lambda gen, folder: (gen / "manifest.json").write_text(
        json.dumps({k: v for k, v in json.loads((gen / "manifest.json").read_text()).items() if k != "counts"})),
    "vectors missing": lambda gen, folder: (gen / "vectors.faiss").unlink(),
    "vectors garbage": lambda gen, folder: (gen / "vectors.faiss").write_bytes(os.urandom(256)),
    "passages truncated": lambda gen, folder: (gen / "passages.jsonl").write_text(
        (gen / "passages.jsonl").read_text()[: len((gen / "passages.jsonl").read_text()) // 2]),
    "letters with a foreign field": lambda gen, folder: (gen / "letters.jsonl").write_text(
        "\n".join(json.dumps({**json.loads(line), "extra": 1}) for line in (gen / "letters.jsonl").read_text().splitlines())),
    "bm25 missing": lambda gen, folder: shutil.rmtree(gen / "bm25"),
    "sentence vectors missing": lambda gen, folder: (gen / "sentence_vectors.npy").unlink(),
    "sentence spans garbage": lambda gen, folder: (gen / "sentence_spans.npy").write_bytes(os.urandom(256)),
    "sentence spans of another index": lambda gen, folder: np.save(gen / "sentence_spans.npy", np.full((3, 3), 10**6)),
    "generation missing": lambda gen, folder: shutil.rmtree(gen),
    "CURRENT empty": lambda gen, folder: (folder / "CURRENT").write_text(""),
    "CURRENT binary": lambda gen, folder: (folder / "CURRENT").write_bytes(b"\xff\xfe\x00gen"),
    "CURRENT points outside": lambda gen, folder: (folder / "CURRENT").write_text(".."),
    "CURRENT traversal": lambda gen, folder: (folder / "CURRENT").write_text("../../etc"),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_damaged_index_is_refused_with_what_to_run(small_index: Path, damage: str) -> None:
    DAMAGE[damage](index_store.live_generation(small_index), small_index)
    with pytest.raises(IndexStateError, match="rebuild|qa index build"):
        index_store.load(small_index)


def qa(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "QA_MODEL": TEST_MODEL}
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, env=env, timeout=300, **kwargs)


def test_qa_serve_refuses_a_damaged_index_and_a_wrong_model(small_index: Path) -> None:
    wrong = qa("serve", "--index", str(small_index), "--no-build-sample", "--model", "all-MiniLM-L6-v2" if "e5" in TEST_MODEL else "multilingual-e5-small", "--port", "1")
    assert wrong.returncode == 2 and "built with model" in wrong.stderr and "Traceback" not in wrong.stderr
    (index_store.live_generation(small_index) / "vectors.faiss").write_bytes(b"garbage")
    damaged = qa("serve", "--index", str(small_index), "--no-build-sample", "--port", "1")
    assert damaged.returncode == 2 and "damaged index" in damaged.stderr and "qa index build" not in damaged.stdout
    assert "Traceback" not in damaged.stderr
    bad_limit = qa("serve", "--index", str(small_index), "--rate-limit", "lots", "--port", "1")
    assert bad_limit.returncode == 2 and "rate limit" in bad_limit.stderr


def test_two_qa_index_add_processes_cannot_interleave(small_index: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.mkdir()
    for path in sorted((SAMPLE_CORPUS / "letters").glob("kst-*.txt"))[:6]:
        shutil.copy(path, new)
    env = {**os.environ, "QA_MODEL": TEST_MODEL}
    first = subprocess.Popen([sys.executable, "-m", "qa", "index", "add", str(new), "--index", str(small_index), "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert first.stderr is not None
    seen = []
    for line in first.stderr:  # wait until the first one holds the lock and is embedding ...
        seen.append(line)
        if line.startswith("embedding"):
            break
    os.kill(first.pid, signal.SIGSTOP)  # ... and hold it there, so the race is decided, not timed
    try:
        second = qa("index", "add", str(new), "--index", str(small_index), "--no-progress")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert second.returncode == 2, second.stderr
    assert "is being updated by another process; try again when it is done" in second.stderr and "Traceback" not in second.stderr
    assert first.returncode == 0, "".join(seen) + err
    new_ids = {path.stem for path in new.iterdir()}
    assert new_ids <= set(index_store.load(small_index).letters), out
