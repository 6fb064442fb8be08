"""Stores: the local index (FAISS + bm25s) against Milvus (milvus-lite) at 100 k and 1 M passages.

    python bench/stores.py [--quick] [--sizes 100000,1000000] [--store milvus-lite:PATH | milvus://HOST:PORT] [--out docs/benchmarks.md]

For each size both stores are written through their `StoreWriter` (what `qa index build` does after embedding;
embedding itself is the same for both and not measured here) and opened as a server opens them, then asked:

- Data: n passages of real Dutch text (the bulk corpus chunked as `qa` does, repeated to n) in synthetic letters of
  PASSAGES_PER_LETTER passages (dates 1990-2025, six senders, four types); each passage's vector is a synthetic
  384-d unit vector (`bench/scale.py`'s clustered `Synthetic`), with SENTENCES_PER_PASSAGE sentence spans whose
  vectors are the passage's plus noise (real letters have ~8 sentences a passage; fewer keep the 1 M build to
  minutes, and a question reads only ~10 passages' sentences).
- Build: seconds from the first batch to the live generation; peak RSS of this process and, for milvus-lite, of its
  Milvus server child process. Open: seconds and RSS to load the live generation (`qa.index.load`).
- Search: p50/p99 ms, one query at a time, k 10: dense (the query vectors of `Synthetic.queries`), BM25
  (`bench_questions`), hybrid (`qa.answer.retrieval.search`), hybrid with a date filter and with a sender filter.
- Ask: p50/p99 ms of `Engine.ask` (retrieval, the reader over the stored sentences, the answer), with an embedder that
  returns the synthetic query vector, so the model's ~15 ms a question (the same for both) is left out.
- Recall@10 of dense search against exact search over the same vectors (both stores choose IVF above
  `qa.index.vectors.FLAT_MAX`, with the same nlist and nprobe), and the overlap of the two stores' BM25 and hybrid top 10.

Tokenising is cached per unique text for both stores (as bench/scale.py does for BM25), so the build time is the
stores' own. `--quick`: 20 k passages, 50 queries; its figures mean nothing.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import bench_questions, parser, percentiles, table, write_section  # noqa: E402
from scale import PeakRss, Synthetic, exact, passage_texts, recall, release, rss_mb  # noqa: E402

from qa.answer import retrieval
from qa.answer.engine import Engine  # noqa: E402
from qa.index import lexical
from qa.index import stores as store  # noqa: E402
from qa.index.filters import Filters  # noqa: E402
from qa.ingest.chunking import Passage  # noqa: E402
from qa.ingest.letter import Letter  # noqa: E402

TITLE = "Stores: the local index against Milvus at 100 k and 1 M passages"
SIZES, QUICK_SIZES = (100_000, 1_000_000), (20_000,)
QUERIES, QUICK_QUERIES = 200, 50
ASKS, QUICK_ASKS = 100, 20
PASSAGES_PER_LETTER, SENTENCES_PER_PASSAGE = 5, 2
SENDERS = ("minister van Defensie", "minister van Infrastructuur en Waterstaat", "minister van Financiën",
           "minister van Volksgezondheid, Welzijn en Sport", "staatssecretaris van Justitie en Veiligheid", "minister van Economische Zaken")
TYPES = ("brief_regering", "antwoord_kamervragen", "motie", "brief_regering")
K = 10


class VectorEmbedder:
    """The synthetic query vector of each question (the model's time is the same for both stores and left out)."""

    name, dimension, backend = "bench-synthetic", 384, "synthetic"

    def __init__(self, questions: list[str], vectors: np.ndarray) -> None:
        self.vectors = {question: vectors[i % len(vectors)][None, :] for i, question in enumerate(questions)}

    def embed_query(self, text: str) -> np.ndarray:
        return self.vectors.get(text, next(iter(self.vectors.values())))

    def embed_passages_with_spans(self, texts: Any, spans: Any, progress: bool = False) -> Any:
        raise NotImplementedError("the benchmark writes vectors itself")


def batches(n: int, unique: list[str], data: Synthetic) -> Any:
    """(letters, passages, vectors, sentences) in batches of PASSAGES_PER_LETTER * 200 passages."""
    rng = np.random.default_rng(11)
    row = 0
    for chunk in data.chunks(n):
        for start in range(0, len(chunk), PASSAGES_PER_LETTER * 200):
            vectors = chunk[start : start + PASSAGES_PER_LETTER * 200]
            letters, passages, sentences = [], [], []
            for first in range(0, len(vectors), PASSAGES_PER_LETTER):
                number = (row + first) // PASSAGES_PER_LETTER
                texts = [unique[(row + first + i) % len(unique)] for i in range(min(PASSAGES_PER_LETTER, len(vectors) - first))]
                text, offsets = "", []
                for part in texts:
                    offsets.append((len(text), len(text) + len(part)))
                    text += part + "\n\n"
                letter = Letter(id=f"bench-{number}", text=text, title=None, date=f"{1990 + number % 36}-{1 + number % 12:02d}-{1 + number % 28:02d}",
                                dossier=str(30000 + number % 500), sender=SENDERS[number % len(SENDERS)], type=TYPES[number % len(TYPES)])
                letters.append(letter)
                for i, (begin, end) in enumerate(offsets):
                    passages.append(Passage(id=f"{letter.id}#{i}", letter_id=letter.id, start=begin, end=end, section=None, page=1,
                                            text=text[begin:end]))
                    middle = (begin + end) // 2
                    spans = np.asarray([(begin, middle), (middle, end)][:SENTENCES_PER_PASSAGE], dtype=np.int64)
                    noisy = vectors[first + i] + rng.standard_normal((len(spans), vectors.shape[1]), dtype=np.float32) * 0.02
                    sentences.append((spans, (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float16)))
            yield letters, passages, vectors, sentences
            row += len(vectors)


def children_rss_mb() -> float:
    """RSS of this process's child processes (milvus-lite runs the Milvus server as one)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(os.getpid()) and "VmRSS" in fields:
            total += int(fields["VmRSS"].split()[0]) / 1024
    return total


def timed(calls: list[Any]) -> tuple[float, float]:
    calls[0]()  # untimed: caches, connections
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    p50, _, p99 = percentiles(times)
    return p50, p99


def measure(location: store.Location, n: int, unique: list[str], data: Synthetic, queries: np.ndarray,
            questions: list[str], truth: np.ndarray, asks: int) -> tuple[list[object], dict[str, list[list[Any]]]]:
    release()
    before, children_before = rss_mb(), children_rss_mb()
    target = store.target(location)
    started = time.perf_counter()
    with PeakRss() as memory:
        writer = target.writer(VectorEmbedder.name, VectorEmbedder.dimension, VectorEmbedder.backend)
        for letters, passages, vectors, sentences in batches(n, unique, data):
            writer.add_letters(letters, {letter.id: "bench" for letter in letters})
            writer.add_passages(passages, vectors, sentences)
        writer.commit()
    build = time.perf_counter() - started
    build_children = children_rss_mb()
    del writer
    release()
    started = time.perf_counter()
    opened = store.load(location)
    open_seconds = time.perf_counter() - started
    release()
    held, server = rss_mb() - before, children_rss_mb() - children_before
    embedder = VectorEmbedder(questions, queries)
    engine = Engine(opened, embedder)  # type: ignore[arg-type]
    found = [[row for row, _ in opened.dense_ranking(vector[None, :], Filters(), K)] for vector in queries]
    dense_ids = np.asarray([rows + [-1] * (K - len(rows)) for rows in found])
    tops = {
        "lexical": [[row for row, _ in opened.lexical_ranking(question, Filters(), K)] for question in questions],
        "lexical scores": [[round(score, 3) for _, score in opened.lexical_ranking(question, Filters(), K)] for question in questions],
        "hybrid": [[opened.rows[hit.passage.id] for hit in retrieval.search(opened, embedder, question, K)] for question in questions],  # type: ignore[arg-type]
    }
    dated, sender = Filters(date_from="2010-01-01", date_to="2015-12-31"), Filters(sender="Defensie")
    latencies = [
        timed([lambda v=vector: opened.dense_ranking(v[None, :], Filters(), K) for vector in queries]),
        timed([lambda q=question: opened.lexical_ranking(q, Filters(), K) for question in questions]),
        timed([lambda q=question: retrieval.search(opened, embedder, q, K) for question in questions]),  # type: ignore[arg-type]
        timed([lambda q=question: retrieval.search(opened, embedder, q, K, dated) for question in questions]),  # type: ignore[arg-type]
        timed([lambda q=question: retrieval.search(opened, embedder, q, K, sender) for question in questions[: max(10, len(questions) // 4)]]),  # type: ignore[arg-type]
        timed([lambda q=question: engine.ask(q) for question in questions[:asks]]),
    ]
    label = {"local": "local (FAISS + bm25s)", "milvus-lite": "Milvus Lite", "milvus": "Milvus server"}[location.kind]
    row: list[object] = [f"{n:,}", label, opened.info()["vector_index"], build, memory.peak - before, build_children, open_seconds, held, server]
    for p50, p99 in latencies:
        row += [p50, p99]
    row.append(recall(dense_ids, truth))
    print("  " + " | ".join(str(value) for value in row), flush=True)
    return row, tops


def overlap(first: list[list[int]], second: list[list[int]]) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(first, second)]))


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--sizes", help=f"Comma-separated numbers of passages [default: {','.join(map(str, SIZES))}].")
    arguments.add_argument("--store", default=None, help="The Milvus store to measure [default: milvus-lite in a temporary folder].")
    args = arguments.parse_args()
    quick = args.quick
    sizes = tuple(int(size) for size in args.sizes.split(",")) if args.sizes else (QUICK_SIZES if quick else SIZES)
    started = time.perf_counter()
    unique, _ = passage_texts(quick)
    tokens = {text: lexical.tokenize(text) for text in unique}
    original = lexical.tokenize

    @functools.wraps(original)
    def cached(text: str) -> list[str]:
        found = tokens.get(text)
        return found if found is not None else original(text)

    questions = bench_questions(QUICK_QUERIES if quick else QUERIES)
    data = Synthetic()
    queries = data.queries(len(questions))
    rows, agreement = [], []
    with ExitStack() as stack:
        for module in ("qa.index.lexical", "qa.index.local.reading", "qa.index.milvus.store", "qa.index.milvus.writer"):
            __import__(module)
            stack.enter_context(mock.patch(f"{module}.tokenize", cached))
        for n in sizes:
            print(f"stores: {n:,} passages", flush=True)
            truth, _ = exact(data, n, queries)
            workspace = Path(tempfile.mkdtemp(prefix="bench-stores-"))
            try:
                local_location = store.Location("local", workspace / "local")
                milvus_location = store.locate(workspace / "data", args.store or f"milvus-lite:{workspace / 'milvus.db'}")
                tops = {}
                for location in (local_location, milvus_location):
                    row, tops[location.kind] = measure(location, n, unique, data, queries, questions, truth, QUICK_ASKS if quick else ASKS)
                    rows.append(row)
                    release()
                    shutil.rmtree(workspace / "local", ignore_errors=True)
                milvus_kind = milvus_location.kind
                agreement.append([f"{n:,}", sum(a == b for a, b in zip(tops["local"]["lexical scores"], tops[milvus_kind]["lexical scores"])) / len(questions),
                                  overlap(tops["local"]["lexical"], tops[milvus_kind]["lexical"]),
                                  overlap(tops["local"]["hybrid"], tops[milvus_kind]["hybrid"]),
                                  sum(a == b for a, b in zip(tops["local"]["hybrid"], tops[milvus_kind]["hybrid"])) / len(questions)])
            finally:
                if milvus_location.kind == "milvus-lite":  # stop its server, or the next size's local row counts it
                    from milvus_lite.server_manager import server_manager_instance

                    store._milvus().close(milvus_location)
                    server_manager_instance.release_server(milvus_location.target)
                shutil.rmtree(workspace, ignore_errors=True)
            # The report after each size: a 1 M run that is stopped keeps the smaller sizes' figures.
            done = tuple(int(str(row[0]).replace(",", "")) for row in agreement)
            body = report(rows, agreement, done, len(unique), len(questions), QUICK_ASKS if quick else ASKS, time.perf_counter() - started, quick)
            print(body)
            write_section(args.out, "stores", TITLE, body)


def report(rows: list[list[object]], agreement: list[list[object]], sizes: tuple[int, ...], unique: int, questions: int, asks: int,
           total: float, quick: bool) -> str:
    command = "python bench/stores.py" + (" --quick" if quick else f" --sizes {','.join(map(str, sizes))}")
    headers = ["n", "store", "vectors", "build s", "build peak +MB", "Milvus server MB", "open s", "held +MB", "server +MB",
               "dense p50", "p99", "BM25 p50", "p99", "hybrid p50", "p99", "+ dates p50", "p99", "+ sender p50", "p99", "ask p50", "p99",
               "dense recall@10"]
    return f"""`{command}` ({total / 60:.1f} min). Passages: {unique:,} unique texts of the bulk corpus repeated; {PASSAGES_PER_LETTER} a letter,
{SENTENCES_PER_PASSAGE} sentences each; vectors synthetic (bench/stores.py says how). Latencies in ms, one query at a time, k {K};
{questions} questions (ask: {asks}). "build peak +MB" is this process above its start while writing; "Milvus server MB" the
milvus-lite child process after the build; "held +MB" / "server +MB" what this process / the server hold after opening it.
Embedding is not included (the same for both stores: ~7 passages/s on 2 cores, docs/benchmarks.md, Indexing).

{table(headers, rows)}

**The two stores agree** (the same vectors, the same tokens): questions whose BM25 top {K} has the same scores (to 3
decimals) on both, the mean overlap of the BM25 and hybrid top {K} passages, and questions with the identical hybrid top
{K}. The texts repeat (every unique text ~n / {unique:,} times), so BM25 ties abound, and a store keeps any {K} of the passages
tied at the cut: the passages differ where the scores do not.

{table(["n", "same BM25 top-10 scores", "BM25 top-10 overlap", "hybrid top-10 overlap", "identical hybrid top 10"], agreement)}
"""


if __name__ == "__main__":
    main()
