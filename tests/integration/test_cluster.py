"""`qa index build --ray` (qa/embed/cluster.py) and resumable builds (qa/embed/batches.py), for real: the real model, a real
local Ray cluster, a real SIGKILL. A Ray build equals the single-process build; a killed build run again embeds
fewer batches and gives the same index, the live index intact throughout; bad input, or too little memory for an
actor, is one line and exit 2; an actor that dies is not restarted, and said once."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TEST_MODEL

import qa.embed.embedding
from qa.cli import main
from qa.core.errors import SettingsError
from qa.core.settings import SAMPLE_CORPUS
from qa.embed import cluster
from qa.index import local as index_store
from qa.ingest.reading import read_letters

ROOT = Path(__file__).resolve().parents[2]
# Six sample letters, 100-odd passages: four batches of 32, so a build can be killed between batches.
LETTERS = ("rijksoverheid-kamerbrief-2023-02-03-npce.txt", "rijksoverheid-kamerbrief-2023-10-18-verzamelbrief-luchtvaart.txt",
           "ah-tk-20232024-1786.txt", "ah-tk-20232024-1178.pdf", "ah-tk-20232024-1771.txt", "kst-27925-781.txt")


@pytest.fixture(scope="module")
def letters_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("letters")
    for name in LETTERS:
        shutil.copy(SAMPLE_CORPUS / "letters" / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, embedder, letters_dir: Path) -> Path:  # type: ignore[no-untyped-def]
    """The same letters built in one process, as `qa index build` without --ray does."""
    folder = tmp_path_factory.mktemp("reference") / "index"
    index_store.update(folder, embedder, add=read_letters([letters_dir]).letters, replace_all=True)
    return folder


@pytest.fixture()
def short_tmp() -> Iterator[Path]:
    """The child's TMPDIR: Ray puts its sockets under it, and an AF_UNIX path (107 bytes) has no room for pytest's folders."""
    folder = Path(tempfile.mkdtemp(prefix="qa-test-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_qa(*args: str, tmp: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, env=_env(tmp), cwd=ROOT, timeout=timeout)


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "QA_MODEL": TEST_MODEL, "TMPDIR": str(tmp), "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}


def assert_same_index(built: Path, expected: Path) -> None:
    a, b = index_store.load(built), index_store.load(expected)
    assert a.manifest["letters"] == b.manifest["letters"] and a.manifest["model"] == b.manifest["model"]
    assert [(p.id, p.start, p.end) for p in a.passages] == [(p.id, p.start, p.end) for p in b.passages]
    rows = list(range(len(a.passages)))
    assert np.allclose(a.passage_vectors(rows), b.passage_vectors(rows), atol=1e-5)
    assert np.array_equal(a.sentence_spans, b.sentence_spans)
    # float16 in the index: the same float32 rounds to the same value, and one step (~1e-3) covers a last-bit difference
    assert np.allclose(a.sentence_vectors.astype(np.float32), b.sentence_vectors.astype(np.float32), atol=2e-3)


def _ray_home() -> list[str]:
    home = Path.home() / ".ray"
    return sorted(f"{path}:{path.stat().st_mtime_ns}" for path in home.rglob("*")) if home.exists() else []


@pytest.mark.slow
def test_a_local_ray_build_equals_the_single_process_build(tmp_path: Path, short_tmp: Path, reference: Path, letters_dir: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[ray]'")
    home_before = _ray_home()
    built = run_qa("index", "build", str(letters_dir), "--index", str(tmp_path / "index"), "--ray", tmp=short_tmp)
    assert built.returncode == 0, built.stderr
    assert re.search(r"embedding on a local Ray cluster of \d+ CPUs?.*: \d+ actors?, one per CPU", built.stderr), built.stderr
    assert_same_index(tmp_path / "index", reference)
    assert not list(short_tmp.glob("qa-ray-*"))  # the cluster's folder went with it
    assert _ray_home() == home_before  # no token file or session written to ~/.ray


@pytest.mark.slow
def test_a_killed_build_resumes_with_fewer_batches_and_the_same_index(tmp_path: Path, short_tmp: Path, reference: Path,
                                                                     letters_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "index"
    index_store.update(folder, embedder, add=read_letters([SAMPLE_CORPUS / "letters" / "kst-33279-1.txt"]).letters, replace_all=True)
    live = (folder / "CURRENT").read_text()
    checkpoints = folder / index_store.BUILD_FOLDER

    child = subprocess.Popen([sys.executable, "-m", "qa", "index", "build", str(letters_dir), "--index", str(folder)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(short_tmp), cwd=ROOT)
    deadline = time.monotonic() + 600
    while not list(checkpoints.glob("*.npz")):
        assert child.poll() is None, child.communicate()[1]
        assert time.monotonic() < deadline, "no batch was checkpointed in 10 minutes"
        assert (folder / "CURRENT").read_text() == live
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    saved = len(list(checkpoints.glob("*.npz")))
    assert (folder / "CURRENT").read_text() == live and set(index_store.load(folder).letters) == {"kst-33279-1"}  # intact

    again = run_qa("index", "build", str(letters_dir), "--index", str(folder), tmp=short_tmp)
    assert again.returncode == 0, again.stderr
    match = re.search(r"(\d+) passages \(.*embedded (\d+) passages in [\d.]+ s, (\d+) more read back", again.stdout)
    assert match, again.stdout
    total, embedded, read_back = map(int, match.groups())
    assert read_back >= 32 * saved - 31 and embedded + read_back == total and embedded < total
    assert_same_index(folder, reference)
    assert not checkpoints.exists()


@pytest.mark.slow
def test_a_ray_build_into_milvus_lite_holds_the_single_process_vectors(tmp_path: Path, short_tmp: Path, reference: Path, letters_dir: Path) -> None:
    """`--ray` writes to the store `--store` names (qa/index): here Milvus Lite, read back through the store interface."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    pytest.importorskip("pymilvus", reason="the milvus extra is not installed")
    from qa.index import stores as store

    data, database = tmp_path / "data", f"milvus-lite:{tmp_path / 'data' / 'milvus.db'}"
    data.mkdir()  # the Milvus Lite file's folder must exist (the store does not make it)
    built = run_qa("index", "build", str(letters_dir), "--index", str(data), "--store", database, "--ray", tmp=short_tmp)
    assert built.returncode == 0, built.stderr
    assert "embedding on a local Ray cluster of" in built.stderr, built.stderr
    milvus, local = store.load(store.locate(data, database)), index_store.load(reference)
    assert [(p.id, p.start, p.end) for p in milvus.passages] == [(p.id, p.start, p.end) for p in local.passages]
    rows = list(range(len(local.passages)))
    assert np.allclose(milvus.passage_vectors(rows), local.passage_vectors(rows), atol=1e-5)
    for row in rows:
        (spans, vectors), (expected_spans, expected) = milvus.sentences(row), local.sentences(row)
        assert np.array_equal(spans, expected_spans) and np.allclose(np.asarray(vectors, np.float32), expected.astype(np.float32), atol=2e-3)
    assert not (data / index_store.BUILD_FOLDER).exists()


@pytest.mark.slow
def test_short_of_memory_a_ray_build_is_one_line_before_ray_starts(small_index: Path, short_tmp: Path) -> None:
    """A memory budget below one actor's (here $QA_RAY_MEMORY; on a loaded machine MemAvailable): exit 2 before the
    cluster or any model is started, not workers killed while loading the model."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    before = (small_index / "CURRENT").read_text()
    built = subprocess.run([sys.executable, "-m", "qa", "index", "build", str(SAMPLE_CORPUS / "letters" / "kst-27925-781.txt"),
                            "--index", str(small_index), "--ray"], capture_output=True, text=True, cwd=ROOT, timeout=300,
                           env={**_env(short_tmp), cluster.MEMORY_ENV: "1500M"})
    assert built.returncode == 2, built.stderr
    assert built.stderr.splitlines() == [
        "Error: not enough memory for a Ray build on this machine: 1.5 GB available, one actor needs 2.0 GB (one copy of the model) "
        "beside 1.2 GB for the driver and Ray's object store; free memory, raise $QA_RAY_MEMORY if it is set, or build without "
        "--ray (one copy of the model, in this process)"]
    assert not list(short_tmp.glob("qa-ray-*"))  # no cluster was started
    _intact(small_index, before)


@pytest.mark.slow
def test_an_actor_that_dies_is_not_restarted_and_is_said_once(short_tmp: Path) -> None:
    """SIGKILL of an actor's process mid-build (what the kernel's or Ray's OOM killer does): the run stops with one
    ClusterError naming the batches done, and the actor stays dead (max_restarts=0) instead of loading the model again."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    from qa.embed.batches import plan

    texts = [f"Dit is zin {i}. En dit is de volgende zin." for i in range(320)]
    batches = plan(TEST_MODEL, texts, [np.asarray([[0, 14], [15, len(text)]]) for text in texts], size=32)
    done = 0
    with cluster.RayRunner(TEST_MODEL, num_cpus=1, temp_dir=short_tmp) as runner, pytest.raises(cluster.ClusterError) as failed:
        (actor,) = runner.actors
        pid = ray.get(actor.__ray_call__.remote(lambda _: os.getpid()))
        for _ in runner.run(batches):
            done += 1
            if done == 2:
                os.kill(pid, signal.SIGKILL)
    message = str(failed.value)
    assert message.startswith(f"a Ray actor died while embedding, after {done} of {len(batches)} batches: ") and "\n" not in message
    assert message.endswith("the finished batches are kept: run the same command again to embed the rest")
    assert done == 2  # nothing more came back from it: its batch was not retried on a restarted actor
    assert isinstance(failed.value.__cause__, ray.exceptions.RayActorError)


# --- bad input: one line, exit 2, the index as it was (no model, no cluster) ---------------------------------


@pytest.fixture()
def small_index(tmp_path: Path, fake_embedder) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "index"
    index_store.update(folder, fake_embedder, add=read_letters([SAMPLE_CORPUS / "letters" / "kst-33279-1.txt"]).letters, replace_all=True)
    return folder


def _no_model(*_: object, **__: object) -> None:
    raise AssertionError("the embedding model was loaded")


def _build(index: Path, *options: str) -> object:
    return CliRunner().invoke(main, ["index", "build", str(SAMPLE_CORPUS / "letters" / "kst-27925-781.txt"), "--index", str(index), *options])


def _intact(index: Path, before: str) -> None:
    assert (index / "CURRENT").read_text() == before and set(index_store.load(index).letters) == {"kst-33279-1"}
    assert not (index / index_store.BUILD_FOLDER).exists()


@pytest.mark.parametrize("address", ["nonsense", "http://head:6379", "head:99999", "head:"])
def test_a_malformed_ray_address_is_one_line(small_index: Path, address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qa.embed.embedding, "Embedder", _no_model)
    before = (small_index / "CURRENT").read_text()
    result = _build(small_index, f"--ray={address}")
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert result.stderr.splitlines() == [f"Error: --ray {address!r} is not a Ray address: give HOST:PORT of the head node, ray://HOST:PORT "  # type: ignore[attr-defined]
                                          "or auto (or nothing, for a local cluster; put --ray after the letter folders, or write --ray=ADDRESS)"]
    _intact(small_index, before)


def test_an_unreachable_ray_cluster_is_one_line(small_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    monkeypatch.setattr(qa.embed.embedding, "Embedder", _no_model)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    before = (small_index / "CURRENT").read_text()
    started = time.monotonic()
    result = _build(small_index, "--ray", f"127.0.0.1:{port}")
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert result.stderr.startswith(f"Error: cannot reach the Ray cluster at 127.0.0.1:{port} (") and len(result.stderr.splitlines()) == 1  # type: ignore[attr-defined]
    assert time.monotonic() - started < cluster.CONNECT_SECONDS + 30  # not Ray's own minutes of retrying
    _intact(small_index, before)


def test_without_ray_installed_the_build_says_what_to_install(small_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where the extra is not installed
    monkeypatch.setattr(qa.embed.embedding, "Embedder", _no_model)
    before = (small_index / "CURRENT").read_text()
    result = _build(small_index, "--ray")
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert result.stderr.splitlines() == [f"Error: --ray needs Ray: pip install 'kamerbrieven-qa[ray]' (or {cluster.RAY_REQUIREMENT!r})"]  # type: ignore[attr-defined]
    _intact(small_index, before)


def test_the_ray_option_reads_an_address_or_none() -> None:
    assert cluster.check_address(None) is None and cluster.check_address("local") is None
    for address in ("auto", "10.0.0.5:6379", "ray://head.example:10001", "[::1]:6379"):
        assert cluster.check_address(address) == address


def test_a_machine_short_of_memory_is_one_line_without_ray_or_model(small_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MemAvailable below one actor: refused before ray.init, so no worker is started only to be killed loading the model."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    monkeypatch.setattr(qa.embed.embedding, "Embedder", _no_model)
    monkeypatch.setattr(ray, "init", _no_model)
    monkeypatch.setattr(cluster, "_meminfo_available", lambda: 2 * 1024**3)
    monkeypatch.delenv(cluster.MEMORY_ENV, raising=False)
    before = (small_index / "CURRENT").read_text()
    result = _build(small_index, "--ray")
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    (line,) = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert line.startswith("Error: not enough memory for a Ray build on this machine: 2.0 GB available, one actor needs 2.0 GB")
    _intact(small_index, before)


def test_the_actors_are_as_many_as_the_memory_holds() -> None:
    """One per CPU while the memory lasts: each actor holds a model (ACTOR_MEMORY) beside the driver and the object store."""
    gb, reserved = 1024**3, cluster.DRIVER_MEMORY + cluster.OBJECT_STORE_MEMORY
    assert cluster.actor_count(24 * gb, 2) == 2  # this machine, quiet
    assert cluster.actor_count(16 * gb, 2) == 2  # with 8 GB in use by other work
    assert cluster.actor_count(reserved + 2 * cluster.ACTOR_MEMORY - 1, 2) == 1
    assert cluster.actor_count(reserved + cluster.ACTOR_MEMORY, 2) == 1
    assert cluster.actor_count(reserved + cluster.ACTOR_MEMORY - 1, 2) == 0  # not even one: the build says so
    assert cluster.actor_count(0, 2) == 0 and cluster.actor_count(gb, 64) == 0  # never negative
    assert cluster.actor_count(1024 * gb, 64) == 64  # never more than the CPUs
    assert cluster.actor_count(9 * gb, 8, actor=gb, reserved=0) == 8  # a cluster's own memory resource: nothing reserved


def test_the_memory_budget_is_meminfo_capped_by_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cluster._meminfo_available() > 0  # /proc/meminfo's MemAvailable
    monkeypatch.setattr(cluster, "_meminfo_available", lambda: 8 * 1024**3)
    monkeypatch.delenv(cluster.MEMORY_ENV, raising=False)
    assert cluster.available_memory() == 8 * 1024**3
    for setting, expected in (("3G", 3 * 1024**3), ("1500M", 1500 * 1024**2), ("2.5GiB", int(2.5 * 1024**3)), ("4096", 4096), ("64G", 8 * 1024**3)):
        monkeypatch.setenv(cluster.MEMORY_ENV, setting)
        assert cluster.available_memory() == expected, setting  # a cap: never more than is available
    monkeypatch.setenv(cluster.MEMORY_ENV, "lots")
    with pytest.raises(SettingsError, match="QA_RAY_MEMORY='lots': expected bytes or a size like 3G or 512M"):
        cluster.available_memory()


def test_a_ray_build_driver_loads_the_model_only_when_it_embeds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The actors hold the model; the driver's LazyEmbedder has its name and dimension without loading it."""
    loaded: list[str] = []

    class Model:
        def __init__(self, name: str, backend: str) -> None:
            loaded.append(name)

        def embed_query(self, text: str) -> np.ndarray:
            return np.ones((1, 384), np.float32)

    monkeypatch.setattr(qa.embed.embedding, "Embedder", Model)
    lazy = qa.embed.embedding.LazyEmbedder("multilingual-e5-small", 384, "torch")
    assert (lazy.name, lazy.dimension, loaded) == ("multilingual-e5-small", 384, [])
    assert lazy.embed_query("vraag").shape == (1, 384) and lazy.embed_query("nog een") is not None and loaded == ["multilingual-e5-small"]
