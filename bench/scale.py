"""Scale: exact and approximate vector search (FAISS) and BM25 from 100 k to 5 M passages, and which index
`qa.index.vectors.index_kind` picks at each size.

    cd /work/main && . .venv/bin/activate && python bench/scale.py [--quick] [--sizes 100000,1000000,5000000] [--out docs/benchmarks.md]

1. Vectors: synthetic 384-d unit vectors (`Synthetic`), generated in chunks from a fixed seed so memory stays bounded.
   For each size, every kind of `qa.index.vectors.build` (flat = exact, the reference; hnsw; ivf; ivfpq with exact
   re-ranking) is built by `qa.index.vectors.create` + chunked `add`; we report build seconds, index size (its
   `faiss.write_index` file) and peak memory while building, single-query latency (k 10, one query at a time, FAISS's default threads
   and one thread) and recall@10 against exact search (matrix products over the same chunks), and a sweep of each
   approximate kind's search parameter. Above 1 M only the kind `index_kind` picks is built. The kind picked at the
   largest size up to 1 M is also measured on uniform random vectors, the worst case.
2. Exact search latency on its own at smaller sizes, to place the flat/approximate threshold.
3. BM25: the bulk corpus chunked as `qa` does (`chunk_letter`, `index_text`), the passage texts repeated to n and
   indexed with `qa.index.lexical.LexicalIndex.build`; each unique text is tokenised once and the repeats reuse its tokens
   (tokenising is reported per unique passage). Queries: `bench_questions(200)`, scored with `LexicalIndex.scores`
   and cut to the top 100 by argpartition, as `qa.answer.retrieval` does. Up to 1 M (`--bm25-max`).

`--quick` (the test suite's mode): 20 k vectors and passages, 100 queries, short sweeps; its figures mean nothing.
"""

from __future__ import annotations

import ctypes
import gc
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import BULK, bench_questions, parser, peak_rss_mb, percentiles, table, write_section  # noqa: E402

from qa.index import lexical  # noqa: E402
from qa.index import vectors as V  # noqa: E402
from qa.ingest.chunking import chunk_letter  # noqa: E402
from qa.ingest.letter import Letter  # noqa: E402
from qa.ingest.reading import read_bulk

TITLE = "Scale: vector index kinds and BM25 at 100 k – 5 M passages"
DIMENSION, K, CHUNK = 384, 10, 100_000
SIZES, QUICK_SIZES = (100_000, 1_000_000, 5_000_000), (20_000,)
FLAT_SIZES, QUICK_FLAT_SIZES = (25_000, 50_000, 100_000, 200_000, 400_000), (5_000, 10_000)
QUERIES, QUICK_QUERIES = 500, 100
BM25_QUESTIONS, BM25_TOP = 200, 100
QUICK_BULK_DOCUMENTS = 300
ALL_KINDS_MAX = 1_000_000  # above: only the kind index_kind picks (the others take too long or too much memory)
TARGET_RECALL, TARGET_P99_MS = 0.95, 20.0
MEMORY_BUDGET_MB = 14_000
DEFAULT_THREADS = faiss.omp_get_max_threads()
SWEEPS = {"hnsw": ("efSearch", (16, 32, 64, 128, 256)), "ivf": ("nprobe", (1, 2, 4, 8, 16, 32, 64, 128, 256)),
          "ivfpq": ("k_factor", (1, 2, 4, 8, 16, 32))}


class Synthetic:
    """384-d unit vectors, chunk by chunk from a fixed seed (chunk i is the same for every n).

    Clustered: a point is normalise(centre + its cluster's own 12 directions * gaussian + isotropic noise); uneven
    cluster sizes (log-normal weights). Uniform: normalised gaussian vectors, directions with no structure at all."""

    CLUSTERS, LATENT, SPREAD, NOISE = 3000, 12, 0.8, 0.3

    def __init__(self, clustered: bool = True, seed: int = 7) -> None:
        self.clustered, self.seed = clustered, seed
        if clustered:
            rng = np.random.default_rng([seed, 0])
            centres = rng.standard_normal((self.CLUSTERS, DIMENSION), dtype=np.float32)
            self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
            self.bases = rng.standard_normal((self.CLUSTERS, self.LATENT, DIMENSION), dtype=np.float32)
            self.bases *= np.float32(self.SPREAD / np.sqrt(self.LATENT * DIMENSION))
            weights = rng.lognormal(0.0, 1.0, self.CLUSTERS)
            self.weights = weights / weights.sum()

    def _make(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if not self.clustered:
            points = rng.standard_normal((n, DIMENSION), dtype=np.float32)
        else:
            labels = rng.choice(self.CLUSTERS, size=n, p=self.weights)
            latent = rng.standard_normal((n, self.LATENT), dtype=np.float32)
            points = self.centres[labels]
            order = np.argsort(labels, kind="stable")
            bounds = np.searchsorted(labels[order], np.arange(self.CLUSTERS + 1))
            for cluster in np.flatnonzero(np.diff(bounds)):
                rows = order[bounds[cluster] : bounds[cluster + 1]]
                points[rows] += latent[rows] @ self.bases[cluster]
            points += rng.standard_normal((n, DIMENSION), dtype=np.float32) * np.float32(self.NOISE / np.sqrt(DIMENSION))
        points /= np.linalg.norm(points, axis=1, keepdims=True)
        return points

    def chunks(self, n: int) -> Iterator[np.ndarray]:
        for number, first in enumerate(range(0, n, CHUNK)):
            yield self._make(np.random.default_rng([self.seed, 1, number]), min(CHUNK, n - first))

    def head(self, n: int) -> np.ndarray:
        """The first n rows (a training sample: the chunks are independent draws)."""
        parts, have = [], 0
        for part in self.chunks(n):
            parts.append(part)
            have += len(part)
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def queries(self, n: int) -> np.ndarray:
        """Fresh points of the same distribution, not in the database."""
        return self._make(np.random.default_rng([self.seed, 2]), n)


# --- measuring ----------------------------------------------------------------------------------


def release() -> None:
    """Collect garbage and hand freed heap back to the OS, so RSS growth measures what is still held."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """The highest RSS of this process while the block runs, sampled every 20 ms by a thread."""

    def __enter__(self) -> PeakRss:
        self.peak, self._stop = rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def threads(count: int) -> Iterator[None]:
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(DEFAULT_THREADS)


def exact(data: Synthetic, n: int, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-k ids and cosines of every query over all n rows, by matrix products chunk by chunk."""
    best_scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), K), dtype=np.int64)
    offset = 0
    for part in data.chunks(n):
        scores = queries @ part.T
        top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        ids = np.concatenate([best_ids, top + offset], axis=1)
        keep = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        best_scores, best_ids = np.take_along_axis(scores, keep, axis=1), np.take_along_axis(ids, keep, axis=1)
        offset += len(part)
    order = np.argsort(-best_scores, axis=1)
    return np.take_along_axis(best_ids, order, axis=1), np.take_along_axis(best_scores, order, axis=1)


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(found) & set(true)) / K for found, true in zip(ids, truth)]))


def single_queries(index: faiss.Index, queries: np.ndarray) -> tuple[list[float], np.ndarray]:
    """Milliseconds per query, one query at a time, after one untimed query."""
    index.search(queries[:1], K)
    times, ids = [], np.zeros((len(queries), K), dtype=np.int64)
    for i in range(len(queries)):
        started = time.perf_counter()
        _, found = index.search(queries[i : i + 1], K)
        times.append((time.perf_counter() - started) * 1000)
        ids[i] = found[0]
    return times, ids


def file_mb(index: faiss.Index, expected_mb: float) -> float:
    if shutil.disk_usage(tempfile.gettempdir()).free / 2**20 < 2 * expected_mb:
        return float("nan")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "index.faiss"
        faiss.write_index(index, str(path))
        return path.stat().st_size / 2**20


def build(kind: str, n: int, data: Synthetic) -> tuple[faiss.Index, float]:
    """The index as qa.index.vectors.build makes it, fed chunk by chunk; seconds spent in FAISS (not generating)."""
    sample = data.head(min(n, V.TRAIN_PER_LIST * V.nlist_for(n))) if kind in ("ivf", "ivfpq") else np.zeros((0, DIMENSION), np.float32)
    started = time.perf_counter()
    index = V.create(kind, DIMENSION, n, sample)
    seconds = time.perf_counter() - started
    del sample
    for part in data.chunks(n):
        started = time.perf_counter()
        index.add(part)
        seconds += time.perf_counter() - started
    return index, seconds


def sweep(kind: str, index: faiss.Index, queries: np.ndarray, truth: np.ndarray, quick: bool) -> list[list[object]]:
    name, values = SWEEPS[kind]
    if quick:
        values = values[1:4]
    rows = []
    for value in values:
        if kind == "hnsw":
            index.hnsw.efSearch = value
        elif kind == "ivf":
            if value > index.nlist:
                break
            index.nprobe = value
        else:
            index.k_factor = value
        times, ids = single_queries(index, queries)
        p50, _, p99 = percentiles(times)
        rows.append([f"{name} {value}", recall(ids, truth), p50, p99])
    V.prepare(index)  # back to the stored parameters
    return rows


def measure(kind: str, n: int, data: Synthetic, queries: np.ndarray, truth: np.ndarray, quick: bool) -> tuple[list[object], list[list[object]]]:
    release()
    before = rss_mb()
    with PeakRss() as memory:
        index, seconds = build(kind, n, data)
    size = file_mb(index, n * DIMENSION * 4 / 2**20)
    times, ids = single_queries(index, queries)
    with threads(1):
        times_one, _ = single_queries(index, queries)
    p50, _, p99 = percentiles(times)
    found = recall(ids, truth)
    settings = {"flat": "exact", "hnsw": f"M {V.HNSW_M}, efC {V.HNSW_EF_CONSTRUCTION}, efSearch {V.HNSW_EF_SEARCH}"}
    if kind in ("ivf", "ivfpq"):
        ivf = V._ivf(index)
        settings[kind] = f"nlist {ivf.nlist}, nprobe {ivf.nprobe}" + (f", PQ{V.PQ_SUBVECTORS}, k_factor {V.REFINE_FACTOR}" if kind == "ivfpq" else "")
    swept = [[f"{n:,}", kind, *row] for row in sweep(kind, index, queries, truth, quick)] if kind != "flat" else []
    auto = kind == V.index_kind(n)
    meets = "yes" if found >= TARGET_RECALL and p99 <= TARGET_P99_MS else "no"
    row = [f"{n:,}", "clustered" if data.clustered else "**uniform**", kind + (" ◀ auto" if auto else ""), settings[kind],
           seconds, size, memory.peak - before, p50, p99, percentiles(times_one)[2], found, meets]
    print("  " + " | ".join(str(value) for value in row), flush=True)
    del index
    release()
    return row, swept


def projection(rows: list[list[object]], kind: str, n: int) -> str:
    """What building `kind` at n would cost, from its largest measured build (IVF ~ n**1.5 as nlist ~ sqrt(n))."""
    if kind == "flat":
        return " (the exact reference: ground truth comes from chunked matrix products instead)"
    done = [row for row in rows if str(row[2]).split()[0] == kind and row[1] == "clustered" and isinstance(row[4], float)]
    if not done:
        return ""
    measured = int(str(done[-1][0]).replace(",", ""))
    factor = (n / measured) ** (1.5 if kind in ("ivf", "ivfpq") else 1.1)
    return f"; its build, projected from {measured:,}: ~{float(done[-1][4]) * factor / 60:.0f} min"


def flat_latency(sizes: tuple[int, ...], queries: np.ndarray) -> list[list[object]]:
    data, rows = Synthetic(), []
    for n in sizes:
        index = V.build(data.head(n), "flat")
        times, _ = single_queries(index, queries[:200])
        with threads(1):
            times_one, _ = single_queries(index, queries[:200])
        rows.append([f"{n:,}", *percentiles(times)[::2], *percentiles(times_one)[::2], V.index_kind(n)])
        print("  flat " + " | ".join(str(value) for value in rows[-1]), flush=True)
        del index
        release()
    return rows


# --- BM25 ---------------------------------------------------------------------------------------


def passage_texts(quick: bool) -> tuple[list[str], float]:
    started, texts = time.perf_counter(), []
    letters = (item for item in read_bulk(BULK) if isinstance(item, Letter))
    for number, letter in enumerate(letters):
        if quick and number >= QUICK_BULK_DOCUMENTS:
            break
        texts += [passage.index_text(letter.title) for passage in chunk_letter(letter)]
    return texts, time.perf_counter() - started


def bm25(n: int, unique: list[str], tokens: dict[str, list[str]], questions: list[str]) -> list[object]:
    texts = [unique[i % len(unique)] for i in range(n)]
    release()
    before = rss_mb()
    started = time.perf_counter()
    with PeakRss() as memory, mock.patch.object(lexical, "tokenize", tokens.__getitem__):  # each text tokenised once
        index = lexical.LexicalIndex.build(texts)
    seconds = time.perf_counter() - started
    release()
    grown = rss_mb() - before
    matrix = sum(array.nbytes for array in index._bm25.scores.values() if isinstance(array, np.ndarray)) / 2**20

    def query(question: str) -> np.ndarray:
        scores = index.scores(lexical.tokenize(question))  # noqa: F821 - bound above, before the closure runs
        return np.argpartition(-scores, min(BM25_TOP, len(scores) - 1))[:BM25_TOP]

    for question in questions:  # untimed pass
        query(question)
    times = []
    for question in questions:
        started = time.perf_counter()
        query(question)
        times.append((time.perf_counter() - started) * 1000)
    p50, _, p99 = percentiles(times)
    row = [f"{n:,}", f"{len(unique):,}", seconds, grown, memory.peak - before, matrix, p50, p99]
    print("  bm25 " + " | ".join(str(value) for value in row), flush=True)
    del index, texts
    release()
    return row


# --- report -------------------------------------------------------------------------------------


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--sizes", help=f"Comma-separated numbers of passages [default: {','.join(map(str, SIZES))}].")
    arguments.add_argument("--bm25-max", type=int, default=1_000_000,
                           help="Largest BM25 size [default: 1000000; its build peaks at ~3.3 GB a million passages].")
    args = arguments.parse_args()
    quick = args.quick
    sizes = tuple(int(size) for size in args.sizes.split(",")) if args.sizes else (QUICK_SIZES if quick else SIZES)
    started = time.perf_counter()
    clustered, uniform = Synthetic(), Synthetic(clustered=False)
    queries = clustered.queries(QUICK_QUERIES if quick else QUERIES)

    rows, swept, neighbours = [], [], []
    for n in sizes:
        print(f"vectors: {n:,}", flush=True)
        truth, cosines = exact(clustered, n, queries)
        neighbours.append([f"{n:,}", "clustered", float(cosines[:, 0].mean()), float(cosines[:, -1].mean())])
        for kind in V.KINDS:
            auto = V.index_kind(n)
            need_mb = n * DIMENSION * 4 / 2**20 * (1.3 if kind in ("hnsw", "ivfpq") else 1.1)
            if n > ALL_KINDS_MAX and kind != auto:
                rows.append([f"{n:,}", "clustered", kind, f"skipped: above {ALL_KINDS_MAX:,} only the auto-chosen kind is built"
                             + projection(rows, kind, n), *["-"] * 8])
                continue
            if need_mb > min(MEMORY_BUDGET_MB, available_mb() - 1000):
                rows.append([f"{n:,}", "clustered", kind, f"skipped: needs ~{need_mb:,.0f} MB", *["-"] * 8])
                continue
            row, kind_sweep = measure(kind, n, clustered, queries, truth, quick)
            rows.append(row)
            swept += kind_sweep
    worst = max((n for n in sizes if n <= ALL_KINDS_MAX), default=min(sizes))
    print(f"vectors, uniform: {worst:,}", flush=True)
    uniform_queries = uniform.queries(len(queries))
    truth, cosines = exact(uniform, worst, uniform_queries)
    neighbours.append([f"{worst:,}", "uniform", float(cosines[:, 0].mean()), float(cosines[:, -1].mean())])
    rows.append(measure(V.index_kind(worst), worst, uniform, uniform_queries, truth, quick)[0])

    print("exact search latency", flush=True)
    flat_rows = flat_latency(QUICK_FLAT_SIZES if quick else FLAT_SIZES, queries)

    print("bm25", flush=True)
    unique, chunk_seconds = passage_texts(quick)
    tokenise_started = time.perf_counter()
    tokens = {text: lexical.tokenize(text) for text in unique}
    tokenise_ms = (time.perf_counter() - tokenise_started) * 1000 / len(unique)
    questions = bench_questions(BM25_QUESTIONS)
    bm25_rows: list[list[object]] = []
    for n in sizes:
        if n <= args.bm25_max:
            bm25_rows.append(bm25(n, unique, tokens, questions))
        else:
            measured = [row for row in bm25_rows if isinstance(row[4], float)]
            projected = ""
            if measured:
                largest = int(str(measured[-1][0]).replace(",", ""))
                projected = f": build peak projected from {largest:,}: ~{measured[-1][4] * n / largest / 1024:,.1f} GB"
            bm25_rows.append([f"{n:,}", f"{len(unique):,}", f"skipped (above --bm25-max{projected})", *["-"] * 5])

    total = time.perf_counter() - started
    body = report(sizes, rows, swept, neighbours, flat_rows, bm25_rows, len(queries), len(unique), chunk_seconds, tokenise_ms,
                  len(questions), total, quick)
    print(body)
    write_section(args.out, "scale", TITLE, body)


def threads_note(flat_rows: list[list[object]]) -> str:
    n, p50, _, p50_one, _, _ = flat_rows[-1]
    if DEFAULT_THREADS > 1 and p50_one < p50:
        return (f"\nOne query at a time, FAISS's {DEFAULT_THREADS} OpenMP threads made exact search slower, not faster: p50 "
                f"{p50:.1f} ms against {p50_one:.1f} ms with one thread at {n} (a server answering single questions is "
                "better off with `faiss.omp_set_num_threads(1)`).")
    return ""


def report(sizes, rows, swept, neighbours, flat_rows, bm25_rows, n_queries, n_unique, chunk_seconds, tokenise_ms,
           n_questions, total, quick) -> str:
    command = "python bench/scale.py" + (" --quick" if quick else "") + (f" --sizes {','.join(map(str, sizes))}" if not quick else "")
    return f"""
`{command}` ({total / 60:.1f} min; peak RSS {peak_rss_mb():,.0f} MB). FAISS default threads: {DEFAULT_THREADS}.

**Data.** The vectors are synthetic 384-d unit vectors, because uniform random vectors have no neighbour structure
(every approximate index looks bad on them) and real embeddings are nothing like that: {Synthetic.CLUSTERS:,} random
centres with log-normal sizes, each point the normalised sum of its centre, a gaussian along its cluster's own
{Synthetic.LATENT} directions (spread {Synthetic.SPREAD}) and isotropic noise ({Synthetic.NOISE}), chosen so that
nearest-neighbour cosines look like a sentence-embedding model's (about 0.8–0.9 at the top, table below). The {n_queries} queries are fresh points of the same
distribution, not in the index; recall@10 is against exact search over the same vectors. The last vector row is the worst
case, the automatically chosen kind on uniform random vectors.

| n | data | mean top-1 cosine | mean 10th cosine |
|---|---|---|---|
{chr(10).join(f"| {n} | {data} | {top:.3f} | {tenth:.3f} |" for n, data, top, tenth in neighbours)}

**Index kinds** (`qa.index.vectors.build`; ◀ auto = the kind `index_kind(n)` picks). Build seconds are FAISS time (training
and adding, vectors fed in chunks of {CHUNK:,}); index MB is the `write_index` file; build peak is the most RSS the
process held above its starting point while building (the chunk being added and the training sample included). Latency: one query at a time, k {K}, {n_queries} queries; "1 thread" repeats it with `omp_set_num_threads(1)`.
Target: recall@10 ≥ {TARGET_RECALL} and p99 ≤ {TARGET_P99_MS:.0f} ms (default threads).

{table(["n", "data", "kind", "parameters", "build s", "index MB", "build peak +MB", "p50 ms", "p99 ms", "p99 ms 1 thread", "recall@10", "meets target"], rows)}

**Search parameter sweeps** (same indexes, same queries; the stored parameter is the one in the table above).

{table(["n", "kind", "parameter", "recall@10", "p50 ms", "p99 ms"], swept)}

**Exact search alone** (`IndexFlatIP`, 200 single queries) by size, to place `FLAT_MAX` = {V.FLAT_MAX:,}:

{table(["n", "p50 ms", "p99 ms", "p50 ms 1 thread", "p99 ms 1 thread", "index_kind"], flat_rows)}
{threads_note(flat_rows)}

**BM25** over {n_unique:,} unique passages of the bulk corpus{" (first " + str(QUICK_BULK_DOCUMENTS) + " documents)" if quick else ""}
(reading and chunking {chunk_seconds:.1f} s), repeated to n. Each unique text was tokenised once
({tokenise_ms:.3f} ms a passage, so tokenising n passages outright would add about n × that); the build reuses the
tokens, so its seconds are bm25s indexing and document frequencies. Held is the RSS growth kept after the build, peak
the most above the start during it; matrix MB is bm25s's sparse score matrix. Queries: {n_questions} Dutch questions, `scores(tokenize(q))` plus a top-{BM25_TOP}
argpartition, timed after an untimed pass.

{table(["n", "unique passages", "build s", "held +MB", "build peak +MB", "matrix MB", "p50 ms", "p99 ms"], bm25_rows)}
"""


if __name__ == "__main__":
    main()
