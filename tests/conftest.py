"""Shared fixtures: the real embedding model and a real index of the bundled sample letters."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from qa import index as index_store
from qa.embedding import DEFAULT_MODEL, Embedder
from qa.engine import Engine
from qa.letters import read_letters
from qa.settings import SAMPLE_CORPUS

TEST_MODEL = os.environ.get("QA_TEST_MODEL", DEFAULT_MODEL)
SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    if not (SHARED_CORPUS / "letters.jsonl").is_file():
        pytest.skip(f"the shared corpus is not beside the repository ({SHARED_CORPUS})")
    return SHARED_CORPUS


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder(TEST_MODEL)


@pytest.fixture(scope="session")
def sample_letters():
    report = read_letters([SAMPLE_CORPUS])
    assert not report.errors
    return report.letters


@pytest.fixture(scope="session")
def sample_index_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, sample_letters) -> Path:
    folder = tmp_path_factory.mktemp("sample-index")
    index_store.update(folder, embedder, add=sample_letters, replace_all=True)
    return folder


@pytest.fixture(scope="session")
def engine(sample_index_dir: Path, embedder: Embedder) -> Engine:
    return Engine(index_store.load(sample_index_dir), embedder)


# --- the web app (tests/test_api.py, tests/test_browser.py) -------------------------------


@pytest.fixture(scope="session")
def web_index(tmp_path_factory: pytest.TempPathFactory, sample_index_dir: Path) -> Path:
    """The web tests' own copy of the sample index: built once, and safe from tests that change an index."""
    import shutil

    folder = tmp_path_factory.mktemp("web") / "index"
    shutil.copytree(sample_index_dir, folder, ignore=shutil.ignore_patterns(".lock"))
    return folder


@pytest.fixture(scope="session")
def web_engine(web_index: Path, embedder: Embedder) -> Engine:
    return Engine(index_store.load(web_index), embedder)


def stop_process(process: subprocess.Popen) -> None:
    """Stop a `qa serve` (or any) child: politely, then for sure."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
