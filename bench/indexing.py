"""Indexing throughput on the bulk corpus: the whole build against the bare model, and an incremental add.

    python bench/indexing.py                   # all 5,023 bulk documents (about an hour on 2 cores)
    python bench/indexing.py --documents 1000  # a prefix of the bulk file
    python bench/indexing.py --quick           # 8 documents, the test suite's mode

The build is `qa index build` without the command line: read and clean the documents, chunk
them, embed the chunks (passage and sentence vectors in one pass), write FAISS, BM25 and the
rest. The floor is the bare `model.encode` over the same chunk texts with the same batch size,
timed in the same process right after the build; overhead ratio = build time / that time.
Then 10 held-back documents are added to the built index, which must embed only their chunks.
"""

from __future__ import annotations

import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BULK, parser, peak_rss_mb, table, write_section  # noqa: E402
from qa.embed.embedding import Embedder, default_model_name  # noqa: E402
from qa.index import local as index_store  # noqa: E402
from qa.ingest.letter import Letter  # noqa: E402
from qa.ingest.reading import read_bulk

BATCH_SIZE = 32
HELD_BACK = 10


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--documents", type=int, default=None, help="Use the first N bulk documents [default: all].")
    arguments.add_argument("--model", default=None, help="Embedding model [default: $QA_MODEL or multilingual-e5-small].")
    arguments.add_argument("--backend", default=None, help="Embedding backend [default: $QA_BACKEND or onnx]; bench/backends.py compares them.")
    arguments.add_argument("--keep", type=Path, default=None, metavar="INDEX", help="Build the index here and keep it (for bench/latency.py).")
    args = arguments.parse_args()
    documents = 8 if args.quick and args.documents is None else args.documents

    started = time.perf_counter()
    embedder = Embedder(args.model or default_model_name(), backend=args.backend)
    load_seconds = time.perf_counter() - started
    embedder.embed_passages(["opwarmen"] * BATCH_SIZE, batch_size=BATCH_SIZE)  # first-call costs, for both sides

    with tempfile.TemporaryDirectory(prefix="bench-indexing-") as workspace:
        folder = args.keep or Path(workspace) / "index"
        phases: dict[str, float] = {}

        def log(message: str) -> None:
            phases.setdefault(message.split()[0], time.perf_counter())

        started = time.perf_counter()
        letters = list(islice((letter for letter in read_bulk(BULK) if isinstance(letter, Letter)), documents))
        held = 2 if args.quick else HELD_BACK
        build, held_back = letters[:-held], letters[-held:]
        summary = index_store.update(folder, embedder, add=build, replace_all=True, log=log)
        finished = time.perf_counter()
        build_seconds = finished - started
        read_and_chunk, embed, write = (phases["embedding"] - started, phases["writing"] - phases["embedding"], finished - phases["writing"])
        build_rss = peak_rss_mb()
        size = folder_bytes(folder)
        index = index_store.load(folder)
        texts = [p.index_text(index.letters[p.letter_id].title) for p in index.passages]
        characters = sum(len(p.text) for p in index.passages)
        del index

        started = time.perf_counter()
        embedder.embed_passages(texts, batch_size=BATCH_SIZE)  # the model alone (its prefix added), no spans
        encode_seconds = time.perf_counter() - started

        added = index_store.update(folder, embedder, add=held_back)
        assert added.embedded < summary.passages, "an incremental add must not re-embed the index"

    chunks = summary.passages
    rows = [
        ("documents / chunks", f"{len(build):,} / {chunks:,} ({characters / max(chunks, 1):,.0f} characters each)"),
        ("model load", f"{load_seconds:.1f} s"),
        ("whole build (read, clean, chunk, embed, BM25, FAISS, write)", f"{build_seconds:,.1f} s"),
        ("… of which reading, cleaning, chunking / embedding / BM25, FAISS and writing", f"{read_and_chunk:.1f} s / {embed:,.1f} s / {write:.1f} s"),
        ("chunks/s", f"{chunks / build_seconds:.2f}"),
        ("bare `model.encode` of the same chunk texts (batch 32)", f"{encode_seconds:,.1f} s ({chunks / encode_seconds:.2f} chunks/s)"),
        ("**overhead ratio** (build / bare encode; target ≤ 1.15)", f"**{build_seconds / encode_seconds:.3f}**"),
        ("peak RSS (model included)", f"{build_rss:,.0f} MB"),
        ("index size on disk", f"{size / 2**20:,.1f} MB"),
        (f"incremental `index add` of {len(held_back)} documents", f"{added.seconds:.1f} s ({added.embedded} chunks embedded, {added.passages:,} in the index)"),
    ]
    print("\n".join(f"{name:70} {value}" for name, value in rows))
    body = (
        f"Corpus: `{BULK.name}` ({'first ' + str(documents) + ' documents' if documents else 'all documents'}), "
        f"model {embedder.name} on {embedder.backend}, batch size {BATCH_SIZE}, `python bench/indexing.py{' --quick' if args.quick else ''}`.\n\n"
        + table(["", "value"], rows)
    )
    write_section(args.out, "indexing", "Indexing", body)


if __name__ == "__main__":
    main()
