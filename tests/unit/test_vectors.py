"""qa.index.vectors: every index kind finds the exact neighbours, keeps row ids, and survives a write/read."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from qa.index import vectors

N, D, K = 12_000, 384, 10
ANN_KINDS = ("hnsw", "ivf", "ivfpq")


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors in 40 clusters, each spread along its own 8 directions: neighbours are graded, not ties,
    and nearby points fall in different IVF lists (one list alone finds about half of them)."""
    layout = np.random.default_rng(99)
    centres = layout.standard_normal((40, D)).astype(np.float32)
    bases = layout.standard_normal((40, 8, D)).astype(np.float32) * np.float32(0.3)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 40, n)
    points = centres[labels] + np.einsum("nl,nld->nd", rng.standard_normal((n, 8)).astype(np.float32), bases[labels])
    points += rng.standard_normal((n, D)).astype(np.float32) * np.float32(0.2)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Deterministic HNSW builds, and no OpenMP waits for a busy core on a shared machine (the results are the same)."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered(N, seed=0)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return clustered(200, seed=1)


@pytest.fixture(scope="module")
def exact(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return np.argsort(-(queries @ data.T), axis=1)[:, :K]


@pytest.fixture(scope="module")
def built(data: np.ndarray) -> dict[str, faiss.Index]:
    return {kind: vectors.build(data, kind) for kind in vectors.KINDS}


def recall(index: faiss.Index, queries: np.ndarray, exact: np.ndarray) -> float:
    _, found = index.search(queries, K)
    return float(np.mean([len(set(row) & set(true)) / K for row, true in zip(found, exact)]))


@pytest.mark.parametrize("kind", vectors.KINDS)
def test_each_kind_is_inner_product_over_positions(built: dict[str, faiss.Index], data: np.ndarray, kind: str) -> None:
    index = built[kind]
    assert vectors.kind_of(index) == kind
    assert index.ntotal == N and index.d == D and index.metric_type == faiss.METRIC_INNER_PRODUCT
    rows = np.arange(0, N, 97)
    scores, found = index.search(data[rows], 1)
    assert (found[:, 0] == rows).mean() >= 0.98  # a stored vector finds its own row first
    assert np.allclose(scores[found[:, 0] == rows, 0], 1.0, atol=1e-4)  # cosine, not a distance


def test_flat_is_exact(built: dict[str, faiss.Index], queries: np.ndarray, exact: np.ndarray) -> None:
    assert recall(built["flat"], queries, exact) == 1.0


@pytest.mark.parametrize("kind", ANN_KINDS)
def test_approximate_kinds_find_the_exact_neighbours(built: dict[str, faiss.Index], queries: np.ndarray, exact: np.ndarray,
                                                     kind: str) -> None:
    assert recall(built[kind], queries, exact) >= 0.9


def test_ivf_needs_its_stored_nprobe(built: dict[str, faiss.Index], queries: np.ndarray, exact: np.ndarray) -> None:
    """The data are hard enough that the search parameters matter (so the recall test above can fail)."""
    index = built["ivf"]
    assert index.nprobe == vectors.nprobe_for(index.nlist) > 1
    index.nprobe = 1
    try:
        assert recall(index, queries, exact) < 0.8
    finally:
        vectors.prepare(index)


@pytest.mark.parametrize("kind", vectors.KINDS)
def test_write_read_prepare_behaves_like_built(built: dict[str, faiss.Index], data: np.ndarray, queries: np.ndarray,
                                               tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.faiss"
    faiss.write_index(built[kind], str(path))
    loaded = vectors.prepare(faiss.read_index(str(path)))
    assert vectors.kind_of(loaded) == kind
    assert np.array_equal(loaded.reconstruct(1234), data[1234])
    assert np.array_equal(loaded.reconstruct_n(N - 5, 5), data[N - 5 :])
    assert np.array_equal(loaded.search(queries, K)[1], built[kind].search(queries, K)[1])


def test_prepare_restores_what_a_file_lacks(built: dict[str, faiss.Index], data: np.ndarray, tmp_path: Path) -> None:
    index = built["ivf"]
    index.set_direct_map_type(faiss.DirectMap.NoMap)
    index.nprobe = 1
    try:
        faiss.write_index(index, str(tmp_path / "bare.faiss"))
    finally:
        vectors.prepare(index)
    loaded = faiss.read_index(str(tmp_path / "bare.faiss"))
    with pytest.raises(RuntimeError):
        loaded.reconstruct(7)
    vectors.prepare(loaded)
    assert loaded.nprobe == vectors.nprobe_for(loaded.nlist)
    assert np.array_equal(loaded.reconstruct(7), data[7])


# HNSW with a 1% filter needs efSearch ~ n (slow by design, and not what index_kind picks).
@pytest.mark.parametrize(("kind", "step"), [(kind, 3) for kind in vectors.KINDS] + [("flat", 100), ("ivf", 100), ("ivfpq", 100)])
def test_search_parameters_keep_to_the_rows_and_the_recall(built: dict[str, faiss.Index], data: np.ndarray,
                                                           queries: np.ndarray, kind: str, step: int) -> None:
    """Searching a third or a hundredth of the rows (a filter) finds the exact neighbours among them."""
    rows = np.arange(0, N, step)
    _, found = built[kind].search(queries, K, params=vectors.search_parameters(built[kind], rows))
    assert np.all(found % step == 0)
    exact_rows = rows[np.argsort(-(queries @ data[rows].T), axis=1)[:, :K]]
    assert np.mean([len(set(row) & set(true)) / K for row, true in zip(found, exact_rows)]) >= 0.9


def test_index_kind_switches_at_the_threshold(monkeypatch: pytest.MonkeyPatch, data: np.ndarray) -> None:
    assert vectors.index_kind(0) == vectors.index_kind(vectors.FLAT_MAX) == "flat"
    assert vectors.index_kind(vectors.FLAT_MAX + 1) == vectors.index_kind(10_000_000) != "flat"
    assert vectors.kind_of(vectors.build(data[:2000])) == "flat"
    monkeypatch.setattr(vectors, "FLAT_MAX", 1000)
    assert vectors.kind_of(vectors.build(data[:2000])) == vectors.index_kind(2000) != "flat"


def test_nlist_leaves_enough_training_points() -> None:
    for n in (1, 100, 5_000, 100_000, 1_000_000, 5_000_000):
        nlist = vectors.nlist_for(n)
        assert 1 <= nlist and (n < 39 or n // nlist >= 39)
    assert vectors.nlist_for(1_000_000) == 4000


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError):
        vectors.build(np.zeros((10, D), np.float32), "lsh")
    with pytest.raises(ValueError):
        vectors.kind_of(faiss.IndexFlatL2(D))
