"""Which FAISS index for how many passages, built and loaded the same way every time.

Vectors are L2-normalised (inner product = cosine); row ids are positions 0..n-1, the passage rows.
The numbers below come from `python bench/scale.py` (docs/benchmarks.md, section "scale")."""

from __future__ import annotations

import math

import faiss
import numpy as np

KINDS = ("flat", "hnsw", "ivf", "ivfpq")
# Exact search up to here: its single-query p99 stays well inside the target, and IVF is not needed
# for speed below it (latencies by size and threads: docs/benchmarks.md, section Scale).
FLAT_MAX = 50_000
SEED = 1234  # training sample and k-means, so a rebuild gives the same index
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 64, 256  # efSearch 64 gave recall 0.87 at 1 M, 256 gave 0.95
# 16 dims a PQ code (8-dim codebooks train 10x slower; 16-dim encoding takes up to 1.6 GB of BLAS
# tables while adding). Re-ranking k_factor 4 gave recall 0.89 at 1 M, 16 gave 0.99.
PQ_SUBVECTORS, REFINE_FACTOR = 24, 16
TRAIN_PER_LIST = 50  # k-means sample per IVF list: enough for stable lists, and training stays ~linear in n
KMEANS_ITERATIONS = 10  # training time is linear in it; the lists barely move after that


def index_kind(n: int) -> str:
    """Exact while it is fast enough, then IVF: at 1 M it met recall and p99 with a wide margin,
    built 2.8x faster and 14% smaller than HNSW (which needed efSearch 256 for recall 0.95), and keeps
    its recall under filters (see search_parameters), where HNSW loses most of it."""
    return "flat" if n <= FLAT_MAX else "ivf"


def nlist_for(n: int) -> int:
    """About 4*sqrt(n) lists, with at least 39 training points a list (k-means needs them)."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


def nprobe_for(nlist: int) -> int:
    """2*sqrt(nlist) lists a query (127 of 4000 at 1 M). The synthetic data of the benchmark need
    only ~8 there; real embeddings are less neatly clustered, so keep the margin while a query
    still scans only ~n**0.75 vectors (its latency at 1 M: docs/benchmarks.md, section Scale)."""
    return max(8, math.ceil(2 * math.sqrt(nlist)))


def create(kind: str, d: int, n: int, sample: np.ndarray) -> faiss.Index:
    """An empty index of `kind` for about n vectors, trained on (part of) `sample` if it needs it.
    Add the vectors in order afterwards, in chunks if need be: their ids are their positions."""
    if kind == "flat":
        index: faiss.Index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    elif kind in ("ivf", "ivfpq"):
        nlist, quantizer = nlist_for(n), faiss.IndexFlatIP(d)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFPQ(quantizer, d, nlist, PQ_SUBVECTORS, 8, faiss.METRIC_INNER_PRODUCT)
            index.pq.cp.seed, index.pq.cp.niter, index.pq.cp.max_points_per_centroid = SEED, KMEANS_ITERATIONS, 64
        index.cp.spherical, index.cp.seed, index.cp.niter = True, SEED, KMEANS_ITERATIONS  # unit centroids
        rows = np.random.default_rng(SEED).choice(len(sample), min(len(sample), TRAIN_PER_LIST * nlist), replace=False)
        index.train(np.ascontiguousarray(sample[np.sort(rows)], dtype=np.float32))
        if kind == "ivfpq":
            index = faiss.IndexRefineFlat(index)  # re-rank PQ candidates exactly, from full vectors
    else:
        raise ValueError(f"unknown index kind {kind!r} (one of {', '.join(KINDS)})")
    return prepare(index)


def build(vectors: np.ndarray, kind: str | None = None) -> faiss.Index:
    """The index of `vectors` (row i has id i); kind None picks it by size."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = create(kind or index_kind(len(vectors)), vectors.shape[1], len(vectors), vectors)
    if len(vectors):
        index.add(vectors)
    return index


def prepare(index: faiss.Index) -> faiss.Index:
    """Search parameters and the row -> vector map, for a built or a freshly read index. FAISS keeps
    them in the file too; setting them again makes a tuning change here apply to indexes on disk."""
    kind = kind_of(index)
    if kind == "hnsw":
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind in ("ivf", "ivfpq"):
        ivf = _ivf(index)
        ivf.nprobe = nprobe_for(ivf.nlist)
        if ivf.direct_map.type == faiss.DirectMap.NoMap:
            ivf.make_direct_map()  # reconstruct(row) for ivf (ivfpq reconstructs from its refine copy)
        if kind == "ivfpq":
            index.k_factor = REFINE_FACTOR
    return index


def kind_of(index: faiss.Index) -> str:
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine) and isinstance(faiss.downcast_index(index.base_index), faiss.IndexIVFPQ):
        return "ivfpq"
    for kind, cls in (("hnsw", faiss.IndexHNSWFlat), ("ivf", faiss.IndexIVFFlat), ("flat", faiss.IndexFlatIP)):
        if isinstance(index, cls):
            return kind
    raise ValueError(f"unsupported FAISS index {type(index).__name__}")


def search_parameters(index: faiss.Index, rows: np.ndarray) -> faiss.SearchParameters:
    """Parameters to search only `rows`. IVF and HNSW refuse plain SearchParameters, and a filter
    keeping a fraction f of the rows needs 1/f times the lists (or efSearch) for the same recall:
    at 3% of 100 k rows, IVF recall@10 fell from 1.0 to 0.76 without that."""
    selector, kind = faiss.IDSelectorBatch(np.asarray(rows, dtype=np.int64)), kind_of(index)
    widen = index.ntotal / max(1, len(rows))
    if kind == "hnsw":
        return faiss.SearchParametersHNSW(sel=selector, efSearch=min(index.ntotal, math.ceil(index.hnsw.efSearch * widen)))
    if kind in ("ivf", "ivfpq"):
        ivf = _ivf(index)
        params = faiss.SearchParametersIVF(sel=selector, nprobe=min(ivf.nlist, math.ceil(ivf.nprobe * widen)))
        if kind == "ivfpq":
            return faiss.IndexRefineSearchParameters(sel=selector, k_factor=index.k_factor, base_index_params=params)
        return params
    return faiss.SearchParameters(sel=selector)


def _ivf(index: faiss.Index) -> faiss.IndexIVF:
    index = faiss.downcast_index(index)
    return faiss.downcast_index(index.base_index) if isinstance(index, faiss.IndexRefine) else index
